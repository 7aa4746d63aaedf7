"""A cascade of rerankers: cheap on many candidates, expensive on the few that survive.

``CascadeReranker(stages=[(cheap, 100), (expensive, 20)])`` keeps the input order (the first stage's order),
reranks its top 100 with ``cheap``, then the top 20 of that with ``expensive``. ``depth=None`` reranks the whole
current list. A stage given without a depth (a bare reranker) means ``None``.

Every input comes back exactly once. The final order is the last stage's head, then what the stage before left
below it (in that stage's order), and so on down to the input order for the candidates no stage reached.

Scores. The top tier keeps its reranker's own scores (so a threshold on, say, a cross-encoder probability means
what it says). Every lower tier keeps its own scores shifted down by a constant so that its best score is exactly
1.0 below the worst score of the tier above; within a tier, differences are kept. Candidates no stage reached get
``-position`` before the shift. Scores are therefore strictly lower in each tier below, and only the top tier's
are on the model's scale. If any score is infinite (e.g. a log-probability of ``-inf``), the whole list falls back
to rank-derived scores (``1.0`` for the first down to ``1/n``), and ``details["scores"] == "rank"``.

Each candidate's ``details["cascade"]`` holds the tier that placed it (``0`` = no stage, ``i`` = stage ``i``) and
its raw score there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base import Reranker, Scores, scores_from_order
from ..errors import ConfigError, ModelOutputError
from ..types import Candidate, Query, RankedList
from ..validation import check_int
from ._compose import as_reranker

__all__ = ["CascadeReranker"]

TIER_GAP = 1.0


@dataclass
class _Entry:
    index: int  # position in the input
    tier: int
    score: float


def _check_depth(depth: Any, i: int) -> int | None:
    if depth is None:
        return None
    return check_int(f"stage {i}: depth", depth, 1, optional=True)


class CascadeReranker(Reranker):
    """Run rerankers one after the other on shrinking heads of the list (see the module docstring)."""

    def __init__(self, stages: Sequence[Any] = (), *, name: str | None = None) -> None:
        if isinstance(stages, (str, Reranker)) or not isinstance(stages, Sequence) or not stages:
            raise ConfigError("stages must be a non-empty list of (reranker, depth) pairs or rerankers")
        self.stages: list[tuple[Reranker, int | None]] = []
        self._owned: list[Reranker] = []
        for i, stage in enumerate(stages):
            if isinstance(stage, tuple):
                if len(stage) != 2:
                    raise ConfigError(f"stage {i} must be (reranker, depth), got a tuple of {len(stage)}")
                given, depth = stage
            else:
                given, depth = stage, None
            reranker = as_reranker(given, f"CascadeReranker stage {i}")
            if not isinstance(given, Reranker):
                self._owned.append(reranker)
            self.stages.append((reranker, _check_depth(depth, i)))
        desc = " > ".join(f"{r.name}@{'all' if d is None else d}" for r, d in self.stages)
        self.name = name if name is not None else f"cascade({desc})"

    # ------------------------------------------------------------------ the cascade
    @staticmethod
    def _initial(candidates: Sequence[Candidate]) -> list[_Entry]:
        return [_Entry(i, 0, -float(i)) for i in range(len(candidates))]

    @staticmethod
    def _apply(current: list[_Entry], tier: int, depth: int | None, result: RankedList) -> list[_Entry]:
        head_len = len(current) if depth is None else min(depth, len(current))
        head = current[:head_len]
        reranked = [_Entry(head[r.original_position].index, tier, r.score) for r in result.results]
        if len(reranked) != head_len:
            raise ModelOutputError(f"stage {tier} returned {len(reranked)} of {head_len} candidates")
        return reranked + current[head_len:]

    @staticmethod
    def _head(current: list[_Entry], candidates: Sequence[Candidate], depth: int | None) -> list[Candidate]:
        head = current if depth is None else current[:depth]
        return [candidates[e.index] for e in head]

    @staticmethod
    def _finish_scores(current: list[_Entry], n: int, traces: list[Any], names: list[str]) -> Scores:
        raw = [e.score for e in current]
        values = [0.0] * n
        mode = "tiered"
        if not all(math.isfinite(s) for s in raw):
            mode = "rank"
            for index, v in zip((e.index for e in current), scores_from_order(list(range(n)))):
                values[index] = v
        else:
            floor: float | None = None  # lowest score of the tier above
            pos = 0
            while pos < n:
                end = pos
                while end < n and current[end].tier == current[pos].tier:
                    end += 1
                block = current[pos:end]
                shift = 0.0 if floor is None else (floor - TIER_GAP) - max(e.score for e in block)
                for e in block:
                    values[e.index] = e.score + shift
                floor = min(values[e.index] for e in block)
                pos = end
        details: list[dict[str, Any]] = [{}] * n
        for e in current:
            details[e.index] = {"cascade": {"tier": e.tier, "stage": names[e.tier], "raw_score": e.score}}
        return Scores(values, details=details, traces=traces, extra={"scores": mode, "stages": tuple(names[1:])})

    def _run(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        states = [self._initial(c) for c in lists]
        traces: list[list[Any]] = [[] for _ in lists]
        for tier, (reranker, depth) in enumerate(self.stages, start=1):
            heads = [self._head(s, c, depth) for s, c in zip(states, lists)]
            results = reranker.rerank_batch(list(queries), heads)
            for i, result in enumerate(results):
                states[i] = self._apply(states[i], tier, depth, result)
                traces[i].extend(result.traces)
        names = ["input", *(r.name for r, _ in self.stages)]
        return [self._finish_scores(s, len(c), t, names) for s, c, t in zip(states, lists, traces)]

    async def _arun(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        states = [self._initial(c) for c in lists]
        traces: list[list[Any]] = [[] for _ in lists]
        for tier, (reranker, depth) in enumerate(self.stages, start=1):
            heads = [self._head(s, c, depth) for s, c in zip(states, lists)]
            results = await reranker.arerank_batch(list(queries), heads)
            for i, result in enumerate(results):
                states[i] = self._apply(states[i], tier, depth, result)
                traces[i].extend(result.traces)
        names = ["input", *(r.name for r, _ in self.stages)]
        return [self._finish_scores(s, len(c), t, names) for s, c, t in zip(states, lists, traces)]

    # ------------------------------------------------------------------ Reranker
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return self._run([query], [candidates])[0]

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        return self._run(queries, lists)

    async def _ascore(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return (await self._arun([query], [candidates]))[0]

    async def _ascore_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        return await self._arun(queries, lists)

    def close(self) -> None:
        for r in self._owned:
            r.close()

    def __repr__(self) -> str:
        return f"CascadeReranker({self.name!r})"
