"""EmbeddingReranker on long documents (issue 20): truncate warns once per call with the count and scores as
sentence-transformers does; chunk embeds token windows that fit max_seq_length, once each, aggregates them and
reports the best window's span in the original text. All on a tiny random sentence-transformers model
(max_seq_length 128, the real MiniLM WordPiece tokenizer)."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from long_texts import FILLER, NEEDLE, QUERY, SHORT, by_id

from rerank_plugins import ConfigError
from rerank_plugins.engine.length_policy import TruncationWarning
from rerank_plugins.rankers.embedding import EmbeddingReranker

LONG = FILLER * 30 + NEEDLE + FILLER * 10


@pytest.fixture(scope="module")
def st_dir(tiny_st_dir: Path) -> Path:
    return tiny_st_dir


@pytest.fixture(scope="module")
def truncating(st_dir: Path) -> EmbeddingReranker:
    return EmbeddingReranker(str(st_dir))


@pytest.fixture(scope="module")
def chunking(st_dir: Path) -> EmbeddingReranker:
    return EmbeddingReranker(str(st_dir), long_documents="chunk")



def _cosine(reranker: EmbeddingReranker, query: str, text: str) -> float:
    q = reranker.embed_queries([query])[0]
    d = reranker.embed_documents([text])[0]
    return float(np.dot(q, d))


class _CountRows:
    """Counts the texts the real model runs through its forward pass (a wrapper, the model itself computes)."""

    def __init__(self, reranker: EmbeddingReranker) -> None:
        self.module = reranker.model[0]
        self.inner = self.module.forward
        self.rows = 0

    def __enter__(self) -> _CountRows:
        def forward(features: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            self.rows += int(features["input_ids"].shape[0])
            return self.inner(features, *args, **kwargs)

        self.module.forward = forward
        return self

    def __exit__(self, *exc: object) -> None:
        del self.module.forward


def test_truncate_warns_once_with_the_count_and_scores_as_sentence_transformers(truncating: EmbeddingReranker) -> None:
    docs = [LONG, SHORT[0], LONG + " more", SHORT[1]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = truncating.rerank(QUERY, docs)
    cut = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(cut) == 1 and "2 of 4 documents" in str(cut[0].message)
    assert cut[0].filename == __file__  # the user's line
    assert result.details["truncated"] == 2
    results = by_id(result)
    assert results["0"].details["truncated"] is True and "truncated" not in results["1"].details
    # sentence-transformers cuts the text itself: the score is its cosine of the whole (cut) text
    model = truncating.model
    q = model.encode([QUERY], normalize_embeddings=True)[0]
    for i, doc in enumerate(docs):
        expected = float(np.dot(q, model.encode([doc], normalize_embeddings=True)[0]))
        assert results[str(i)].score == pytest.approx(expected, abs=1e-5)


def test_no_warning_when_every_document_fits(truncating: EmbeddingReranker) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        truncating.rerank(QUERY, SHORT)


def test_chunk_reports_the_best_window_span_in_the_original_text(chunking: EmbeddingReranker) -> None:
    result = chunking.rerank(QUERY, [LONG, *SHORT])
    best = by_id(result)["0"].details["best_chunk"]
    assert best["chunks"] > 1 and 0 <= best["start"] < best["end"] <= len(LONG)
    window = LONG[best["start"] : best["end"]]
    # the span's own text, embedded alone, gives the reported window score
    assert best["score"] == pytest.approx(_cosine(chunking, QUERY, window), abs=1e-5)
    assert by_id(result)["0"].score == pytest.approx(best["score"])  # MaxP
    assert result.details["chunked"] == 1 and result.details["truncated"] == 0


def test_chunk_windows_fit_the_model_and_cover_the_document(st_dir: Path) -> None:
    reranker = EmbeddingReranker(str(st_dir), long_documents="chunk", document_prompt="passage: ", chunk_overlap=8)
    plans = reranker._plan([LONG], reranker.document_prompt, None, reranker.policy)
    spans = plans[0].spans
    tok = reranker.model.tokenizer
    assert len(spans) > 1 and spans[0][0] == 0 and spans[-1][1] == len(LONG)
    for (_, e), (s2, _) in itertools.pairwise(spans):
        assert s2 <= e  # neighbours overlap or touch
    for s, e in spans:
        assert len(tok("passage: " + LONG[s:e])["input_ids"]) <= reranker.model.max_seq_length


def test_short_documents_score_the_same_in_chunk_mode(truncating: EmbeddingReranker,
                                                     chunking: EmbeddingReranker) -> None:
    plain = by_id(truncating.rerank(QUERY, SHORT))
    chunked = by_id(chunking.rerank(QUERY, SHORT))
    for i in ("0", "1"):
        assert chunked[i].score == plain[i].score
        assert chunked[i].details["best_chunk"] == {"start": 0, "end": len(SHORT[int(i)]), "score": plain[i].score,
                                                    "index": 0, "chunks": 1}


def test_identical_windows_are_embedded_once(st_dir: Path) -> None:
    reranker = EmbeddingReranker(str(st_dir), long_documents="chunk", chunk_overlap=0)
    doc = FILLER * 40
    other = FILLER * 30 + NEEDLE  # shares its first windows with ``doc``
    plans = reranker._plan([doc, other], None, None, reranker.policy)
    windows = [text[s:e] for text, plan in zip((doc, other), plans) for s, e in plan.spans]
    distinct = len(set(windows))
    assert distinct < len(windows)
    with _CountRows(reranker) as counter:
        result = reranker.rerank(QUERY, [doc, other, doc, SHORT[0], SHORT[0]])
    assert counter.rows == 1 + distinct + 1  # the query, each distinct window, the short text
    assert result.details["rows_scored"] == distinct + 1
    assert result.details["chunks"] == len(windows) + len(plans[0].spans) + 2


def test_first_and_mean_aggregates(st_dir: Path, chunking: EmbeddingReranker) -> None:
    best = by_id(chunking.rerank(QUERY, [LONG]))["0"]
    first = EmbeddingReranker(str(st_dir), long_documents="chunk", chunk_aggregate="first")
    mean = EmbeddingReranker(str(st_dir), long_documents="chunk", chunk_aggregate="mean")
    r_first = by_id(first.rerank(QUERY, [LONG]))["0"]
    r_mean = by_id(mean.rerank(QUERY, [LONG]))["0"]
    span = r_first.details["best_chunk"]
    assert span == best.details["best_chunk"]  # the best window is reported whatever the aggregate
    plans = first._plan([LONG], None, None, first.policy)
    scores = [_cosine(first, QUERY, LONG[s:e]) for s, e in plans[0].spans]
    assert r_first.score == pytest.approx(scores[0], abs=1e-5)
    assert r_mean.score == pytest.approx(sum(scores) / len(scores), abs=1e-5)
    assert best.score == pytest.approx(max(scores), abs=1e-5)


def test_token_caps_and_left_side(st_dir: Path) -> None:
    capped = EmbeddingReranker(str(st_dir), max_document_tokens=12)
    with pytest.warns(TruncationWarning, match="1 of 2 documents"):
        result = by_id(capped.rerank(QUERY, [FILLER * 3, SHORT[0]]))
    tok = capped.model.tokenizer
    kept = capped._plan([FILLER * 3], None, 12, capped.policy)[0].spans[0]
    assert len(tok((FILLER * 3)[kept[0] : kept[1]], add_special_tokens=False)["input_ids"]) <= 12
    assert result["0"].score == pytest.approx(_cosine(capped, QUERY, (FILLER * 3)[kept[0] : kept[1]]), abs=1e-5)
    left = EmbeddingReranker(str(st_dir), truncation_side="left")
    doc = FILLER * 40 + NEEDLE
    s, e = left._plan([doc], None, None, left.policy)[0].spans[0]
    assert e == len(doc) and s > 0 and doc[s:].endswith(NEEDLE)
    with pytest.warns(TruncationWarning):
        score = by_id(left.rerank(QUERY, [doc]))["0"].score
    assert score == pytest.approx(_cosine(left, QUERY, doc[s:]), abs=1e-5)


def test_chunk_with_a_token_cap_makes_smaller_windows(st_dir: Path) -> None:
    reranker = EmbeddingReranker(str(st_dir), long_documents="chunk", max_document_tokens=20, chunk_overlap=4)
    with pytest.warns(TruncationWarning, match="past max_chunks windows"):
        result = by_id(reranker.rerank(QUERY, [LONG]))
    best = result["0"].details["best_chunk"]
    tok = reranker.model.tokenizer
    assert best["chunks"] == 10  # max_chunks: the tail was dropped and counted
    assert len(tok(LONG[best["start"] : best["end"]], add_special_tokens=False)["input_ids"]) <= 20
    assert result["0"].details["truncated"] is True


def test_bad_policy_options_fail_before_loading() -> None:
    for bad in ({"long_documents": "split"}, {"chunk_aggregate": "sum"}, {"max_chunks": 0},
                {"max_document_tokens": -1}, {"truncation_side": "middle"}):
        with pytest.raises(ConfigError):
            EmbeddingReranker("/nonexistent/model/folder", **bad)


def test_legacy_spelling_warns_at_the_callers_line(st_dir: Path) -> None:
    with pytest.warns(FutureWarning, match="chunk-max") as caught:
        reranker = EmbeddingReranker(str(st_dir), long_documents="chunk-max")
    assert caught[0].filename == __file__
    assert reranker.policy.chunking and reranker.policy.chunk_aggregate == "max"
