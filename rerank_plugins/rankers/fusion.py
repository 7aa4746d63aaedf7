"""Fusion of several rerankers (and, optionally, the first-stage scores) as one reranker.

``FusionReranker(rerankers=[a, b], method="rrf", k=60)`` reranks the candidates with every sub-reranker, then fuses
the rankings with :mod:`rerank_plugins.engine.fusion` (``rrf``, ``borda``, ``combsum``, ``combmnz``; the Comb
methods normalise each run with ``normalization``: ``minmax``, ``zscore``, ``sum`` or ``none``).

``include_first_stage`` adds the retriever's view as one more run:

* ``False`` (default): only the sub-rerankers;
* ``True`` or ``"score"``: ``Candidate.score``; candidates without a score are absent from that run (RRF gives
  them nothing from it, Borda the share of the left-over points, the Comb methods 0). A list where no candidate
  has a score raises :class:`~rerank_plugins.errors.InvalidInputError`;
* ``"order"``: the input order (for retrievers that return documents without scores), with scores
  ``(n - position) / n``.

``weights`` has one entry per run: the sub-rerankers in order, then the first stage. Every candidate gets
``details["fusion"]``: the rank and score it got from each run (``None`` when absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ..base import Reranker, Scores
from ..engine.fusion import FUSION_METHODS, NORMALIZATIONS, Normalization, Ranking, Ties, fuse
from ..errors import ConfigError, InvalidInputError
from ..types import Candidate, Query, RankedList
from ._compose import as_reranker, ranking_pairs

__all__ = ["FusionReranker"]

FirstStage = bool | Literal["score", "order"]


class FusionReranker(Reranker):
    """Rerank with several rerankers and fuse their rankings (see the module docstring)."""

    def __init__(
        self,
        rerankers: Sequence[Reranker | str] = (),
        method: str = "rrf",
        *,
        k: float = 60,
        weights: Sequence[float] | None = None,
        normalization: Normalization = "minmax",
        include_first_stage: FirstStage = False,
        depth: int | None = None,
        ties: Ties = "first",
        name: str | None = None,
    ) -> None:
        if isinstance(rerankers, (str, Reranker)):
            raise ConfigError("rerankers must be a list of rerankers")
        self.rerankers = [as_reranker(r, f"FusionReranker rerankers[{i}]") for i, r in enumerate(rerankers)]
        # rerankers loaded here from a name are ours to close; those passed in belong to the caller
        self._owned = [r for r, given in zip(self.rerankers, rerankers) if not isinstance(given, Reranker)]
        if method not in FUSION_METHODS:
            raise ConfigError(f"unknown fusion method {method!r}; choose one of {list(FUSION_METHODS)}")
        if normalization not in NORMALIZATIONS:
            raise ConfigError(f"unknown normalization {normalization!r}; choose one of {list(NORMALIZATIONS)}")
        allowed = (True, False, "score", "order")
        if not isinstance(include_first_stage, (bool, str)) or include_first_stage not in allowed:
            raise ConfigError(
                f"include_first_stage must be True, False, 'score' or 'order', got {include_first_stage!r}"
            )
        self.first_stage: str | None = (
            None if include_first_stage is False else "score" if include_first_stage is True else include_first_stage
        )
        n_runs = len(self.rerankers) + (self.first_stage is not None)
        if n_runs == 0:
            raise ConfigError("FusionReranker needs at least one reranker or include_first_stage")
        if weights is not None and len(weights) != n_runs:
            raise ConfigError(f"got {len(weights)} weights for {n_runs} runs (rerankers, then the first stage)")
        self.method = method
        self.k = k
        self.weights = None if weights is None else [float(w) for w in weights]
        self.normalization = normalization
        self.depth = depth
        self.ties = ties
        parts = [r.name for r in self.rerankers] + ([f"first-stage:{self.first_stage}"] if self.first_stage else [])
        self.run_names = parts
        self.name = name if name is not None else f"fusion-{method}({'+'.join(parts)})"
        # validate the numeric options once, on a toy run, so a bad k or weight fails at construction
        fuse(
            [[("x", 1.0)]] * n_runs,
            method,  # type: ignore[arg-type]
            k=k,
            normalization=normalization,
            weights=self.weights,
            depth=depth,
            ties=ties,
        )

    # ------------------------------------------------------------------ runs
    def _first_stage_run(self, candidates: Sequence[Candidate]) -> list[tuple[str, float]]:
        n = len(candidates)
        if self.first_stage == "order":
            return [(c.id, (n - i) / n) for i, c in enumerate(candidates)]
        scored = {c.id: c.score for c in candidates if c.score is not None}
        if not scored:
            raise InvalidInputError(
                "include_first_stage='score' but no candidate has a first-stage score; "
                "set Candidate.score or use include_first_stage='order'"
            )
        order = sorted(scored, key=lambda d: -scored[d])  # type: ignore[operator]
        return [(d, float(scored[d])) for d in order]  # type: ignore[arg-type]

    def _fuse(self, candidates: Sequence[Candidate], results: Sequence[RankedList]) -> Scores:
        runs: list[Ranking] = [ranking_pairs(r) for r in results]
        if self.first_stage is not None:
            runs.append(self._first_stage_run(candidates))
        fused = dict(
            fuse(runs, self.method, k=self.k, normalization=self.normalization, weights=self.weights,  # type: ignore[arg-type]
                 depth=self.depth, ties=self.ties)
        )
        per_run = [{d: (pos, s) for pos, (d, s) in enumerate(run, start=1)} for run in runs]  # type: ignore[arg-type]
        details = []
        for c in candidates:
            entry = []
            for name, table in zip(self.run_names, per_run):
                hit = table.get(c.id)
                entry.append({"run": name, "rank": hit[0] if hit else None, "score": hit[1] if hit else None})
            details.append({"fusion": tuple(entry)})
        values = [fused.get(c.id, 0.0) for c in candidates]
        traces = [t for r in results for t in r.traces]
        extra = {"method": self.method, "runs": tuple(self.run_names)}
        return Scores(values, details=details, traces=traces, extra=extra)

    # ------------------------------------------------------------------ Reranker
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return self._fuse(candidates, [r.rerank(query, candidates) for r in self.rerankers])

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        per_reranker = [r.rerank_batch(list(queries), list(lists)) for r in self.rerankers]
        return [
            self._fuse(cands, [results[i] for results in per_reranker]) for i, cands in enumerate(lists)
        ]

    async def _ascore(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        results = [await r.arerank(query, candidates) for r in self.rerankers]
        return self._fuse(candidates, results)

    async def _ascore_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        per_reranker = [await r.arerank_batch(list(queries), list(lists)) for r in self.rerankers]
        return [self._fuse(cands, [results[i] for results in per_reranker]) for i, cands in enumerate(lists)]

    def close(self) -> None:
        for r in self._owned:
            r.close()

    def __repr__(self) -> str:
        return f"FusionReranker({self.name!r})"

    @property
    def options(self) -> dict[str, Any]:
        """The fusion settings (for display and evaluation reports)."""
        return {
            "method": self.method, "k": self.k, "weights": self.weights, "normalization": self.normalization,
            "include_first_stage": self.first_stage, "depth": self.depth, "ties": self.ties,
        }
