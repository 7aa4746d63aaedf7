"""The length policy's pure parts on a toy whitespace tokenizer: options, cut points, fitting, chunking,
aggregation (real tokenizers: tests/engine/test_length_policy_tokenizers.py)."""

from __future__ import annotations

import re

import pytest

from rerank_plugins.engine.length_policy import (
    POLICY_OPTIONS,
    LengthPolicy,
    aggregate,
    best_chunk,
    check_room,
    chunk_spans,
    cut_points,
    fit_span,
)
from rerank_plugins.errors import ConfigError


def _offsets(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


def _measure(text: str, overhead: int = 3):
    return lambda s, e: overhead + len(_offsets(text[s:e]))


def test_policy_defaults_names_and_checks() -> None:
    p = LengthPolicy()
    assert (p.long_documents, p.max_chunks, p.chunk_aggregate, p.truncation_side) == ("truncate", 10, "max", "right")
    assert not p.chunking and LengthPolicy(long_documents="chunk").chunking
    assert POLICY_OPTIONS == ("long_documents", "max_chunks", "chunk_overlap", "chunk_aggregate")
    assert LengthPolicy.from_options(max_chunks=None, chunk_aggregate="mean") == LengthPolicy(chunk_aggregate="mean")
    for bad in ({"long_documents": "chunk-max"}, {"max_chunks": 0}, {"chunk_overlap": -1},
                {"chunk_aggregate": "sum"}, {"truncation_side": "middle"}, {"max_chunks": True}):
        with pytest.raises(ConfigError):
            LengthPolicy(**bad)  # type: ignore[arg-type]


def test_cut_points_collapse_shared_and_backward_offsets() -> None:
    # a standalone "▁" sharing the next character's offset, a special token (0, 0), bytes of one character
    ends, counts = cut_points([(0, 0), (0, 3), (4, 5), (4, 5), (5, 6), (5, 6), (5, 6)], 8)
    assert ends == [3, 5, 6, 8]
    assert counts == [1, 3, 6, 6]
    assert cut_points([], 4) == ([4], [0])


def test_fit_span_keeps_the_longest_prefix_or_suffix_that_fits() -> None:
    text = " ".join(f"w{i}" for i in range(50))
    m = _measure(text)
    assert fit_span(m, _offsets(text), len(text), 100) == (0, len(text))
    s, e = fit_span(m, _offsets(text), len(text), 13)
    assert (s, text[s:e].split()) == (0, [f"w{i}" for i in range(10)])
    s, e = fit_span(m, _offsets(text), len(text), 13, side="left")
    assert (e, text[s:e].split()) == (len(text), [f"w{i}" for i in range(40, 50)])
    assert fit_span(m, _offsets(text), len(text), 3) == (0, 0)
    with pytest.raises(ConfigError, match="template and query take 3 tokens"):
        check_room(m, 2, "t")


@pytest.mark.parametrize("overlap", [0, 2, 5, 100])
def test_chunks_fit_cover_and_overlap(overlap: int) -> None:
    text = "  " + "   ".join(f"w{i}" for i in range(47)) + "  "
    m = _measure(text)
    plan = chunk_spans(m, _offsets(text), len(text), 13, overlap=overlap, max_chunks=100)
    assert not plan.truncated
    assert plan.spans[0][0] == 0 and plan.spans[-1][1] == len(text)
    for (s1, e1), (s2, _e2) in zip(plan.spans, plan.spans[1:]):
        assert s1 < s2 <= e1  # contiguous cover, strictly advancing
    words_seen = [text[s:e].split() for s, e in plan.spans]
    assert all(m(s, e) <= 13 for s, e in plan.spans)
    assert all(len(w) == 10 for w in words_seen[:-1])
    shared = len(set(words_seen[0]) & set(words_seen[1]))
    assert shared == min(overlap, 5)
    assert chunk_spans(m, _offsets(text), len(text), 1000).spans == ((0, len(text)),)


def test_max_chunks_drops_the_tail() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    plan = chunk_spans(_measure(text), _offsets(text), len(text), 13, overlap=0, max_chunks=3)
    assert plan.truncated and len(plan.spans) == 3 and text[plan.spans[-1][0]:plan.spans[-1][1]].split()[-1] == "w29"


def test_aggregate_and_best_chunk() -> None:
    assert aggregate([0.1, 0.9, 0.5], "max") == (0.9, 1)
    assert aggregate([0.1, 0.9, 0.5], "first") == (0.1, 1)
    assert aggregate([0.1, 0.9, 0.5], "mean")[0] == pytest.approx(0.5)
    assert aggregate([0.7, 0.7], "max") == (0.7, 0)
    value, info = best_chunk([(0, 5), (3, 9)], [0.2, 0.4], "max")
    assert value == 0.4 and info == {"start": 3, "end": 9, "score": 0.4, "index": 1, "chunks": 2}
    with pytest.raises(ConfigError):
        aggregate([1.0], "median")
