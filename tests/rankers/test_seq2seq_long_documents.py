"""monoT5 / duoT5 on long documents (issue 20): documents whose cut lands on a standalone SentencePiece ``▁``
(which shares the offset of the next character, so the old offset-based cut never advanced and raised
"could not fit the prompt into max_length") are scored, never raise; ``long_documents="chunk"`` scores token
windows and reports the best one's span."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rerank_plugins import ConfigError
from rerank_plugins.engine.length_policy import TruncationWarning
from rerank_plugins.rankers.seq2seq import DuoT5Reranker, MonoT5Reranker

QUERY = "what is lift?"
#: each failed on the old main with ConfigError("could not fit the prompt into max_length"): "ж" and the
#: combining accent are outside the tiny vocabulary, so each is a standalone "▁" plus "<unk>" sharing one offset
LONG_DOCS = ["the wing ) " * 250, "\u0436 " * 600, "a " + "\u0436 " * 600, "e\u0301 " * 500,
             "ab " + "e\u0301 " * 500]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_encoders import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5-long"))


@pytest.fixture(scope="module")
def mono(t5_dir: Path) -> MonoT5Reranker:
    return MonoT5Reranker(str(t5_dir))


def test_monot5_scores_documents_cut_on_a_standalone_piece(mono: MonoT5Reranker) -> None:
    for doc in LONG_DOCS:
        with pytest.warns(TruncationWarning, match="1 of 2 documents"):
            result = mono.rerank(QUERY, [doc, "short"])
        assert len(result.results) == 2 and result.details["truncated"] == 1
        plans, rows = mono.encode(QUERY, [doc])
        assert len(rows[0][0]) <= mono.max_length and plans[0].truncated


def test_duot5_scores_documents_cut_on_a_standalone_piece(t5_dir: Path) -> None:
    duo = DuoT5Reranker(str(t5_dir))
    for doc in LONG_DOCS:
        with pytest.warns(TruncationWarning, match="2 of 2 prompts"):
            result = duo.rerank(QUERY, [doc, "short"])
        assert len(result.results) == 2
        ids, cut = duo.encode_pair(QUERY, doc, LONG_DOCS[0])
        assert cut and len(ids) <= duo.max_length


def test_monot5_chunks_long_documents_and_reports_the_best_window(t5_dir: Path) -> None:
    filler = "boiling pasta in salted water . " * 60
    needle = "shock waves form when an aircraft exceeds the speed of sound . "
    doc = filler + needle + filler
    ranker = MonoT5Reranker(str(t5_dir), max_length=64, long_documents="chunk", max_chunks=100, chunk_overlap=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # every window scored: nothing cut, nothing to warn
        result = ranker.rerank(QUERY, [doc, "short", doc])
    details = {r.id: r.details for r in result.results}
    best = details["0"]["best_chunk"]
    assert set(best) == {"start", "end", "score", "index", "chunks"}
    assert best["chunks"] > 5 and 0 <= best["start"] < best["end"] <= len(doc)
    short = details["1"]["best_chunk"]
    assert (short["start"], short["end"], short["index"], short["chunks"]) == (0, 5, 0, 1)
    # the score is the best window's (MaxP), and equals monoT5 on that window's text alone
    by_id = {r.id: r.score for r in result.results}
    assert by_id["0"] == pytest.approx(best["score"]) == pytest.approx(by_id["2"])
    alone = MonoT5Reranker(str(t5_dir), max_length=64).rerank(QUERY, [doc[best["start"] : best["end"]]])
    assert alone.results[0].score == pytest.approx(best["score"], abs=1e-5)
    # identical windows (of the repeated document, and the filler's repeats) ran once
    plans, rows = ranker.encode(QUERY, [doc])
    assert all(len(r) <= 64 for r in rows[0]) and len(rows[0]) == best["chunks"]
    assert result.details["rows_scored"] == len({tuple(r) for r in rows[0]}) + 1 < best["chunks"]
    assert result.details["chunked"] == 2 and result.details["chunks"] == 2 * best["chunks"] + 1
    first = MonoT5Reranker(str(t5_dir), max_length=64, long_documents="chunk", chunk_aggregate="first",
                           max_chunks=100, chunk_overlap=8).rerank(QUERY, [doc])
    assert first.results[0].score == pytest.approx(
        MonoT5Reranker(str(t5_dir), max_length=64).rerank(QUERY, [doc[: plans[0].spans[0][1]]]).results[0].score,
        abs=1e-5)


def test_monot5_chunk_cap_is_counted_and_warned(t5_dir: Path) -> None:
    ranker = MonoT5Reranker(str(t5_dir), max_length=40, long_documents="chunk", max_chunks=2)
    with pytest.warns(TruncationWarning, match="raise max_chunks"):
        result = ranker.rerank(QUERY, [LONG_DOCS[1]])
    assert result.results[0].details["truncated"] is True
    assert result.results[0].details["best_chunk"]["chunks"] == 2


def test_duot5_refuses_to_chunk(t5_dir: Path) -> None:
    with pytest.raises(ConfigError, match="monoT5 first"):
        DuoT5Reranker(str(t5_dir), long_documents="chunk")
