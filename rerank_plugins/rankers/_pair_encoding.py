"""Tokenise (query, document) pairs for a cross-encoder, once, with truncation that is counted, never silent.

:func:`encode_pairs` returns one token row per pair, or several rows per overlong pair when documents are
chunked. The pair template (special tokens, token type ids) always comes from the tokenizer itself, so any
``AutoTokenizer`` works. In truncate mode (the length policy's default) a pair that fits is encoded exactly as
sentence-transformers' ``CrossEncoder`` encodes it, and an overlong pair is cut with the same ``"longest_first"``
strategy, which keeps scores identical to ``CrossEncoder.predict``.

In chunk mode (:class:`~rerank_plugins.engine.length_policy.LengthPolicy` with ``long_documents="chunk"``) an
overlong document is split into token windows that each fit beside the query
(:func:`~rerank_plugins.engine.length_policy.chunk_spans`): each window's row is exactly the encoding of the pair
``(query, document_prefix + window text)``, and ``spans`` gives the window's character span in the original
document. A query too long to leave a 32-token window is cut first (counted in ``query_cut``). Chunking needs a
fast (Rust) tokenizer, as do ``query_max_length`` and ``doc_max_length``, which cut texts at token boundaries
using offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..engine.length_policy import DocumentPlan, LengthPolicy, plan_document, token_offsets
from ..errors import ConfigError

__all__ = ["EncodedPairs", "encode_pairs"]

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
    #: chunk mode: each pair's plan (the character spans of its windows in the original document)
    plans: list[DocumentPlan] = field(default_factory=list)
    #: chunk mode: the (query, document text) each row encodes exactly (a window's text with its prefix)
    row_texts: list[tuple[str, str]] = field(default_factory=list)

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
    policy: LengthPolicy | None = None,
    query_max_length: int | None = None,
    doc_max_length: int | None = None,
    document_prefix: str = "",
) -> EncodedPairs:
    """Encode ``zip(queries, document_prefix + documents)`` under ``policy`` (default: truncate); see the module
    docstring for the truncation and chunking rules."""
    policy = policy if policy is not None else LengthPolicy()
    if len(queries) != len(documents):
        raise ValueError(f"got {len(queries)} queries and {len(documents)} documents")
    n = len(queries)
    qs, q_capped = _unique_cap(tokenizer, queries, query_max_length)
    ds, d_capped = _cap_texts(tokenizer, [document_prefix + d for d in documents], doc_max_length)
    capped = [i for i in range(n) if q_capped[i] or d_capped[i]]
    with_types = "token_type_ids" in getattr(tokenizer, "model_input_names", ())
    if n == 0:
        return EncodedPairs([], [] if with_types else None, [], capped=capped)

    full = tokenizer(qs, ds, truncation=False, return_token_type_ids=with_types, verbose=False)
    ids: list[list[int]] = list(full["input_ids"])
    types: list[list[int]] | None = list(full["token_type_ids"]) if with_types else None
    overlong = [i for i in range(n) if len(ids[i]) > max_length]
    result = EncodedPairs(ids, types, list(range(n)), capped=capped)
    if policy.chunking:
        raw = [d[len(document_prefix):] for d in ds]  # the (capped) documents without their prefix
        result.plans = [DocumentPlan(((0, len(d)),), False) for d in raw]
        if not overlong:
            result.row_texts = list(zip(qs, ds))
            return result
        return _chunk(tokenizer, qs, raw, document_prefix, result, overlong, max_length, policy, with_types)
    if not overlong:
        return result
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


def _chunk(
    tokenizer: Any,
    qs: list[str],
    docs: list[str],
    prefix: str,
    result: EncodedPairs,
    overlong: list[int],
    max_length: int,
    policy: LengthPolicy,
    with_types: bool,
) -> EncodedPairs:
    """Replace each overlong pair's row by document windows that fit beside the query."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    room = max_length - special
    if room < 2:
        raise ConfigError(f"max_length={max_length} leaves no room for text after {special} special tokens")
    keep_query = max(1, room - min(_MIN_WINDOW, room // 2))
    sub_q_cut, q_cut = _unique_cap(tokenizer, [qs[i] for i in overlong], keep_query)
    windows: dict[int, list[tuple[list[int], list[int] | None]]] = {}
    texts: dict[int, list[tuple[str, str]]] = {}
    for k, i in enumerate(overlong):
        query, doc = sub_q_cut[k], docs[i]
        memo: dict[tuple[int, int], Any] = {}

        def encode(s: int, e: int, query: str = query, doc: str = doc, memo: dict[tuple[int, int], Any] = memo) -> Any:
            if (s, e) not in memo:
                memo[(s, e)] = tokenizer(query, prefix + doc[s:e], truncation=False,
                                         return_token_type_ids=with_types, verbose=False)
            return memo[(s, e)]

        def measure(s: int, e: int, encode: Any = encode) -> int:
            return len(encode(s, e)["input_ids"])

        plan = plan_document(policy, len(doc), max_length, measure, partial(token_offsets, tokenizer, doc),
                             who="cross-encoder")
        result.plans[i] = plan
        rows = [encode(s, e) for s, e in plan.spans]
        windows[i] = [(list(r["input_ids"]), list(r["token_type_ids"]) if with_types else None) for r in rows]
        texts[i] = [(query, prefix + doc[s:e]) for s, e in plan.spans]
    ids: list[list[int]] = []
    types: list[list[int]] | None = [] if with_types else None
    owner: list[int] = []
    row_texts: list[tuple[str, str]] = []
    for i in range(len(qs)):
        if i in windows:
            rows_i, texts_i = windows[i], texts[i]
        else:
            rows_i = [(result.input_ids[i], result.token_type_ids[i] if result.token_type_ids is not None else None)]
            texts_i = [(qs[i], prefix + docs[i])]
        for (row, row_types), text in zip(rows_i, texts_i):
            ids.append(row)
            if types is not None:
                types.append(row_types or [])
            owner.append(i)
            row_texts.append(text)
    query_cut = [overlong[k] for k, c in enumerate(q_cut) if c]
    return EncodedPairs(
        ids, types, owner, truncated=[i for i in overlong if result.plans[i].truncated],
        chunked=[i for i in overlong if result.plans[i].chunked], query_cut=query_cut, capped=result.capped,
        plans=result.plans, row_texts=row_texts,
    )
