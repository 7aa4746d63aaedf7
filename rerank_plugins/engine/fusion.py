"""Rank and score fusion: reciprocal-rank fusion, Borda count, CombSUM and CombMNZ, with score normalisation.

Pure Python, no heavy imports: the one implementation used by :class:`~rerank_plugins.rankers.fusion.FusionReranker`
and by first-stage fusion in the evaluation toolkit.

Inputs
    A *ranking* is either a sequence of ``(doc_id, score)`` pairs, best first (the TREC run format of
    :mod:`rerank_plugins.eval.trec`: its positions are the ranks), or a mapping ``doc_id -> score`` (higher is
    better; ranks come from a stable sort by score, so equal scores keep the mapping's order). The rankings
    given to one call may cover different documents; the *universe* is the union of their ids, in order of
    first appearance.

Methods (``w_i`` is the weight of run ``i``, 1 by default; ``r_i(d)`` the 1-based rank of ``d`` in run ``i``)
    * ``rrf``: ``sum_i w_i / (k + r_i(d))`` over the runs that contain ``d`` (Cormack et al. 2009, ``k = 60``);
    * ``borda``: ``sum_i w_i * b_i(d)`` with ``b_i(d) = N - r_i(d) + 1`` for a universe of ``N`` documents; the
      documents a run leaves out share its remaining points equally, ``(N - m_i + 1) / 2`` each for a run of
      ``m_i`` documents (so every run hands out the same total, ``N (N + 1) / 2``);
    * ``combsum``: ``sum_i w_i * norm_i(s_i(d))`` over the runs that contain ``d`` (Fox and Shaw 1994);
    * ``combmnz``: ``combsum(d) * |{i : d in run i}|``. Over runs that all hold the same documents (several
      rerankers scoring one candidate list) this is CombSUM times a constant, the same order; it differs when
      runs cover different documents, e.g. with ``depth``.

Normalisation (score methods only, applied to each run separately, over the documents it keeps)
    * ``minmax``: ``(s - min) / (max - min)``, in [0, 1];
    * ``zscore``: ``(s - mean) / std`` (population standard deviation);
    * ``sum``: shift so the minimum is 0, then divide by the sum (Montague and Aslam 2001), summing to 1;
    * ``none``: raw scores (only sensible when the runs share a scale).

    A run whose scores are all equal carries no information: every normalisation but ``none`` maps it to 0.

``depth`` keeps only the top ``depth`` documents of every run (the rest count as absent). ``ties="average"``
gives documents with equal scores the mean of their ranks (rank methods only); ``"first"`` keeps run order.

Every function returns ``[(doc_id, fused_score), ...]`` best first; equal fused scores keep universe order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from ..errors import ConfigError, InvalidInputError
from ..validation import check_choice, check_int, check_number, is_number

__all__ = [
    "FUSION_METHODS",
    "NORMALIZATIONS",
    "Ranking",
    "borda_fusion",
    "comb_mnz",
    "comb_sum",
    "fuse",
    "normalize_scores",
    "rank_positions",
    "reciprocal_rank_fusion",
]

Ranking = Sequence[tuple[str, float]] | Mapping[str, float]
FusionMethod = Literal["rrf", "borda", "combsum", "combmnz"]
Normalization = Literal["minmax", "zscore", "sum", "none"]
Ties = Literal["first", "average"]

FUSION_METHODS: tuple[str, ...] = ("rrf", "borda", "combsum", "combmnz")
NORMALIZATIONS: tuple[str, ...] = ("minmax", "zscore", "sum", "none")


# ---------------------------------------------------------------------------------------------- helpers
def _as_pairs(ranking: Ranking, index: int) -> list[tuple[str, float]]:
    """A ranking as ``(id, score)`` pairs in rank order, validated."""
    if isinstance(ranking, Mapping):
        items = [(str(d), ranking[d]) for d in ranking]
        pairs = [(d, _check_number(s, index, d)) for d, s in items]
        order = sorted(range(len(pairs)), key=lambda j: -pairs[j][1])
        return [pairs[j] for j in order]
    if isinstance(ranking, (str, bytes)) or not isinstance(ranking, Sequence):
        raise InvalidInputError(
            f"run {index} must be a sequence of (doc_id, score) pairs or a mapping, got {type(ranking).__name__}"
        )
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    for item in ranking:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidInputError(f"run {index}: expected (doc_id, score) pairs, got {item!r}")
        doc, score = str(item[0]), _check_number(item[1], index, str(item[0]))
        if doc in seen:
            raise InvalidInputError(f"run {index}: document {doc!r} appears twice")
        seen.add(doc)
        out.append((doc, score))
    return out


def _check_number(value: object, index: int, doc: str) -> float:
    if not is_number(value):
        raise InvalidInputError(f"run {index}: score of {doc!r} must be a number, got {type(value).__name__}")
    f = float(value)
    if math.isnan(f):
        raise InvalidInputError(f"run {index}: score of {doc!r} is NaN")
    return f


def _prepare(
    rankings: Sequence[Ranking], weights: Sequence[float] | None, depth: int | None
) -> tuple[list[list[tuple[str, float]]], list[float], list[str]]:
    if isinstance(rankings, (str, bytes, Mapping)) or not isinstance(rankings, Sequence):
        raise InvalidInputError(f"rankings must be a list of runs, got {type(rankings).__name__}")
    if not rankings:
        raise InvalidInputError("fusion needs at least one run")
    check_int("depth", depth, 1, optional=True)
    runs = [_as_pairs(r, i) for i, r in enumerate(rankings)]
    if depth is not None:
        runs = [r[:depth] for r in runs]
    if weights is None:
        w = [1.0] * len(runs)
    else:
        if len(weights) != len(runs):
            raise ConfigError(f"got {len(weights)} weights for {len(runs)} runs")
        w = []
        for x in weights:
            if not is_number(x) or not math.isfinite(x) or x < 0:
                raise ConfigError(f"weights must be finite numbers >= 0, got {list(weights)}")
            w.append(float(x))
        if not any(x > 0 for x in w):
            raise ConfigError("at least one weight must be > 0")
    universe: dict[str, None] = {}
    for run in runs:
        for doc, _ in run:
            universe.setdefault(doc, None)
    return runs, w, list(universe)


def _ordered(universe: list[str], fused: Mapping[str, float]) -> list[tuple[str, float]]:
    order = sorted(range(len(universe)), key=lambda j: -fused[universe[j]])
    return [(universe[j], float(fused[universe[j]])) for j in order]


def rank_positions(ranking: Ranking, ties: Ties = "first") -> dict[str, float]:
    """1-based rank of every document of one run; with ``ties="average"`` equal scores share their mean rank."""
    check_choice("ties", ties, ("first", "average"))
    pairs = _as_pairs(ranking, 0)
    ranks = {doc: float(pos) for pos, (doc, _) in enumerate(pairs, start=1)}
    if ties == "average":
        by_score: dict[float, list[str]] = {}
        for doc, score in pairs:
            by_score.setdefault(score, []).append(doc)
        for docs in by_score.values():
            if len(docs) > 1:
                mean = sum(ranks[d] for d in docs) / len(docs)
                for d in docs:
                    ranks[d] = mean
    return ranks


def normalize_scores(values: Sequence[float], method: Normalization = "minmax") -> list[float]:
    """Normalise one run's scores (see the module docstring); returns plain floats in input order."""
    if method not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization {method!r}; choose one of {list(NORMALIZATIONS)}")
    vals = [float(v) for v in values]
    if any(math.isnan(v) for v in vals):
        raise InvalidInputError("cannot normalise NaN scores")
    if method == "none" or not vals:
        return vals
    if not all(math.isfinite(v) for v in vals):
        raise InvalidInputError(f"{method} normalisation needs finite scores, got {vals}")
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return [0.0] * len(vals)
    if method == "minmax":
        return [(v - lo) / (hi - lo) for v in vals]
    if method == "zscore":
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        if std == 0.0:
            # distinct scores whose squared spread underflows (1e-222 apart): the z-score does not change under
            # an affine map, so take it on the min-max scaled scores (found by tests/engine/test_properties.py)
            scaled = [(v - lo) / (hi - lo) for v in vals]
            mean = sum(scaled) / len(scaled)
            std = math.sqrt(sum((v - mean) ** 2 for v in scaled) / len(scaled))
            vals = scaled
        return [(v - mean) / std for v in vals]
    shifted = [v - lo for v in vals]
    total = sum(shifted)
    return [v / total for v in shifted]


# ---------------------------------------------------------------------------------------------- methods
def reciprocal_rank_fusion(
    rankings: Sequence[Ranking],
    *,
    k: float = 60,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
    ties: Ties = "first",
) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: ``sum_i w_i / (k + rank_i(d))`` over the runs containing ``d``."""
    check_number("k", k, 0, finite=True)
    runs, w, universe = _prepare(rankings, weights, depth)
    fused = dict.fromkeys(universe, 0.0)
    for run, wi in zip(runs, w):
        for doc, rank in rank_positions(run, ties).items():
            fused[doc] += wi / (k + rank)
    return _ordered(universe, fused)


def borda_fusion(
    rankings: Sequence[Ranking],
    *,
    weights: Sequence[float] | None = None,
    depth: int | None = None,
    ties: Ties = "first",
) -> list[tuple[str, float]]:
    """Borda count: ``N - rank + 1`` points per run; documents a run leaves out share its remaining points."""
    runs, w, universe = _prepare(rankings, weights, depth)
    n = len(universe)
    fused = dict.fromkeys(universe, 0.0)
    for run, wi in zip(runs, w):
        ranks = rank_positions(run, ties)
        missing_points = (n - len(ranks) + 1) / 2
        for doc in universe:
            rank = ranks.get(doc)
            fused[doc] += wi * (n - rank + 1 if rank is not None else missing_points)
    return _ordered(universe, fused)


def _comb(
    rankings: Sequence[Ranking],
    normalization: Normalization,
    weights: Sequence[float] | None,
    depth: int | None,
    mnz: bool,
) -> list[tuple[str, float]]:
    runs, w, universe = _prepare(rankings, weights, depth)
    fused = dict.fromkeys(universe, 0.0)
    hits = dict.fromkeys(universe, 0)
    for run, wi in zip(runs, w):
        normed = normalize_scores([s for _, s in run], normalization)
        for (doc, _), value in zip(run, normed):
            fused[doc] += wi * value
            hits[doc] += 1
    if mnz:
        fused = {d: v * hits[d] for d, v in fused.items()}
    return _ordered(universe, fused)


def comb_sum(
    rankings: Sequence[Ranking],
    *,
    normalization: Normalization = "minmax",
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> list[tuple[str, float]]:
    """CombSUM: weighted sum of each run's normalised scores (absent documents contribute 0)."""
    return _comb(rankings, normalization, weights, depth, mnz=False)


def comb_mnz(
    rankings: Sequence[Ranking],
    *,
    normalization: Normalization = "minmax",
    weights: Sequence[float] | None = None,
    depth: int | None = None,
) -> list[tuple[str, float]]:
    """CombMNZ: CombSUM times the number of runs that contain the document."""
    return _comb(rankings, normalization, weights, depth, mnz=True)


def fuse(
    rankings: Sequence[Ranking],
    method: FusionMethod = "rrf",
    *,
    k: float = 60,
    normalization: Normalization = "minmax",
    weights: Sequence[float] | None = None,
    depth: int | None = None,
    ties: Ties = "first",
) -> list[tuple[str, float]]:
    """Fuse runs with ``method`` (``rrf``, ``borda``, ``combsum``, ``combmnz``); options a method ignores are
    accepted and unused (``k`` is RRF's, ``normalization`` the Comb methods', ``ties`` the rank methods')."""
    if method == "rrf":
        return reciprocal_rank_fusion(rankings, k=k, weights=weights, depth=depth, ties=ties)
    if method == "borda":
        return borda_fusion(rankings, weights=weights, depth=depth, ties=ties)
    if method == "combsum":
        return comb_sum(rankings, normalization=normalization, weights=weights, depth=depth)
    if method == "combmnz":
        return comb_mnz(rankings, normalization=normalization, weights=weights, depth=depth)
    raise ConfigError(f"unknown fusion method {method!r}; choose one of {list(FUSION_METHODS)}")
