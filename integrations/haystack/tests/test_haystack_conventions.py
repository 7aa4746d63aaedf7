"""Haystack conventions a user switching from Haystack's own rankers expects (issue 13, issue 15 item 3).

Checked at construction; ``device`` / ``token`` / ``model_kwargs`` / ``tokenizer_kwargs`` / ``batch_size`` /
``scale_score`` reach the strategy and are serialised; query/document prefixes, suffixes and embedded meta fields
give exactly the scores of Haystack's ``SentenceTransformersSimilarityRanker`` (sentence-transformers-haystack
2.0.0) on the same tiny cross-encoder.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

import rerank_plugins.models as models
from rerank_plugins import ConfigError
from rerank_plugins.models import StrategySpec

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "What causes shock waves around supersonic aircraft?"
DOCS = [
    Document(id="a", content="Shock waves form when an aircraft exceeds the speed of sound.", meta={"title": "Shock"}),
    Document(id="b", content="Cooking pasta requires boiling salted water.", meta={"title": "Pasta", "year": 2020}),
    Document(id="c", content="Wing flutter couples bending and torsion.", meta={"year": 1999}),
    Document(id="d", content=None, meta={"title": "Only a title"}),
]


@pytest.fixture(autouse=True)
def keyword_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("haystack-ce"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"score_threshold": "high"}, "score_threshold"),
        ({"score_threshold": math.nan}, "score_threshold"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "cpu"}, "device must be ComponentDevice"),
        ({"token": "hf_plain_string"}, "token must be Secret"),
        ({"scale_score": "yes"}, "scale_score"),
        ({"meta_fields_to_embed": "title"}, "meta_fields_to_embed"),
        ({"query_prefix": None}, "query_prefix"),
        ({"options": [("max_length", 3)]}, "options"),
    ],
)
def test_bad_arguments_fail_at_construction(arguments: dict[str, Any], message: str, monkeypatch: Any) -> None:
    loads: list[Any] = []
    monkeypatch.setattr(models, "load_reranker", lambda *a, **k: loads.append(a))
    with pytest.raises(ConfigError, match=message):
        RerankPluginsRanker(model="keyword", **arguments)
    assert loads == []


def test_loading_conventions_reach_the_cross_encoder_and_round_trip(tiny_ce: Path) -> None:
    torch = pytest.importorskip("torch")
    ranker = RerankPluginsRanker(
        model=tiny_ce,  # a Path, stored and serialised as str
        kind="cross-encoder",
        device=ComponentDevice.from_str("cpu"),
        token=Secret.from_env_var("RERANK_PLUGINS_TEST_TOKEN", strict=False),
        model_kwargs={"dtype": torch.float32},
        tokenizer_kwargs={"model_max_length": 128},
        batch_size=3,
        scale_score=False,
        query_prefix="query: ",
        document_prefix="passage: ",
        instruction=None,
    )
    data = ranker.to_dict()
    params = data["init_parameters"]
    assert json.loads(json.dumps(data)) == data
    assert params["model"] == str(tiny_ce) and params["model_kwargs"] == {"dtype": "torch.float32"}
    assert params["device"] == ComponentDevice.from_str("cpu").to_dict()
    assert params["token"]["type"] == "env_var" and params["batch_size"] == 3 and params["scale_score"] is False
    again = RerankPluginsRanker.from_dict(data)
    assert again.to_dict() == data
    assert again.model_kwargs == {"dtype": torch.float32} and again.device == ComponentDevice.from_str("cpu")

    pipe = Pipeline()
    pipe.add_component("ranker", ranker)
    loaded = Pipeline.loads(pipe.dumps())
    assert loaded.get_component("ranker").to_dict() == data

    live = again.reranker
    assert live.batch_size == 3 and live.activation == "raw" and str(live.device) == "cpu"
    assert live.tokenizer.model_max_length == 128
    first = ranker.run(query=QUERY, documents=DOCS)["documents"]
    second = loaded.get_component("ranker").run(query=QUERY, documents=DOCS)["documents"]
    assert [(d.id, d.score) for d in first] == [(d.id, d.score) for d in second]
    assert any(d.score is not None and not 0.0 <= d.score <= 1.0 for d in first)  # raw logits


def test_default_token_is_haystack_s_env_secret_and_reaches_from_pretrained(
    tiny_ce: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    seen: list[Any] = []
    real_model = transformers.AutoModelForSequenceClassification.from_pretrained
    real_tokenizer = transformers.AutoTokenizer.from_pretrained

    def model_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("model", kwargs.get("token")))
        return real_model(*args, **kwargs)

    def tokenizer_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(("tokenizer", kwargs.get("token")))
        return real_tokenizer(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", model_spy)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer_spy)
    monkeypatch.delenv("HF_API_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_environment")
    ranker = RerankPluginsRanker(model=str(tiny_ce), kind="cross-encoder")
    assert ranker.to_dict()["init_parameters"]["token"] == Secret.from_env_var(
        ["HF_API_TOKEN", "HF_TOKEN"], strict=False
    ).to_dict()
    ranker.warm_up()
    assert ("model", "hf_from_the_environment") in seen and ("tokenizer", "hf_from_the_environment") in seen
    # a strategy that loads no Hugging Face model ignores the ambient token
    RerankPluginsRanker(model="keyword").warm_up()


def test_conventions_that_cannot_apply_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="batch_size does not apply"):
        RerankPluginsRanker(model="keyword", batch_size=4).warm_up()
    with pytest.raises(ConfigError, match="scale_score=False"):
        RerankPluginsRanker(model="keyword", scale_score=False).warm_up()


@pytest.mark.parametrize("scale_score", [True, False])
def test_prefixes_suffixes_and_meta_fields_score_like_haystack_s_own_ranker(tiny_ce: Path, scale_score: bool) -> None:
    """The reference: ``SentenceTransformersSimilarityRanker`` on the same model with the same text options."""
    reference_module = pytest.importorskip("haystack_integrations.components.rankers.sentence_transformers")
    text_options: dict[str, Any] = {
        "query_prefix": "Instruct: find the answer\nQuery: ",
        "query_suffix": " ?",
        "document_prefix": "Passage: ",
        "document_suffix": " </s>",
        "meta_fields_to_embed": ["title", "year"],
        "embedding_separator": " | ",
        "scale_score": scale_score,
    }
    reference = reference_module.SentenceTransformersSimilarityRanker(
        model=str(tiny_ce), device=ComponentDevice.from_str("cpu"), top_k=10, **text_options
    )
    reference.warm_up()
    expected = reference.run(query=QUERY, documents=copy.deepcopy(DOCS))["documents"]
    ours = RerankPluginsRanker(
        model=str(tiny_ce), kind="cross-encoder", device=ComponentDevice.from_str("cpu"), **text_options
    ).run(query=QUERY, documents=copy.deepcopy(DOCS))["documents"]
    assert [d.id for d in ours] == [d.id for d in expected]
    assert [d.score for d in ours] == pytest.approx([d.score for d in expected], abs=1e-5)
