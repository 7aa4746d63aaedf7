"""What a user switching from Haystack's ``SentenceTransformersSimilarityRanker`` passes must work the same way
(issue 21 items 17 and 18): ``trust_remote_code`` (as an argument and inside ``model_kwargs``), ``config_kwargs``,
``backend``, and ``scale_score`` per call and as a pipeline input. The reference is the built-in itself
(sentence-transformers-haystack 2.0.0) on the same tiny cross-encoder.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.utils import ComponentDevice
from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

import rerank_plugins.models as models
from rerank_plugins import ConfigError, InvalidInputError
from rerank_plugins.models import StrategySpec
from rerank_plugins.testing.rerankers import KeywordReranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "What causes shock waves around supersonic aircraft?"
DOCS = [
    Document(id="a", content="Shock waves form when an aircraft exceeds the speed of sound."),
    Document(id="b", content="Cooking pasta requires boiling salted water."),
    Document(id="c", content="Wing flutter couples bending and torsion."),
]
CPU = ComponentDevice.from_str("cpu")


@pytest.fixture(autouse=True)
def keyword_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("haystack-parity-ce"))


def _builtin(tiny_ce: Path, **kwargs: Any) -> Any:
    module = pytest.importorskip("haystack_integrations.components.rankers.sentence_transformers")
    ranker = module.SentenceTransformersSimilarityRanker(model=str(tiny_ce), device=CPU, **kwargs)
    ranker.warm_up()
    return ranker


def _scores(out: dict[str, list[Document]]) -> dict[str, float]:
    return {d.id: d.score for d in out["documents"]}  # type: ignore[misc]


def test_scale_score_per_call_and_as_pipeline_input_like_the_builtin(tiny_ce: Path) -> None:
    """Issue 21 item 18: ``run(scale_score=...)`` overrides the init value, as the built-in's ``run`` does."""
    builtin = _builtin(tiny_ce)
    for init in (None, True, False):
        ours = RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder", device=CPU, scale_score=init)
        for per_call in (True, False):
            expected = _scores(builtin.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score=per_call))
            got = _scores(ours.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score=per_call))
            assert got == pytest.approx(expected, abs=1e-5), (init, per_call)
        default = _scores(builtin.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score=init is not False))
        assert _scores(ours.run(query=QUERY, documents=copy.deepcopy(DOCS))) == pytest.approx(default, abs=1e-5)
    raw = _scores(builtin.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score=False))
    assert any(not 0.0 <= s <= 1.0 for s in raw.values())  # the two scales really differ

    pipe = Pipeline()
    pipe.add_component("ranker", RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder", device=CPU))
    assert "scale_score" in pipe.inputs()["ranker"]
    out = pipe.run({"ranker": {"query": QUERY, "documents": copy.deepcopy(DOCS), "scale_score": False}})
    assert _scores(out["ranker"]) == pytest.approx(raw, abs=1e-5)
    ranker = pipe.get_component("ranker")
    assert ranker.reranker.activation != "raw"  # the configured reranker is unchanged: a view shares its model
    view = ranker._views[False]
    assert view.activation == "raw" and view.model is ranker.reranker.model


def test_scale_score_false_per_call_on_a_strategy_without_scaling_is_refused() -> None:
    ranker = RerankPluginsRanker(model=KeywordReranker())
    with pytest.raises(InvalidInputError, match="scale_score=False"):
        ranker.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score=False)
    assert len(ranker.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score=True)["documents"]) == 3
    with pytest.raises(InvalidInputError, match="scale_score must be a bool"):
        ranker.run(query=QUERY, documents=copy.deepcopy(DOCS), scale_score="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arguments",
    [{"model_kwargs": {"trust_remote_code": True}}, {"trust_remote_code": True},
     {"trust_remote_code": True, "model_kwargs": {"trust_remote_code": True}}],
)
def test_trust_remote_code_as_the_builtin_takes_it(
    tiny_ce: Path, arguments: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21 item 17: ``model_kwargs={"trust_remote_code": True}`` was a bare ``TypeError`` ("got multiple values
    for keyword argument 'trust_remote_code'"); the built-in accepts it and a ``trust_remote_code`` argument."""
    import transformers

    seen: list[Any] = []
    real = transformers.AutoModelForSequenceClassification.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", spy)
    ranker = RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder", device=CPU, **arguments)
    got = _scores(ranker.run(query=QUERY, documents=copy.deepcopy(DOCS)))
    assert seen == [True]
    expected = _scores(_builtin(tiny_ce, **arguments).run(query=QUERY, documents=copy.deepcopy(DOCS)))
    assert got == pytest.approx(expected, abs=1e-5)
    again = RerankPluginsRanker.from_dict(ranker.to_dict())
    assert again.trust_remote_code == ranker.trust_remote_code and again.model_kwargs == ranker.model_kwargs


def test_trust_remote_code_that_disagrees_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="disagree"):
        RerankPluginsRanker(model="keyword", trust_remote_code=False,
                            model_kwargs={"trust_remote_code": True}).warm_up()
    with pytest.raises(ConfigError, match="trust_remote_code must be a bool"):
        RerankPluginsRanker(model="keyword", trust_remote_code="yes")  # type: ignore[arg-type]


def test_config_kwargs_reach_the_model_config_like_the_builtin(tiny_ce: Path) -> None:
    """Issue 21 item 18: ``config_kwargs`` override the model's config (here its activation function, which changes
    every score), giving the built-in's scores with the same ``config_kwargs``."""
    config_kwargs = {"hidden_act": "relu"}
    ours = RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder", device=CPU, config_kwargs=config_kwargs)
    got = _scores(ours.run(query=QUERY, documents=copy.deepcopy(DOCS)))
    assert ours.reranker.model.config.hidden_act == "relu"
    expected = _scores(_builtin(tiny_ce, config_kwargs=config_kwargs).run(query=QUERY, documents=copy.deepcopy(DOCS)))
    plain = _scores(_builtin(tiny_ce).run(query=QUERY, documents=copy.deepcopy(DOCS)))
    assert got == pytest.approx(expected, abs=1e-5)
    assert got != pytest.approx(plain, abs=1e-5)  # the override changed the model
    assert RerankPluginsRanker.from_dict(ours.to_dict()).config_kwargs == config_kwargs


def test_backend_values_and_serialisation(tiny_ce: Path) -> None:
    """Issue 21 item 18: ``backend`` as the built-in names it: ``"torch"`` (the default) or ``"onnx"`` (our
    cross-encoder's ONNX Runtime path); ``"openvino"`` is refused by name, before any model is loaded."""
    with pytest.raises(ConfigError, match="backend must be one of"):
        RerankPluginsRanker(model=str(tiny_ce), backend="openvino")
    torch_ranker = RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder", device=CPU, backend="torch")
    assert torch_ranker.reranker.quantize is None
    assert RerankPluginsRanker.from_dict(torch_ranker.to_dict()).backend == "torch"
    with pytest.raises(ConfigError, match="backend='onnx' applies to cross-encoders"):
        RerankPluginsRanker(model="keyword", backend="onnx").warm_up()
    pytest.importorskip("onnxruntime")
    onnx_ranker = RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder", device=CPU, backend="onnx")
    assert onnx_ranker.reranker.quantize == "onnx"
    expected = _scores(torch_ranker.run(query=QUERY, documents=copy.deepcopy(DOCS)))
    assert _scores(onnx_ranker.run(query=QUERY, documents=copy.deepcopy(DOCS))) == pytest.approx(expected, abs=1e-4)
