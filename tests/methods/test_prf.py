"""Vector (Rocchio) and text PRF: hand-computed examples, options, conformance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from methods_toys import OverlapReranker, QueryTableReranker, TableEmbedder

from rerank_plugins import Candidate, ConfigError
from rerank_plugins.rankers.prf_text import TextPRFReranker
from rerank_plugins.rankers.prf_vector import VectorPRFReranker, rocchio
from rerank_plugins.testing import RerankerConformance

VECS = {"q": [1.0, 0.0], "A": [1.0, 1.0], "B": [0.0, 2.0], "C": [0.9, -1.0]}
ABC = [Candidate(id=t.lower(), text=t) for t in "ABC"]


def scores(result) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {r.id: r.score for r in result.results}


# ---------------------------------------------------------------------------------------------- vector PRF
def test_rocchio_hand_computed() -> None:
    out = rocchio([1.0, 0.0], [[1.0, 1.0], [0.0, 2.0]], 0.5, 0.5, normalize=False)
    assert out.tolist() == pytest.approx([0.75, 0.75])
    unit = rocchio([1.0, 0.0], [[0.0, 1.0]], 0.6, 0.8, normalize=True)
    assert unit.tolist() == pytest.approx([0.6, 0.8])


def test_vector_prf_dot_product_hand_computed() -> None:
    # initial dot: a 1, b 0, c 0.9 -> feedback (k=1, self) = a; q' = .5 q + .5 a = (1, .5)
    prf = VectorPRFReranker(TableEmbedder(VECS), alpha=0.5, beta=0.5, feedback_docs=1)
    out = prf.rerank("q", ABC)
    assert scores(out) == pytest.approx({"a": 1.5, "b": 1.0, "c": 0.4})
    assert out.ids == ["a", "b", "c"]
    assert out.details["feedback_ids"] == ("a",)
    assert out.results[2].details["prf"] == {"initial_score": pytest.approx(0.9), "feedback": False}


def test_vector_prf_input_feedback_uses_input_order() -> None:
    # feedback = first two inputs (a, b): mean (0.5, 1.5); q' = .7 q + .3 mean = (0.85, 0.45)
    prf = VectorPRFReranker(TableEmbedder(VECS), feedback="input", feedback_docs=2)
    out = prf.rerank("q", ABC)
    assert scores(out) == pytest.approx({"a": 1.3, "b": 0.9, "c": 0.315})
    assert out.details["feedback_ids"] == ("a", "b")


def test_vector_prf_cosine_renormalises() -> None:
    emb = TableEmbedder(VECS, normalize=True)
    out = VectorPRFReranker(emb, feedback_docs=1).rerank("q", ABC)
    q, a = np.array([1.0, 0.0]), np.array([1.0, 1.0]) / np.sqrt(2)
    new = 0.7 * q + 0.3 * a
    new /= np.linalg.norm(new)
    assert scores(out)["a"] == pytest.approx(float(a @ new), abs=1e-6)
    assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for s in out.scores)


def test_vector_prf_batches_embeddings_once() -> None:
    emb = TableEmbedder(VECS)
    prf = VectorPRFReranker(emb, feedback_docs=1)
    outs = prf.rerank_batch(["q", "q"], [ABC, ABC[:2]])
    assert [o.ids for o in outs] == [prf.rerank("q", ABC).ids, prf.rerank("q", ABC[:2]).ids]
    assert emb.calls[:2] == [("query", ["q", "q"]), ("document", ["A", "B", "C"])]


def test_vector_prf_configuration_errors() -> None:
    emb = TableEmbedder()
    with pytest.raises(ConfigError, match="alpha must be > 0"):
        VectorPRFReranker(emb, alpha=0.0)
    with pytest.raises(ConfigError, match="beta"):
        VectorPRFReranker(emb, beta=-1.0)
    with pytest.raises(ConfigError, match="feedback_docs"):
        VectorPRFReranker(emb, feedback_docs=0)
    with pytest.raises(ConfigError, match="feedback must be"):
        VectorPRFReranker(emb, feedback="first")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="embedding_options"):
        VectorPRFReranker(emb, embedding_options={"batch_size": 2})


class TestVectorPRFConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> VectorPRFReranker:
        return VectorPRFReranker(TableEmbedder(normalize=True))


def test_vector_prf_on_a_real_embedding_model(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.rankers.embedding import EmbeddingReranker
    from rerank_plugins.testing.tiny_models import build_tiny_sentence_transformer

    emb = EmbeddingReranker(str(build_tiny_sentence_transformer(tmp_path / "st")))
    prf = VectorPRFReranker(emb, feedback_docs=2)
    texts = ["shock waves", "boundary layer", "supersonic shock", "pasta"]
    out = prf.rerank("supersonic shock waves", texts)
    q = emb.embed_queries(["supersonic shock waves"])[0].astype(np.float64)
    d = emb.embed_documents(texts).astype(np.float64)
    fb = np.argsort(-(d @ q), kind="stable")[:2]
    new = 0.7 * q + 0.3 * d[fb].mean(axis=0)
    new /= np.linalg.norm(new)
    assert [s for _, s in sorted((r.original_position, r.score) for r in out)] == pytest.approx(
        (d @ new).tolist(), abs=1e-5
    )


# ---------------------------------------------------------------------------------------------- text PRF
def test_text_prf_borda_hand_computed() -> None:
    inner = QueryTableReranker({"q A": {"a": 3, "b": 1, "c": 2}, "q B": {"a": 2, "b": 3, "c": 1}})
    out = TextPRFReranker(inner, feedback_docs=2).rerank("q", ABC)
    # run "q A": a 3 c 2 b 1 ; run "q B": b 3 a 2 c 1 (Borda points)
    assert inner.queries == ["q A", "q B"]
    assert scores(out) == {"a": 5.0, "b": 4.0, "c": 3.0}
    assert out.details["feedback_ids"] == ("a", "b")
    assert [r.details["prf"]["feedback"] for r in out.results] == [True, True, False]


def test_text_prf_sum_differs_from_borda() -> None:
    tables = {"q A": {"a": 1, "b": 0, "c": 0.9}, "q B": {"a": 0, "b": 10, "c": 9}}
    borda = TextPRFReranker(QueryTableReranker(tables), feedback_docs=2).rerank("q", ABC)
    total = TextPRFReranker(QueryTableReranker(tables), feedback_docs=2, aggregation="sum").rerank("q", ABC)
    assert scores(borda) == {"a": 4.0, "b": 4.0, "c": 4.0}  # a 3+1, b 1+3, c 2+2
    assert scores(total) == pytest.approx({"a": 1.0, "b": 10.0, "c": 9.9})
    assert total.ids == ["b", "c", "a"]


def test_text_prf_self_feedback_original_template_and_cut() -> None:
    tables = {"q": {"a": 0, "b": 0, "c": 5}, "q || Cx": {"a": 1, "b": 2, "c": 3}}
    cands = [Candidate(id="a", text="A"), Candidate(id="b", text="B"), Candidate(id="c", text="Cxyz")]
    inner = QueryTableReranker(tables)
    prf = TextPRFReranker(inner, feedback_docs=1, feedback="self", include_original=True,
                          template="{query} || {passage}", max_passage_chars=2, aggregation="rrf", k=0)
    out = prf.rerank("q", cands)
    assert inner.queries == ["q", "q || Cx"]
    # original run: c, a, b ; variant run: c, b, a -> rrf k=0: c 2, a 1/2 + 1/3, b 1/3 + 1/2
    assert scores(out) == pytest.approx({"c": 2.0, "a": 5 / 6, "b": 5 / 6})
    assert out.ids == ["c", "a", "b"]


def test_text_prf_original_weight() -> None:
    tables = {"q": {"a": 1.0, "b": 0.0, "c": 0.5}, "q A": {"a": 0.0, "b": 2.0, "c": 0.5}}
    prf = TextPRFReranker(QueryTableReranker(tables), feedback_docs=1, include_original=True, original_weight=3.0,
                          aggregation="sum")
    # a: 3 * 1 + 0 = 3, b: 3 * 0 + 2 = 2, c: 3 * .5 + .5 = 2
    assert scores(prf.rerank("q", ABC)) == pytest.approx({"a": 3.0, "b": 2.0, "c": 2.0})
    with pytest.raises(ConfigError, match="include_original"):
        TextPRFReranker(OverlapReranker(), original_weight=2.0)
    with pytest.raises(ConfigError, match="original_weight"):
        TextPRFReranker(OverlapReranker(), include_original=True, original_weight=-1.0)


def test_text_prf_batch_matches_single() -> None:
    prf = TextPRFReranker(OverlapReranker(), feedback_docs=2)
    cands = [Candidate(id=str(i), text=t) for i, t in enumerate(["shock wave", "wing", "shock tube flow", "x"])]
    batch = prf.rerank_batch(["shock flow", "wing flow"], [cands, cands[:3]])
    assert batch[0].scores == prf.rerank("shock flow", cands).scores
    assert batch[1].scores == prf.rerank("wing flow", cands[:3]).scores


def test_text_prf_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="feedback_docs"):
        TextPRFReranker(OverlapReranker(), feedback_docs=0)
    with pytest.raises(ConfigError, match="aggregation"):
        TextPRFReranker(OverlapReranker(), aggregation="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="template"):
        TextPRFReranker(OverlapReranker(), template="{query}")
    with pytest.raises(ConfigError, match="max_passage_chars"):
        TextPRFReranker(OverlapReranker(), max_passage_chars=0)


class TestTextPRFConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> TextPRFReranker:
        return TextPRFReranker(OverlapReranker(), feedback_docs=2, include_original=True)
