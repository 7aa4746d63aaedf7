"""One length policy for every reranker: token budgets, truncation, chunk-and-aggregate, best-chunk spans.

Pure Python (no tokenizer import): the caller passes a document's token offsets (from its own tokenizer) and a
``measure(start, end)`` function giving the token length of the model input built around ``text[start:end]``
(template, query and special tokens included). Everything here works in character positions of the ORIGINAL
text, so a span always maps back to the user's document.

The options every pointwise strategy takes (the names the adapters and the service map onto)
    ``long_documents``   ``"truncate"`` (default) or ``"chunk"``.
    ``max_chunks``       most windows per document in chunk mode (default 10, Cohere's ``max_chunks_per_doc``);
                         a document longer than that many windows has its tail dropped, counted as truncated.
    ``chunk_overlap``    tokens shared by neighbouring windows (default 32; at most half a window).
    ``chunk_aggregate``  ``"max"`` (MaxP, Dai and Callan SIGIR 2019; default), ``"first"`` or ``"mean"``.
    ``max_query_tokens`` / ``max_document_tokens``  budgets in the model's own tokens (``None``: what the
                         model's reference code uses, i.e. the model's ``max_length`` for the whole input).
    ``truncation_side``  ``"right"`` (keep the beginning; default) or ``"left"`` (keep the end).
:data:`POLICY_OPTIONS` lists them; :meth:`LengthPolicy.from_options` builds a policy from them.

``truncate`` cuts as each strategy's reference cuts (named in each strategy's docstring) and warns ONCE per call
with the number of documents cut (:class:`TruncationWarning`). ``chunk`` splits an overlong document into token
windows that each fit beside the query and the template, with the template's tail intact, scores every window
(in the same batches as everything else; identical windows once) and aggregates.

Reported per candidate (``ScoredCandidate.details`` and, through the adapters, result metadata):
    ``details["best_chunk"]`` = ``{"start": int, "end": int, "score": float, "index": int, "chunks": int}``
    (:data:`BEST_CHUNK_KEY`, :data:`BEST_CHUNK_FIELDS`): the character span ``text[start:end]`` of the best-scoring
    window in the original document, its score, its 0-based position and the number of windows scored; present
    for every document in chunk mode. ``details["truncated"] = True`` marks a document cut in truncate mode.
Per call (``RankedList.details``): ``"truncated"`` (documents cut), ``"chunked"`` (documents split into more than
one window), ``"chunks"`` (windows in all) and ``"rows_scored"`` (model inputs actually run, after dedupe).

Tokenizer offsets are not monotone in every family: a SentencePiece standalone ``▁`` piece shares the offset of
the next character, byte-level BPE gives several tokens the same character span (an emoji, a CJK character), and
WordPiece drops whitespace. :func:`cut_points` reduces any offsets to the strictly increasing character positions
where a cut is possible, and the fitting search measures the real input at each candidate cut, so a cut always
makes progress and always fits.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._warnings import caller_stacklevel
from ..errors import ConfigError
from ..validation import check_choice, check_int

__all__ = [
    "BEST_CHUNK_FIELDS",
    "BEST_CHUNK_KEY",
    "CHUNK_AGGREGATES",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_MAX_CHUNKS",
    "LEGACY_LONG_DOCUMENTS",
    "LONG_DOCUMENTS",
    "POLICY_OPTIONS",
    "TRUNCATION_SIDES",
    "ChunkPlan",
    "DocumentPlan",
    "LengthPolicy",
    "TruncationWarning",
    "aggregate",
    "best_chunk",
    "call_stats",
    "check_room",
    "chunk_spans",
    "cut_points",
    "deprecated_option",
    "document_score",
    "fit_span",
    "plan_document",
    "policy_from_options",
    "token_offsets",
    "warn_truncated",
]

LONG_DOCUMENTS = ("truncate", "chunk")
CHUNK_AGGREGATES = ("max", "first", "mean")
TRUNCATION_SIDES = ("right", "left")
DEFAULT_MAX_CHUNKS = 10
DEFAULT_CHUNK_OVERLAP = 32
#: the keyword options every pointwise strategy takes (the service and the adapters map onto these names)
POLICY_OPTIONS = ("long_documents", "max_chunks", "chunk_overlap", "chunk_aggregate")
BEST_CHUNK_KEY = "best_chunk"
BEST_CHUNK_FIELDS = ("start", "end", "score", "index", "chunks")

Measure = Callable[[int, int], int]


class TruncationWarning(UserWarning):
    """Some documents (or queries) were longer than the model's token budget and were cut."""


@dataclass(frozen=True)
class LengthPolicy:
    """How a strategy fits queries and documents into its model's token budget (see the module docstring)."""

    long_documents: str = "truncate"
    max_chunks: int = DEFAULT_MAX_CHUNKS
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    chunk_aggregate: str = "max"
    max_query_tokens: int | None = None
    max_document_tokens: int | None = None
    truncation_side: str = "right"

    def __post_init__(self) -> None:
        check_choice("long_documents", self.long_documents, LONG_DOCUMENTS)
        check_choice("chunk_aggregate", self.chunk_aggregate, CHUNK_AGGREGATES)
        check_choice("truncation_side", self.truncation_side, TRUNCATION_SIDES)
        check_int("max_chunks", self.max_chunks, 1)
        check_int("chunk_overlap", self.chunk_overlap, 0)
        check_int("max_query_tokens", self.max_query_tokens, 1, optional=True)
        check_int("max_document_tokens", self.max_document_tokens, 1, optional=True)

    @property
    def chunking(self) -> bool:
        return self.long_documents == "chunk"

    @classmethod
    def from_options(
        cls,
        *,
        long_documents: str | None = None,
        max_chunks: int | None = None,
        chunk_overlap: int | None = None,
        chunk_aggregate: str | None = None,
        max_query_tokens: int | None = None,
        max_document_tokens: int | None = None,
        truncation_side: str | None = None,
    ) -> LengthPolicy:
        """A policy from the strategies' keyword options; ``None`` means "not given" (the default)."""
        given: dict[str, Any] = {
            "long_documents": long_documents, "max_chunks": max_chunks, "chunk_overlap": chunk_overlap,
            "chunk_aggregate": chunk_aggregate, "max_query_tokens": max_query_tokens,
            "max_document_tokens": max_document_tokens, "truncation_side": truncation_side,
        }
        return cls(**{k: v for k, v in given.items() if v is not None})

    def describe(self) -> str:
        """A stable string for cache keys."""
        return (f"{self.long_documents}|{self.max_chunks}|{self.chunk_overlap}|{self.chunk_aggregate}"
                f"|{self.max_query_tokens}|{self.max_document_tokens}|{self.truncation_side}")


def deprecated_option(old: str, new: str) -> None:
    """Warn (``FutureWarning``, at the caller's line) that option ``old`` is a deprecated alias of ``new``."""
    warnings.warn(f"{old} is deprecated; use {new} (see docs/concepts.md, 'Long documents')", FutureWarning,
                  stacklevel=caller_stacklevel())


def warn_truncated(who: str, count: int, total: int, budget: int | None, *, chunking: bool = False,
                   unit: str = "documents") -> None:
    """The one warning per call that ``count`` of ``total`` inputs were cut to fit ``budget`` tokens."""
    if count <= 0:
        return
    where = f" of {budget} tokens" if budget is not None else ""
    advice = ("their tails past max_chunks windows were not scored; raise max_chunks" if chunking else
              "pass long_documents='chunk' to score every part of long documents")
    warnings.warn(
        f"{who}: {count} of {total} {unit} exceeded the model's budget{where} and were truncated; {advice}",
        TruncationWarning,
        stacklevel=caller_stacklevel(),
    )


# ---------------------------------------------------------------------- cutting
def token_offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """The character span of each token of ``text`` as a fast (Rust) ``tokenizer`` reads it alone (no special
    tokens): the cut points :func:`cut_points` and :func:`plan_document` work over."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [tuple(o) for o in enc["offset_mapping"]]


def cut_points(offsets: Sequence[Sequence[int]], text_len: int) -> tuple[list[int], list[int]]:
    """Possible cut positions of a text from its tokens' character ``offsets``.

    Returns ``(ends, token_count)``: ``ends`` the strictly increasing character positions after which the text
    can be cut (each the end of some token, the text's length last), and ``token_count[k]`` how many tokens end at
    or before ``ends[k]``. Zero-width offsets (special tokens, ``(0, 0)``) are skipped; offsets that run backwards
    or share a position (a standalone SentencePiece ``▁``, bytes of one character in byte-level BPE) collapse into
    one cut point, so no cut ever falls inside a character that several tokens share.
    """
    ends: list[int] = []
    counts: list[int] = []
    furthest = 0
    seen = 0
    for start, end in offsets:
        if end <= start and end == 0:
            continue
        seen += 1
        furthest = max(furthest, min(int(end), text_len))
        if ends and furthest <= ends[-1]:
            counts[-1] = seen
            continue
        if furthest > 0:
            ends.append(furthest)
            counts.append(seen)
    if not ends or ends[-1] < text_len:
        ends.append(text_len)
        counts.append(seen)
    else:
        counts[-1] = seen
    return ends, counts


def _largest_fitting(measure: Measure, start: int, ends: Sequence[int], lo: int, guess: int, budget: int) -> int:
    """Index ``k >= lo`` into ``ends`` of the furthest end with ``measure(start, ends[k]) <= budget``, or
    ``lo - 1`` when none fits. Gallops from ``guess``, then bisects (``measure`` grows with the end)."""
    hi_limit = len(ends) - 1
    guess = min(max(guess, lo), hi_limit)
    if measure(start, ends[guess]) <= budget:
        good, step = guess, 1
        while good < hi_limit:
            probe = min(hi_limit, good + step)
            if measure(start, ends[probe]) > budget:
                bad = probe
                break
            good, step = probe, step * 2
        else:
            return good
    else:
        bad, step = guess, 1
        good = lo - 1
        while bad > lo:
            probe = max(lo, bad - step)
            if measure(start, ends[probe]) <= budget:
                good = probe
                break
            bad, step = probe, step * 2
        if good < lo:
            return lo - 1
    while bad - good > 1:
        mid = (good + bad) // 2
        if measure(start, ends[mid]) <= budget:
            good = mid
        else:
            bad = mid
    return good


def fit_span(
    measure: Measure,
    offsets: Sequence[Sequence[int]],
    text_len: int,
    budget: int,
    *,
    side: str = "right",
) -> tuple[int, int]:
    """The character span of the text kept so that ``measure(start, end) <= budget``: the longest prefix
    (``side="right"``) or suffix (``"left"``) that fits, cut at a token boundary. ``(0, text_len)`` when the
    whole text fits; an empty span when the template and query alone fill the budget (the caller decides whether
    that is an error: :func:`check_room`)."""
    if measure(0, text_len) <= budget:
        return 0, text_len
    ends, counts = cut_points(offsets, text_len)
    if side == "right":
        total = counts[-1]
        excess = measure(0, text_len) - budget
        guess = bisect.bisect_left(counts, max(0, total - excess)) if total else 0
        k = _largest_fitting(measure, 0, ends, 0, guess, budget)
        return (0, ends[k]) if k >= 0 else (0, 0)
    # keep the end: candidate starts are the cut points before the end, searched from the right
    starts = [0, *ends[:-1]]
    rev = [text_len - s for s in reversed(starts)]  # shortest suffix first
    k = _largest_fitting(lambda _s, n: measure(text_len - n, text_len), 0, rev, 0, len(rev) // 2, budget)
    return (text_len - rev[k], text_len) if k >= 0 else (text_len, text_len)


def check_room(measure: Measure, budget: int, who: str) -> None:
    """A :class:`ConfigError` when the template and query alone (an empty document) exceed ``budget``."""
    empty = measure(0, 0)
    if empty > budget:
        raise ConfigError(f"{who}: the template and query take {empty} tokens, more than the budget of {budget}; "
                          "raise max_length or shorten the query (max_query_tokens)")


@dataclass(frozen=True)
class ChunkPlan:
    """The windows of one document: character spans into the original text, in order."""

    spans: tuple[tuple[int, int], ...]
    #: the document's tail past ``max_chunks`` windows was dropped
    truncated: bool


def chunk_spans(
    measure: Measure,
    offsets: Sequence[Sequence[int]],
    text_len: int,
    budget: int,
    *,
    overlap: int = DEFAULT_CHUNK_OVERLAP,
    max_chunks: int = DEFAULT_MAX_CHUNKS,
) -> ChunkPlan:
    """Split a text into windows that each fit: ``measure(start, end) <= budget`` for every span.

    Windows are cut at token boundaries (:func:`cut_points`), neighbours share about ``overlap`` tokens (at most
    half a window), they cover the text from its first to its last character (each window starts where the
    previous token ended, so whitespace between windows is covered), and each is as long as the budget allows.
    A text that fits is one window ``(0, text_len)``. Stops after ``max_chunks`` windows (``truncated``).
    """
    if measure(0, text_len) <= budget:
        return ChunkPlan(((0, text_len),), False)
    ends, counts = cut_points(offsets, text_len)
    empty = measure(0, 0)
    room = max(1, budget - empty)  # tokens a window may hold (a first guess; measured below)
    spans: list[tuple[int, int]] = []
    start, first_token, lo = 0, 0, 0
    skipped = False
    while len(spans) < max_chunks:
        guess = bisect.bisect_left(counts, first_token + room, lo)
        k = _largest_fitting(measure, start, ends, lo, guess, budget)
        if k < lo:
            # not even one cut point fits (a character worth more tokens than the room): skip past it
            spans.append((start, start))
            skipped = True
            if ends[lo] >= text_len:
                break
            start, first_token = ends[lo], counts[lo]
            lo += 1
            continue
        spans.append((start, ends[k]))
        if ends[k] >= text_len:
            return ChunkPlan(tuple(spans), skipped)
        window_tokens = counts[k] - first_token
        back = min(overlap, window_tokens // 2)
        target = counts[k] - back
        # the next window starts at the cut point with ``target`` tokens before it, strictly after ``start``
        j = bisect.bisect_left(counts, target, lo, k + 1)
        j = min(max(j, lo), k)
        if ends[j] <= start:
            j = k
        start = ends[j] if back > 0 else ends[k]
        first_token = counts[j] if back > 0 else counts[k]
        lo = bisect.bisect_right(ends, start)
    return ChunkPlan(tuple(spans), True)


# ---------------------------------------------------------------------- aggregating
def aggregate(scores: Sequence[float], how: str) -> tuple[float, int]:
    """``(document score, index of the best window)`` from the windows' scores: ``max`` (MaxP), ``first``
    or ``mean``; the best window is the highest-scoring one whatever ``how`` is (it is what a reader wants)."""
    if not scores:
        raise ValueError("no chunk scores to aggregate")
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    if how == "max":
        return float(scores[best]), best
    if how == "first":
        return float(scores[0]), best
    if how == "mean":
        return float(sum(scores) / len(scores)), best
    raise ConfigError(f"chunk_aggregate must be one of {list(CHUNK_AGGREGATES)}, got {how!r}")


def best_chunk(spans: Sequence[tuple[int, int]], scores: Sequence[float], how: str) -> tuple[float, dict[str, Any]]:
    """The document's aggregated score and its ``details["best_chunk"]`` entry."""
    value, k = aggregate(scores, how)
    start, end = spans[k]
    return value, {"start": int(start), "end": int(end), "score": float(scores[k]), "index": k,
                   "chunks": len(spans)}


# ---------------------------------------------------------------------- one document, end to end
@dataclass(frozen=True)
class DocumentPlan:
    """What the model reads of one document: one span (it fits, or was cut) or several windows (chunk mode)."""

    spans: tuple[tuple[int, int], ...]
    #: part of the document is not read (cut in truncate mode; past ``max_chunks`` windows in chunk mode)
    truncated: bool

    @property
    def chunked(self) -> bool:
        return len(self.spans) > 1


def plan_document(
    policy: LengthPolicy,
    text_len: int,
    budget: int,
    measure: Measure,
    offsets: Callable[[], Sequence[Sequence[int]]],
    *,
    full_length: int | None = None,
    who: str = "reranker",
) -> DocumentPlan:
    """Plan one document under ``policy``: ``measure(start, end)`` is the token length of the model input built
    around ``text[start:end]``; ``offsets()`` the document's token offsets (asked only when it is too long);
    ``full_length`` the already known ``measure(0, text_len)``."""
    length = measure(0, text_len) if full_length is None else full_length
    if length <= budget:
        return DocumentPlan(((0, text_len),), False)
    check_room(measure, budget, who)
    offs = offsets()
    if policy.chunking:
        plan = chunk_spans(measure, offs, text_len, budget, overlap=policy.chunk_overlap,
                           max_chunks=policy.max_chunks)
        return DocumentPlan(plan.spans, plan.truncated)
    return DocumentPlan((fit_span(measure, offs, text_len, budget, side=policy.truncation_side),), True)


def document_score(policy: LengthPolicy, plan: DocumentPlan, scores: Sequence[float]) -> tuple[float, dict[str, Any]]:
    """A document's score from its windows' scores, and the details it reports (``best_chunk`` in chunk mode,
    ``truncated`` when part of it was not read)."""
    details: dict[str, Any] = {}
    if policy.chunking:
        value, details[BEST_CHUNK_KEY] = best_chunk(plan.spans, scores, policy.chunk_aggregate)
    else:
        value = float(scores[0])
    if plan.truncated:
        details["truncated"] = True
    return value, details


def call_stats(plans: Sequence[DocumentPlan], rows_scored: int) -> dict[str, int]:
    """The per-call counts reported in ``RankedList.details`` (module docstring)."""
    return {
        "truncated": sum(p.truncated for p in plans),
        "chunked": sum(p.chunked for p in plans),
        "chunks": sum(len(p.spans) for p in plans),
        "rows_scored": rows_scored,
    }


#: earlier spellings of ``long_documents`` -> (mode, aggregate): accepted with a ``FutureWarning``
LEGACY_LONG_DOCUMENTS = {"warn": ("truncate", None), "chunk-max": ("chunk", "max"), "chunk-mean": ("chunk", "mean")}


def policy_from_options(
    *,
    long_documents: str | None = None,
    max_chunks: int | None = None,
    chunk_overlap: int | None = None,
    chunk_aggregate: str | None = None,
    max_query_tokens: int | None = None,
    max_document_tokens: int | None = None,
    truncation_side: str | None = None,
) -> LengthPolicy:
    """:meth:`LengthPolicy.from_options`, also accepting the earlier ``long_documents`` spellings ``"warn"``
    (now ``"truncate"``, which warns once per call) and ``"chunk-max"`` / ``"chunk-mean"`` (now ``"chunk"`` with
    ``chunk_aggregate``), each with a ``FutureWarning`` at the caller's line."""
    if isinstance(long_documents, str) and long_documents in LEGACY_LONG_DOCUMENTS:
        mode, how = LEGACY_LONG_DOCUMENTS[long_documents]
        new = f"long_documents={mode!r}" + (f", chunk_aggregate={how!r}" if how is not None else "")
        deprecated_option(f"long_documents={long_documents!r}", new)
        if how is not None and chunk_aggregate is not None and chunk_aggregate != how:
            raise ConfigError(f"long_documents={long_documents!r} contradicts chunk_aggregate={chunk_aggregate!r}")
        long_documents, chunk_aggregate = mode, how if how is not None else chunk_aggregate
    return LengthPolicy.from_options(
        long_documents=long_documents, max_chunks=max_chunks, chunk_overlap=chunk_overlap,
        chunk_aggregate=chunk_aggregate, max_query_tokens=max_query_tokens, max_document_tokens=max_document_tokens,
        truncation_side=truncation_side,
    )
