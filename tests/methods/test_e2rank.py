"""E2Rank-style pseudo-query reranking: the prompt, the scores, options, conformance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from methods_toys import TableEmbedder

from rerank_plugins import Candidate, ConfigError
from rerank_plugins.rankers.e2rank import PAPER_INSTRUCTION, E2RankReranker, build_pseudo_query
from rerank_plugins.testing import RerankerConformance

CANDS = [Candidate(id=f"d{i}", text=t) for i, t in enumerate(["shock wave", "wing flutter", "pasta water", "shock"])]


def test_paper_prompt_layout() -> None:
    text = build_pseudo_query("why shocks", ["first doc", "second doc"])
    assert text == f"{PAPER_INSTRUCTION}\nDocuments:\n[1] first doc\n[2] second doc\nSearch Query:why shocks"


def test_query_first_layout_and_cut() -> None:
    text = build_pseudo_query("q", ["abcdef"], instruction="Rank:", layout="query_first", max_doc_chars=3)
    assert text == "Search Query:q\nRank:\nDocuments:\n[1] abc"
    with pytest.raises(ConfigError, match="layout"):
        build_pseudo_query("q", ["a"], layout="middle")  # type: ignore[arg-type]


def test_scores_are_cosine_to_the_pseudo_query() -> None:
    emb = TableEmbedder(normalize=True)
    out = E2RankReranker(emb, num_input_docs=2).rerank("shock flow", CANDS)
    pseudo = build_pseudo_query("shock flow", ["shock wave", "wing flutter"])
    assert out.details["pseudo_query"] == pseudo
    assert out.details["feedback_ids"] == ("d0", "d1")
    p = emb._embed([pseudo])[0].astype(np.float64)
    d = emb._embed([c.text for c in CANDS]).astype(np.float64)  # type: ignore[misc]
    got = [s for _, s in sorted((r.original_position, r.score) for r in out)]
    assert got == pytest.approx((d @ p).tolist(), abs=1e-6)
    # the plain query is not embedded when it is not needed
    assert ("query", ["shock flow"]) not in emb.calls


def test_self_feedback_and_original_weight() -> None:
    emb = TableEmbedder(normalize=True)
    out = E2RankReranker(emb, num_input_docs=1, feedback="self", original_weight=0.25).rerank("shock", CANDS)
    d = emb._embed([c.text for c in CANDS]).astype(np.float64)  # type: ignore[misc]
    q = emb._embed(["shock"])[0].astype(np.float64)
    top = int(np.argmax(d @ q))
    assert out.details["feedback_ids"] == (CANDS[top].id,)
    p = emb._embed([build_pseudo_query("shock", [CANDS[top].text])])[0].astype(np.float64)  # type: ignore[list-item]
    expected = 0.75 * (d @ p) + 0.25 * (d @ q)
    got = [s for _, s in sorted((r.original_position, r.score) for r in out)]
    assert got == pytest.approx(expected.tolist(), abs=1e-6)


def test_batch_matches_single() -> None:
    rr = E2RankReranker(TableEmbedder(normalize=True), num_input_docs=2)
    batch = rr.rerank_batch(["shock", "wing"], [CANDS, CANDS[1:]])
    assert batch[0].scores == pytest.approx(rr.rerank("shock", CANDS).scores)
    assert batch[1].scores == pytest.approx(rr.rerank("wing", CANDS[1:]).scores)


def test_configuration_errors() -> None:
    emb = TableEmbedder()
    with pytest.raises(ConfigError, match="num_input_docs"):
        E2RankReranker(emb, num_input_docs=0)
    with pytest.raises(ConfigError, match="original_weight"):
        E2RankReranker(emb, original_weight=1.5)
    with pytest.raises(ConfigError, match="feedback"):
        E2RankReranker(emb, feedback="bm25")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_doc_chars"):
        E2RankReranker(emb, max_doc_chars=0)


def test_truncation_warning_with_a_real_model(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.rankers.embedding import EmbeddingReranker
    from rerank_plugins.testing.tiny_models import build_tiny_sentence_transformer

    emb = EmbeddingReranker(str(build_tiny_sentence_transformer(tmp_path / "st")))  # max_seq_length 128
    long_docs = [Candidate(id=str(i), text="boundary layer flow " * 30) for i in range(3)]
    rr = E2RankReranker(emb, num_input_docs=3)
    with pytest.warns(UserWarning, match="max_seq_length"):
        rr.rerank("q", long_docs)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(rr.rerank("q", long_docs)) == 3  # warned once per reranker


class TestE2RankConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> E2RankReranker:
        return E2RankReranker(TableEmbedder(normalize=True), num_input_docs=3)
