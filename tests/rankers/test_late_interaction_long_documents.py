"""ColBERTReranker on long documents (issue 20): truncate cuts as PyLate does and warns once per call with the
count; chunk takes the MaxSim of each token window (each fitting document_length), aggregates them and reports the
best window's span in the original text; windows are encoded once. Tiny random ColBERT (document_length 24)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from long_texts import FILLER, NEEDLE, QUERY, SHORT, by_id

from rerank_plugins import ConfigError
from rerank_plugins.engine.length_policy import TruncationWarning
from rerank_plugins.rankers.late_interaction import ColBERTReranker

LONG = FILLER * 4 + NEEDLE + FILLER * 2


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_encoders import build_colbert_folder

    return build_colbert_folder(tmp_path_factory.mktemp("colbert-long"))


@pytest.fixture(scope="module")
def truncating(folder: Path) -> ColBERTReranker:
    return ColBERTReranker(str(folder))


@pytest.fixture(scope="module")
def chunking(folder: Path) -> ColBERTReranker:
    return ColBERTReranker(str(folder), long_documents="chunk", chunk_overlap=4)



def _maxsim(reranker: ColBERTReranker, text: str) -> float:
    q = reranker.encode_queries([QUERY])[0]
    return reranker.maxsim(q, reranker.encode_documents([text]))[0]


def test_truncate_warns_once_and_cuts_as_pylate(truncating: ColBERTReranker) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = truncating.rerank(QUERY, [LONG, SHORT[0], LONG + " again"])
    cut = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(cut) == 1 and "2 of 3 documents" in str(cut[0].message) and cut[0].filename == __file__
    results = by_id(result)
    assert results["0"].details["truncated"] is True and result.details["truncated"] == 2
    # the whole text goes to PyLate's tokenisation (truncation=True at document_length - 1), as before
    rows = truncating.tokenize([LONG], is_query=False)
    assert len(rows[0][0]) == truncating.document_length
    assert results["0"].score == pytest.approx(_maxsim(truncating, LONG), abs=1e-6)


def test_chunk_reports_the_best_window(chunking: ColBERTReranker) -> None:
    result = chunking.rerank(QUERY, [LONG, *SHORT])
    best = by_id(result)["0"].details["best_chunk"]
    assert best["chunks"] > 1
    window = LONG[best["start"] : best["end"]]
    assert best["score"] == pytest.approx(_maxsim(chunking, window), abs=1e-5)
    assert by_id(result)["0"].score == pytest.approx(best["score"])
    plans = chunking.plan_documents([LONG])
    assert plans[0].spans[0][0] == 0 and plans[0].spans[-1][1] == len(LONG)
    scores = [_maxsim(chunking, LONG[s:e]) for s, e in plans[0].spans]
    assert best["score"] == pytest.approx(max(scores), abs=1e-5)
    for s, e in plans[0].spans:  # every window fits: PyLate's tokenisation would not cut it
        ids, _ = chunking.tokenize([LONG[s:e]], is_query=False)[0]
        assert len(ids) <= chunking.document_length
        assert len(chunking.tokenizer(LONG[s:e].strip())["input_ids"]) <= chunking.document_length - 1


def test_short_documents_score_the_same_in_chunk_mode(truncating: ColBERTReranker,
                                                     chunking: ColBERTReranker) -> None:
    plain, chunked = by_id(truncating.rerank(QUERY, SHORT)), by_id(chunking.rerank(QUERY, SHORT))
    for i in ("0", "1"):
        assert chunked[i].score == pytest.approx(plain[i].score, abs=1e-6)
        assert chunked[i].details["best_chunk"]["chunks"] == 1


def test_identical_windows_are_encoded_once(folder: Path) -> None:
    reranker = ColBERTReranker(str(folder), long_documents="chunk", chunk_overlap=0)
    doc, other = FILLER * 6, FILLER * 4 + NEEDLE  # ``other`` shares its first windows with ``doc``
    plans = reranker.plan_documents([doc, other])
    windows = [t[s:e] for t, p in zip((doc, other), plans) for s, e in p.spans]
    assert len(set(windows)) < len(windows)
    inner, rows = reranker.model.forward, []

    def forward(*args: Any, **kwargs: Any) -> Any:
        rows.append(int(kwargs["input_ids"].shape[0]))
        return inner(*args, **kwargs)

    reranker.model.forward = forward
    try:
        result = reranker.rerank(QUERY, [doc, other, doc])
    finally:
        del reranker.model.forward
    assert sum(rows) == 1 + len(set(windows))  # the query and each distinct window
    assert result.details["rows_scored"] == len(set(windows))


def test_aggregates_and_left_side(folder: Path) -> None:
    first = ColBERTReranker(str(folder), long_documents="chunk", chunk_aggregate="first")
    mean = ColBERTReranker(str(folder), long_documents="chunk", chunk_aggregate="mean")
    spans = first.plan_documents([LONG])[0].spans
    scores = [_maxsim(first, LONG[s:e]) for s, e in spans]
    assert by_id(first.rerank(QUERY, [LONG]))["0"].score == pytest.approx(scores[0], abs=1e-5)
    assert by_id(mean.rerank(QUERY, [LONG]))["0"].score == pytest.approx(sum(scores) / len(scores), abs=1e-5)
    left = ColBERTReranker(str(folder), truncation_side="left")
    s, e = left.plan_documents([LONG])[0].spans[0]
    assert e == len(LONG) and s > 0
    with pytest.warns(TruncationWarning, match="1 of 1 documents"):
        score = by_id(left.rerank(QUERY, [LONG]))["0"].score
    assert score == pytest.approx(_maxsim(left, LONG[s:]), abs=1e-5)


def test_bad_policy_options_fail_before_loading() -> None:
    for bad in ({"long_documents": "union"}, {"chunk_aggregate": "sum"}, {"chunk_overlap": -1}):
        with pytest.raises(ConfigError):
            ColBERTReranker("/nonexistent/colbert/folder", **bad)


def test_with_length_policy_shares_the_model(truncating: ColBERTReranker) -> None:
    from dataclasses import replace

    chunking = truncating.with_length_policy(replace(truncating.policy, long_documents="chunk"))
    assert chunking.model is truncating.model and not truncating.policy.chunking
    assert by_id(chunking.rerank(QUERY, [LONG]))["0"].details["best_chunk"]["chunks"] > 1
    assert truncating.with_length_policy(truncating.policy) is truncating
