"""EmbeddingReranker: conformance (tiny random model and the real MiniLM), batching, cache, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from _support.extras import assert_names_the_extra

from rerank_plugins import Candidate, InvalidInputError, ModelNotFoundError, load_reranker
from rerank_plugins.engine.cache import ScoreCache
from rerank_plugins.rankers.embedding import EmbeddingReranker
from rerank_plugins.testing import RerankerConformance


@pytest.fixture(scope="module")
def tiny(tiny_st_dir: Path) -> EmbeddingReranker:
    return EmbeddingReranker(str(tiny_st_dir))


class TestTinyEmbeddingConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, tiny: EmbeddingReranker) -> EmbeddingReranker:
        return tiny


@pytest.mark.slow
class TestMiniLMConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, minilm_reranker: Any) -> Any:
        return minilm_reranker


@pytest.mark.slow
def test_minilm_ranks_the_relevant_passage_first(minilm_reranker: Any) -> None:
    cands = [
        "Pasta should be boiled in salted water.",
        "A shock wave forms when an aircraft flies faster than sound.",
        "The stock market fell on Monday.",
    ]
    result = minilm_reranker.rerank("Why do supersonic planes create shock waves?", cands)
    assert result.ids[0] == "1"
    assert minilm_reranker.name == "embedding:minilm"


@pytest.mark.slow
def test_minilm_scores_equal_sentence_transformers_cosine(minilm_reranker: Any) -> None:
    from sentence_transformers import util

    q, docs = "boundary layer transition", ["laminar to turbulent transition", "supersonic inlet design"]
    expected = util.cos_sim(minilm_reranker.model.encode(q), minilm_reranker.model.encode(docs))[0].tolist()
    got = [s for _, s in sorted((r.original_position, r.score) for r in minilm_reranker.rerank(q, docs))]
    assert got == pytest.approx(expected, abs=1e-5)


def test_embeddings_are_normalised_float32(tiny: EmbeddingReranker) -> None:
    q = tiny.embed_queries(["a query", "another query"])
    d = tiny.embed_documents(["one document"])
    assert q.dtype == np.float32 and d.dtype == np.float32
    assert q.shape == (2, tiny.dimension) and d.shape == (1, tiny.dimension)
    assert np.linalg.norm(q, axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
    assert tiny.embed_documents([]).shape == (0, tiny.dimension)


def test_embed_rejects_a_bare_string(tiny: EmbeddingReranker) -> None:
    with pytest.raises(InvalidInputError):
        tiny.embed_documents("not a list")  # type: ignore[arg-type]


def test_scores_are_dot_products_of_public_embeddings(tiny: EmbeddingReranker) -> None:
    docs = ["wing flutter", "heat transfer", "shock waves"]
    expected = tiny.embed_documents(docs) @ tiny.embed_queries(["flutter of wings"])[0]
    got = [s for _, s in sorted((r.original_position, r.score) for r in tiny.rerank("flutter of wings", docs))]
    assert got == pytest.approx(expected.tolist(), abs=1e-6)


def test_unnormalised_scores_are_dot_products(tiny_st_dir: Path) -> None:
    raw = EmbeddingReranker(str(tiny_st_dir), normalize=False)
    q, d = raw.embed_queries(["q"]), raw.embed_documents(["some text"])
    assert np.linalg.norm(q) != pytest.approx(1.0, abs=1e-3)
    assert raw.rerank("q", ["some text"]).scores[0] == pytest.approx(float(q[0] @ d[0]), rel=1e-5)


def test_batch_equals_single_queries(tiny: EmbeddingReranker) -> None:
    queries = ["shock waves", "heat transfer in laminar flow"]
    lists = [["a", "b shock", "c"], ["heat", "a", "flow over plates", "d"]]
    batched = tiny.rerank_batch(queries, lists)
    for q, cands, got in zip(queries, lists, batched):
        single = tiny.rerank(q, cands)
        assert got.ids == single.ids
        assert got.scores == pytest.approx(single.scores, abs=1e-6)


def test_prompts_change_scores(tiny_st_dir: Path, tiny: EmbeddingReranker) -> None:
    prompted = EmbeddingReranker(str(tiny_st_dir), query_prompt="query: ", document_prompt="passage: ")
    docs = ["wing flutter", "heat transfer"]
    assert prompted.rerank("flutter", docs).scores != pytest.approx(tiny.rerank("flutter", docs).scores, abs=1e-6)


def test_cache_hits_and_equal_scores(tiny_st_dir: Path) -> None:
    cache = ScoreCache()
    ranker = EmbeddingReranker(str(tiny_st_dir), cache=cache)
    docs = ["one", "two", "three"]
    first = ranker.rerank("q", docs)
    assert (cache.hits, cache.misses) == (0, 3)
    second = ranker.rerank("q", [*docs, "four"])
    assert (cache.hits, cache.misses) == (3, 4)
    assert {r.id: r.score for r in first} == {r.id: r.score for r in second if r.id != "3"}


def test_cache_separates_models_and_options(tiny_st_dir: Path) -> None:
    cache = ScoreCache()
    a = EmbeddingReranker(str(tiny_st_dir), cache=cache)
    b = EmbeddingReranker(str(tiny_st_dir), cache=cache, query_prompt="query: ")
    a.rerank("q", ["one"])
    b.rerank("q", ["one"])
    assert cache.hits == 0 and len(cache) == 2


def test_accepts_a_built_sentence_transformer(tiny: EmbeddingReranker) -> None:
    wrapped = EmbeddingReranker(tiny.model)
    assert wrapped.model is tiny.model
    assert wrapped.rerank("q", ["a", "b"]).scores == pytest.approx(tiny.rerank("q", ["a", "b"]).scores)


def test_image_only_candidate_rejected(tiny: EmbeddingReranker) -> None:
    with pytest.raises(InvalidInputError, match="image"):
        tiny.rerank("q", [Candidate(id="img", image=b"\x89PNG")])


def test_bad_model_path_raises_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        EmbeddingReranker(str(tmp_path / "does-not-exist"))
    with pytest.raises(ModelNotFoundError):
        load_reranker(str(tmp_path / "does-not-exist"), kind="embedding")


def test_missing_sentence_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny_st_dir: Path) -> None:
    assert_names_the_extra(monkeypatch, "sentence_transformers", "hf", lambda: EmbeddingReranker(str(tiny_st_dir)))


def test_close_is_idempotent(tiny_st_dir: Path) -> None:
    ranker = EmbeddingReranker(str(tiny_st_dir))
    ranker.close()
    ranker.close()
    with pytest.raises(Exception, match="closed"):
        ranker.rerank("q", ["a"])


@pytest.mark.gpu
def test_cuda_device(tiny_st_dir: Path) -> None:
    ranker = EmbeddingReranker(str(tiny_st_dir), device="cuda")
    assert ranker.device.type == "cuda"
    assert len(ranker.rerank("q", ["a", "b"])) == 2
