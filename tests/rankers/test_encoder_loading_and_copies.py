"""Cross-encoder and embedding rerankers: model_kwargs / tokenizer_kwargs reach the loaders (Haystack's
conventions map onto them), deep copies share the loaded weights, pickles round-trip."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins import ConfigError, load_reranker
from rerank_plugins.testing.conformance import sample_candidates

QUERY = "What causes shock waves around supersonic aircraft?"


def _ranked(reranker: Any) -> list[tuple[str, float]]:
    return [(r.id, r.score) for r in reranker.rerank(QUERY, sample_candidates()).results]


@pytest.mark.parametrize("kind", ["cross-encoder", "embedding"])
def test_deepcopy_shares_weights_and_pickle_round_trips(kind: str, tiny_ce_dir: Path, tiny_st_dir: Path) -> None:
    reranker = load_reranker(str(tiny_ce_dir if kind == "cross-encoder" else tiny_st_dir), kind=kind)
    expected = _ranked(reranker)
    clone = copy.deepcopy(reranker)
    assert clone is not reranker and clone.model is reranker.model
    assert _ranked(clone) == expected
    again = pickle.loads(pickle.dumps(reranker))
    assert [i for i, _ in _ranked(again)] == [i for i, _ in expected]
    assert [s for _, s in _ranked(again)] == pytest.approx([s for _, s in expected], abs=1e-6)


def test_cross_encoder_model_and_tokenizer_kwargs(tiny_ce_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    seen: dict[str, Any] = {}
    real = transformers.AutoModelForSequenceClassification.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", spy)
    reranker = load_reranker(str(tiny_ce_dir), kind="cross-encoder", model_kwargs={"revision": "main"},
                             tokenizer_kwargs={"model_max_length": 64})
    assert seen["revision"] == "main" and reranker.tokenizer.model_max_length == 64
    with pytest.raises(ConfigError, match="model_kwargs must be a dict"):
        load_reranker(str(tiny_ce_dir), kind="cross-encoder", model_kwargs=["revision"])


def test_embedding_model_and_tokenizer_kwargs(tiny_st_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    reranker = load_reranker(str(tiny_st_dir), kind="embedding", model_kwargs={"dtype": torch.float32},
                             tokenizer_kwargs={"model_max_length": 32})
    assert reranker.model.tokenizer.model_max_length == 32
    with pytest.raises(ConfigError, match="tokenizer_kwargs must be a dict"):
        load_reranker(str(tiny_st_dir), kind="embedding", tokenizer_kwargs="x")
