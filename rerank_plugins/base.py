"""The one reranker contract every strategy implements and every adapter calls.

A strategy subclasses :class:`Reranker` and implements :meth:`Reranker._score`, which returns one float per
candidate in input order (higher is better): either a plain sequence of floats, or a :class:`Scores` object
that adds optional per-candidate reasoning and details, and listwise window traces. Everything else is done here once:
input coercion and validation, stable sorting (ties keep input order), ranks, ``top_k`` and
``score_threshold``, batching over many queries and the async forms.

Listwise strategies that produce an order rather than scores use :func:`scores_from_order`, which gives
monotone scores derived from rank (1.0 for the first, decreasing to 1/n for the last).
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError, InvalidInputError, ModelOutputError
from .types import (
    Candidate,
    Query,
    RankedList,
    ScoredCandidate,
    WindowTrace,
    as_candidates,
    as_query,
)
from .validation import check_int, is_number

__all__ = [
    "BatchedReranker", "CandidatesInput", "QueryInput", "Reranker", "Scores", "ScoresLike", "scores_from_order",
]

QueryInput = Query | str
CandidatesInput = Sequence[Candidate | str | Mapping[str, Any]]


@dataclass(frozen=True)
class Scores:
    """What a strategy returns for one query: a score per candidate, in input order (a frozen value, like the
    types of :mod:`rerank_plugins.types`: derive a changed copy with :func:`dataclasses.replace`)."""

    values: Sequence[float]
    reasoning: Sequence[str | None] | None = None
    details: Sequence[Mapping[str, Any]] | None = None
    traces: Sequence[WindowTrace] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


#: What :meth:`Reranker._score` may return: a :class:`Scores` or just the floats, one per candidate in input order.
ScoresLike = Scores | Sequence[float]


def _as_scores(name: str, value: object) -> Scores:
    if isinstance(value, Scores):
        return value
    sized = hasattr(value, "__len__") and hasattr(value, "__iter__")  # a list, tuple or 1-d numpy array
    if isinstance(value, (str, bytes, Mapping)) or not sized:
        raise ModelOutputError(
            f"{name}: _score must return a Scores object or a sequence of floats, got {type(value).__name__}"
        )
    return Scores(values=value)  # type: ignore[arg-type]


def scores_from_order(order: Sequence[int], n: int | None = None) -> list[float]:
    """Monotone scores from a permutation: ``order[0]`` (best) gets 1.0, the last gets ``1/n``.

    ``order`` lists candidate indices best first and must be a permutation of ``range(n)``.
    """
    n = len(order) if n is None else n
    if sorted(order) != list(range(n)):
        raise ValueError(f"order is not a permutation of range({n}): {list(order)}")
    scores = [0.0] * n
    for rank, index in enumerate(order):
        scores[index] = (n - rank) / n
    return scores


def _check_top_k(top_k: int | None) -> None:
    if top_k is None:
        return
    check_int("top_k", top_k, 0, optional=True, error=InvalidInputError)


def _check_threshold(score_threshold: float | None) -> None:
    if score_threshold is None:
        return
    if not is_number(score_threshold):
        raise InvalidInputError(
            f"score_threshold must be a number or None, got {type(score_threshold).__name__}"
        )
    if math.isnan(score_threshold):
        raise InvalidInputError("score_threshold must not be NaN")


class Reranker(ABC):
    """Base class of every reranker.

    Subclasses set :attr:`name` and implement :meth:`_score`. They may override :meth:`_score_many` to batch
    work across queries (pointwise models do: see :class:`BatchedReranker`), and :meth:`_ascore` for a natively
    asynchronous backend.
    """

    #: Short, stable name of the strategy or model (shown in results and adapters).
    name: str = "reranker"

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> ScoresLike:
        """Score ``candidates`` (never empty) for ``query``; one value per candidate, in input order.

        Return the floats themselves (a list, tuple or array) or a :class:`Scores` when there is reasoning,
        per-candidate details or window traces to report.
        """

    def _score_many(
        self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]
    ) -> Sequence[ScoresLike]:
        """Score several queries; the default loops over :meth:`_score`."""
        return [self._score(q, c) for q, c in zip(queries, lists)]

    async def _ascore(self, query: Query, candidates: Sequence[Candidate]) -> ScoresLike:
        """Async scoring; the default runs :meth:`_score` in a worker thread so the event loop stays free."""
        return await asyncio.to_thread(self._score, query, candidates)

    async def _ascore_many(
        self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]
    ) -> Sequence[ScoresLike]:
        return await asyncio.to_thread(self._score_many, queries, lists)

    # ------------------------------------------------------------------ public API
    def rerank(
        self,
        query: QueryInput,
        candidates: CandidatesInput,
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> RankedList:
        """Rerank ``candidates`` for ``query``.

        Every candidate comes back exactly once, best first, unless ``top_k`` (keep the best k; 0 keeps none)
        or ``score_threshold`` (keep scores ``>=`` the threshold) is given. Equal scores keep input order.
        """
        q, cands = self._prepare(query, candidates, top_k, score_threshold)
        if not cands:
            return RankedList(query=q, results=(), reranker=self.name)
        return self._finish(q, cands, self._score(q, cands), top_k, score_threshold)

    def rerank_batch(
        self,
        queries: Sequence[QueryInput],
        candidates: Sequence[CandidatesInput],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[RankedList]:
        """Rerank many queries at once (one candidate list per query); results in query order."""
        prepared = self._prepare_many(queries, candidates, top_k, score_threshold)
        todo = [i for i, (_, c) in enumerate(prepared) if c]
        scored = self._score_many([prepared[i][0] for i in todo], [prepared[i][1] for i in todo])
        return self._finish_many(prepared, todo, scored, top_k, score_threshold)

    async def arerank(
        self,
        query: QueryInput,
        candidates: CandidatesInput,
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> RankedList:
        """Async form of :meth:`rerank`; does not block the running event loop."""
        q, cands = self._prepare(query, candidates, top_k, score_threshold)
        if not cands:
            return RankedList(query=q, results=(), reranker=self.name)
        return self._finish(q, cands, await self._ascore(q, cands), top_k, score_threshold)

    async def arerank_batch(
        self,
        queries: Sequence[QueryInput],
        candidates: Sequence[CandidatesInput],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[RankedList]:
        """Async form of :meth:`rerank_batch`."""
        prepared = self._prepare_many(queries, candidates, top_k, score_threshold)
        todo = [i for i, (_, c) in enumerate(prepared) if c]
        scored = await self._ascore_many([prepared[i][0] for i in todo], [prepared[i][1] for i in todo])
        return self._finish_many(prepared, todo, scored, top_k, score_threshold)

    def close(self) -> None:  # noqa: B027 - an optional hook: rerankers without resources keep this no-op
        """Release resources (models, HTTP sessions). Safe to call more than once."""

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    # ------------------------------------------------------------------ shared machinery
    @staticmethod
    def _prepare(
        query: QueryInput,
        candidates: CandidatesInput,
        top_k: int | None,
        score_threshold: float | None,
    ) -> tuple[Query, list[Candidate]]:
        _check_top_k(top_k)
        _check_threshold(score_threshold)
        return as_query(query), as_candidates(candidates)

    def _prepare_many(
        self,
        queries: Sequence[QueryInput],
        candidates: Sequence[CandidatesInput],
        top_k: int | None,
        score_threshold: float | None,
    ) -> list[tuple[Query, list[Candidate]]]:
        if isinstance(queries, (str, Query)) or not isinstance(queries, Sequence):
            raise InvalidInputError("queries must be a list of queries (use rerank() for a single query)")
        if not isinstance(candidates, Sequence) or len(queries) != len(candidates):
            raise InvalidInputError(
                "rerank_batch needs one candidate list per query: "
                f"got {len(queries)} queries and "
                f"{len(candidates) if isinstance(candidates, Sequence) else type(candidates).__name__} lists"
            )
        return [self._prepare(q, c, top_k, score_threshold) for q, c in zip(queries, candidates)]

    def _finish_many(
        self,
        prepared: list[tuple[Query, list[Candidate]]],
        todo: list[int],
        scored: Sequence[ScoresLike],
        top_k: int | None,
        score_threshold: float | None,
    ) -> list[RankedList]:
        if len(scored) != len(todo):
            raise ModelOutputError(f"{self.name} returned {len(scored)} score lists for {len(todo)} queries")
        by_index = dict(zip(todo, scored))
        out = []
        for i, (q, cands) in enumerate(prepared):
            if i in by_index:
                out.append(self._finish(q, cands, by_index[i], top_k, score_threshold))
            else:
                out.append(RankedList(query=q, results=(), reranker=self.name))
        return out

    def _finish(
        self,
        query: Query,
        candidates: list[Candidate],
        raw_scores: ScoresLike,
        top_k: int | None,
        score_threshold: float | None,
    ) -> RankedList:
        scores = _as_scores(self.name, raw_scores)
        n = len(candidates)
        values = list(scores.values)
        if len(values) != n:
            raise ModelOutputError(f"{self.name} returned {len(values)} scores for {n} candidates")
        clean: list[float] = []
        for i, v in enumerate(values):
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ModelOutputError(
                    f"{self.name} produced a non-numeric score {v!r} for candidate {candidates[i].id!r}"
                ) from None
            if math.isnan(f):
                raise ModelOutputError(f"{self.name} produced a NaN score for candidate {candidates[i].id!r}")
            clean.append(f)
        reasoning = list(scores.reasoning) if scores.reasoning is not None else [None] * n
        details = list(scores.details) if scores.details is not None else [None] * n
        if len(reasoning) != n or len(details) != n:
            raise ConfigError(f"{self.name}: reasoning/details must have one entry per candidate")
        # Stable sort: equal scores keep input order.
        order = sorted(range(n), key=lambda i: -clean[i])
        results: list[ScoredCandidate] = []
        for rank, i in enumerate(order, start=1):
            if score_threshold is not None and clean[i] < score_threshold:
                continue
            results.append(
                ScoredCandidate(
                    candidate=candidates[i],
                    score=clean[i],
                    rank=rank,
                    original_position=i,
                    reasoning=reasoning[i],
                    details=details[i],  # type: ignore[arg-type]
                )
            )
        if top_k is not None:
            results = results[:top_k]
        return RankedList(
            query=query,
            results=tuple(results),
            traces=tuple(scores.traces),
            reranker=self.name,
            details=scores.extra,
        )


class BatchedReranker(Reranker):
    """Base of the strategies that score many queries in one go: they implement :meth:`_score_many` only, and
    one query is scored as a batch of one (written once here rather than in each strategy)."""

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> ScoresLike:
        return self._score_many([query], [candidates])[0]

    @abstractmethod
    def _score_many(
        self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]
    ) -> Sequence[ScoresLike]:
        """Score several queries (each list never empty); one result per query, in query order."""
