"""Library warnings point at the caller's line, whatever path reached them (issue 13): Python then echoes the
user's own source line, never one of ours (``caller_stacklevel`` in ``rerank_plugins/_warnings.py``)."""

from __future__ import annotations

import asyncio
import json
import warnings
from pathlib import Path

import pytest
from llm_oracle import pointwise_llm

from rerank_plugins import load_reranker
from rerank_plugins.rankers.pointwise_llm import PointwiseLLMReranker

LONG = "word " * 200


def _only(record: list[warnings.WarningMessage], text: str) -> warnings.WarningMessage:
    found = [w for w in record if text in str(w.message)]
    assert len(found) == 1, [str(w.message) for w in record]
    return found[0]


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> object:
    pytest.importorskip("torch")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return load_reranker(str(build_tiny_cross_encoder(tmp_path_factory.mktemp("ce"))), max_length=16)


def test_cross_encoder_truncation_points_at_the_caller(cross_encoder: object) -> None:
    for call in (
        lambda: cross_encoder.rerank("q", [LONG, "b"]),  # type: ignore[attr-defined]
        lambda: cross_encoder.rerank_batch(["q"], [[LONG, "b"]]),  # type: ignore[attr-defined]
    ):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            call()
        assert _only(record, "were truncated").filename == __file__


def test_async_truncation_never_names_a_library_file(cross_encoder: object) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        asyncio.run(cross_encoder.arerank("q", [LONG, "b"]))  # type: ignore[attr-defined]
    where = _only(record, "were truncated").filename
    assert "rerank_plugins" not in where and "concurrent" not in where and "threading" not in where


def test_llm_passage_cut_points_at_the_caller() -> None:
    ranker = PointwiseLLMReranker(pointwise_llm(), max_document_tokens=3)
    for call in (lambda: ranker.rerank("q", [LONG, "b"]), lambda: ranker.rerank_batch(["q"], [[LONG, "b"]])):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            call()
        assert _only(record, "were truncated").filename == __file__


def test_data_warning_points_at_the_caller(tmp_path: Path) -> None:
    from rerank_plugins.eval.datasets import load_beir, load_dataset

    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "x"}) + "\n{broken\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "x"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    for call in (lambda: load_dataset(str(tmp_path)), lambda: load_beir(tmp_path)):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            call()
        assert _only(record, "bad_corpus_lines").filename == __file__
