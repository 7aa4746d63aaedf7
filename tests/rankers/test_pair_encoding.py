"""encode_pairs: same tokens as sentence-transformers when truncating, counted truncation, overlapping windows."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")

import itertools

from rerank_plugins.engine.length_policy import LengthPolicy
from rerank_plugins.errors import ConfigError
from rerank_plugins.rankers._pair_encoding import encode_pairs


@pytest.fixture(scope="module")
def tok() -> Any:
    from transformers import AutoTokenizer

    from rerank_plugins.testing.tiny_models import minilm_folder

    return AutoTokenizer.from_pretrained(str(minilm_folder()))


LONG = " ".join(f"word{i}" for i in range(300))


def test_truncation_matches_the_tokenizer_longest_first(tok: Any) -> None:
    qs, ds = ["short query", "another query here"], ["short doc", LONG]
    enc = encode_pairs(tok, qs, ds, max_length=64)
    ref = tok(qs, ds, truncation=True, max_length=64)
    assert enc.input_ids == ref["input_ids"]
    assert enc.token_type_ids == ref["token_type_ids"]
    assert enc.owner == [0, 1]
    assert enc.truncated == [1] and enc.chunked == []


def test_nothing_truncated_when_it_fits(tok: Any) -> None:
    enc = encode_pairs(tok, ["q"], ["a b c"], max_length=512)
    assert enc.truncated == [] and enc.lengths == [len(tok("q", "a b c")["input_ids"])]


def test_truncate_mode_counts_too(tok: Any) -> None:
    enc = encode_pairs(tok, ["q"], [LONG], max_length=32, policy=LengthPolicy())
    assert enc.truncated == [0] and enc.lengths == [32]


def test_chunks_cover_the_document_with_overlap(tok: Any) -> None:
    overlap = 8
    policy = LengthPolicy(long_documents="chunk", chunk_overlap=overlap, max_chunks=100)
    enc = encode_pairs(tok, ["my query", "q2"], [LONG, "fits"], max_length=48, policy=policy)
    assert enc.chunked == [0] and enc.truncated == []
    rows = [r for r, o in zip(enc.input_ids, enc.owner) if o == 0]
    assert all(len(r) <= 48 for r in rows)
    assert enc.owner.count(1) == 1 and enc.plans[1].spans == ((0, 4),)
    spans = enc.plans[0].spans
    assert len(spans) == len(rows) > 1 and spans[0][0] == 0 and spans[-1][1] == len(LONG)
    for (s1, e1), (s2, _e2) in itertools.pairwise(spans):
        assert s1 < s2 < e1  # overlapping, advancing
    for row, (s, e), (q, d) in zip(rows, spans, [t for t, o in zip(enc.row_texts, enc.owner) if o == 0]):
        assert (q, d) == ("my query", LONG[s:e]) and row == tok("my query", LONG[s:e])["input_ids"]
        # each window holds as many tokens as fit (the next cut point would not)
        assert len(row) >= 48 - 3


def test_long_query_is_cut_to_leave_room_in_chunk_mode(tok: Any) -> None:
    enc = encode_pairs(tok, [LONG], [LONG], max_length=64, policy=LengthPolicy(long_documents="chunk"))
    assert enc.query_cut == [0] and enc.truncated == [0]  # a 300-word document needs more than 10 windows
    assert all(len(r) <= 64 for r in enc.input_ids)
    assert len(enc.input_ids) > 1


def test_query_and_document_caps(tok: Any) -> None:
    enc = encode_pairs(tok, ["one two three four five"], [LONG], max_length=512, query_max_length=2,
                       doc_max_length=10)
    assert enc.capped == [0] and enc.truncated == []
    doc_tokens = tok(LONG, add_special_tokens=False)["input_ids"][:10]
    ref = tok("one two", tok.decode(doc_tokens))["input_ids"]
    assert enc.input_ids[0] == ref
    assert len(enc.input_ids[0]) == 2 + 10 + 3


def test_tiny_max_length(tok: Any) -> None:
    with pytest.raises(ConfigError, match="no room"):
        encode_pairs(tok, ["q"], [LONG], max_length=3, policy=LengthPolicy(long_documents="chunk"))


def test_empty_input(tok: Any) -> None:
    enc = encode_pairs(tok, [], [], max_length=32)
    assert enc.input_ids == [] and enc.owner == []
