"""Tokenise (query, document) pairs for a cross-encoder, once, with truncation that is counted, never silent.

:func:`encode_pairs` returns one token row per pair, or several rows per overlong pair when documents are
chunked. The pair template (special tokens, token type ids) always comes from the tokenizer itself, so any
``AutoTokenizer`` works. Without chunking, a pair that fits is encoded exactly as sentence-transformers'
``CrossEncoder`` encodes it, and an overlong pair is cut with the same ``"longest_first"`` strategy, which keeps
scores identical to ``CrossEncoder.predict``.

Chunking (``"chunk-max"`` / ``"chunk-mean"``) splits an overlong document into overlapping windows that each fit
beside the query (the tokenizer's ``return_overflowing_tokens`` with a ``stride``); the caller pools the window
scores. It needs a fast (Rust) tokenizer, as do ``query_max_length`` and ``doc_max_length``, which cut texts at
token boundaries using offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["LONG_DOCUMENT_MODES", "EncodedPairs", "encode_pairs"]

LONG_DOCUMENT_MODES = ("warn", "truncate", "chunk-max", "chunk-mean")
#: smallest document window (in tokens) worth scoring in chunk mode; a longer query is cut to make room
_MIN_WINDOW = 32


@dataclass
class EncodedPairs:
    """Token rows for a list of pairs. ``owner[r]`` is the pair index row ``r`` belongs to."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None
    owner: list[int]
    #: pairs whose text was cut to fit ``max_length`` (query, document or both)
    truncated: list[int] = field(default_factory=list)
    #: pairs split into more than one window
    chunked: list[int] = field(default_factory=list)
    #: pairs whose query was cut to leave room for document windows (chunk mode only)
    query_cut: list[int] = field(default_factory=list)
    #: pairs cut by the explicit ``query_max_length`` / ``doc_max_length`` options (expected, not warned)
    capped: list[int] = field(default_factory=list)

    @property
    def lengths(self) -> list[int]:
        return [len(r) for r in self.input_ids]


def _cap_texts(tokenizer: Any, texts: Sequence[str], limit: int | None) -> tuple[list[str], list[bool]]:
    """Cut each text after its ``limit``-th token (at the character offset where that token ends)."""
    if limit is None:
        return list(texts), [False] * len(texts)
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    out, cut = [], []
    for text, offsets in zip(texts, enc["offset_mapping"]):
        if len(offsets) > limit:
            out.append(text[: offsets[limit - 1][1]])
            cut.append(True)
        else:
            out.append(text)
            cut.append(False)
    return out, cut


def _unique_cap(tokenizer: Any, texts: Sequence[str], limit: int | None) -> tuple[list[str], list[bool]]:
    """:func:`_cap_texts` on the distinct texts only (queries repeat once per candidate)."""
    if limit is None:
        return list(texts), [False] * len(texts)
    distinct = list(dict.fromkeys(texts))
    capped, cut = _cap_texts(tokenizer, distinct, limit)
    by_text = {t: (c, k) for t, c, k in zip(distinct, capped, cut)}
    return [by_text[t][0] for t in texts], [by_text[t][1] for t in texts]


def encode_pairs(
    tokenizer: Any,
    queries: Sequence[str],
    documents: Sequence[str],
    *,
    max_length: int,
    long_documents: str = "warn",
    query_max_length: int | None = None,
    doc_max_length: int | None = None,
    chunk_overlap: int = 64,
) -> EncodedPairs:
    """Encode ``zip(queries, documents)``; see the module docstring for the truncation and chunking rules."""
    if long_documents not in LONG_DOCUMENT_MODES:
        raise ConfigError(f"long_documents must be one of {LONG_DOCUMENT_MODES}, got {long_documents!r}")
    if len(queries) != len(documents):
        raise ValueError(f"got {len(queries)} queries and {len(documents)} documents")
    n = len(queries)
    qs, q_capped = _unique_cap(tokenizer, queries, query_max_length)
    ds, d_capped = _cap_texts(tokenizer, documents, doc_max_length)
    capped = [i for i in range(n) if q_capped[i] or d_capped[i]]
    with_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    if n == 0:
        return EncodedPairs([], [] if with_types else None, [], capped=capped)

    full = tokenizer(qs, ds, truncation=False, return_token_type_ids=with_types, verbose=False)
    ids: list[list[int]] = list(full["input_ids"])
    types: list[list[int]] | None = list(full["token_type_ids"]) if with_types else None
    overlong = [i for i in range(n) if len(ids[i]) > max_length]
    result = EncodedPairs(ids, types, list(range(n)), capped=capped)
    if not overlong:
        return result

    if long_documents in ("warn", "truncate"):
        cut = tokenizer(
            [qs[i] for i in overlong],
            [ds[i] for i in overlong],
            truncation="longest_first",
            max_length=max_length,
            return_token_type_ids=with_types,
            verbose=False,
        )
        for k, i in enumerate(overlong):
            ids[i] = cut["input_ids"][k]
            if types is not None:
                types[i] = cut["token_type_ids"][k]
        result.truncated = overlong
        return result
    return _chunk(tokenizer, qs, ds, result, overlong, max_length, chunk_overlap, with_types)


def _chunk(
    tokenizer: Any,
    qs: list[str],
    ds: list[str],
    result: EncodedPairs,
    overlong: list[int],
    max_length: int,
    chunk_overlap: int,
    with_types: bool,
) -> EncodedPairs:
    """Replace each overlong pair's row by document windows that fit beside the query."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    room = max_length - special
    if room < 2:
        raise ConfigError(f"max_length={max_length} leaves no room for text after {special} special tokens")
    keep_query = max(1, room - min(_MIN_WINDOW, room // 2))
    sub_q = [qs[i] for i in overlong]
    q_lens = [len(x) for x in tokenizer(sub_q, add_special_tokens=False, verbose=False)["input_ids"]]
    sub_q_cut, q_cut = _unique_cap(tokenizer, sub_q, keep_query)
    q_lens = [min(length, keep_query) for length in q_lens]
    # One call per distinct window size (the stride must stay below the window); usually a single call.
    groups: dict[int, list[int]] = {}
    for k, ql in enumerate(q_lens):
        window = room - ql
        # At most half a window of overlap, so windows always advance (and re-tokenised cut queries fit).
        groups.setdefault(min(chunk_overlap, (window - 1) // 2), []).append(k)
    rows: dict[int, list[tuple[list[int], list[int] | None]]] = {}
    for stride, members in groups.items():
        enc = tokenizer(
            [sub_q_cut[k] for k in members],
            [ds[overlong[k]] for k in members],
            truncation="only_second",
            max_length=max_length,
            stride=max(0, stride),
            return_overflowing_tokens=True,
            return_token_type_ids=with_types,
            verbose=False,
        )
        for r, sample in enumerate(enc["overflow_to_sample_mapping"]):
            pair = overlong[members[sample]]
            row_types = enc["token_type_ids"][r] if with_types else None
            rows.setdefault(pair, []).append((enc["input_ids"][r], row_types))
    ids: list[list[int]] = []
    types: list[list[int]] | None = [] if with_types else None
    owner: list[int] = []
    chunked = []
    overlong_set = set(overlong)
    for i in range(len(qs)):
        if i in overlong_set:
            windows = rows[i]
            if len(windows) > 1:
                chunked.append(i)
        else:
            windows = [(result.input_ids[i], result.token_type_ids[i] if result.token_type_ids is not None else None)]
        for row, row_types in windows:
            ids.append(row)
            if types is not None:
                types.append(row_types or [])
            owner.append(i)
    query_cut = [overlong[k] for k, c in enumerate(q_cut) if c]
    return EncodedPairs(ids, types, owner, truncated=query_cut, chunked=chunked, query_cut=query_cut,
                        capped=result.capped)
