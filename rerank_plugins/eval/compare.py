"""Comparisons of evaluated systems: each row against one reference row, or every pair of chosen rows, with a
correction for multiple comparisons.

Each comparison is :func:`~rerank_plugins.eval.metrics.paired_test` (scipy's paired t-test and a paired
randomisation test) on the per-query values of one measure. When several rows are compared, the p-values of each
test are corrected over the family of comparisons made, as PyTerrier's ``Experiment(baseline=..., correction=...)``
does (per measure, over the rows compared with the baseline; PyTerrier calls statsmodels' ``multipletests``):

* ``"holm"`` (the default when more than one comparison is made): Holm's step-down method. The p-values sorted
  ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``; it controls the family-wise error
  rate like Bonferroni and is uniformly more powerful;
* ``"bonferroni"``: ``min(1, m p)``;
* ``"none"``: the raw p-values.

Implemented here (a few lines) rather than taken from statsmodels, which is not a dependency; the test suite
checks it against a Holm correction written independently in the test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from .metrics import SignificanceResult, _TwoTests, paired_test

__all__ = ["CORRECTIONS", "Comparison", "adjust_pvalues", "compare_pairs", "compare_to"]

CORRECTIONS = ("holm", "bonferroni", "none")


def adjust_pvalues(pvalues: Sequence[float], method: str) -> list[float]:
    """``pvalues`` corrected for ``len(pvalues)`` comparisons (``holm``, ``bonferroni`` or ``none``), in order."""
    if method not in CORRECTIONS:
        raise ConfigError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    m = len(pvalues)
    if method == "none" or m <= 1:
        return [float(p) for p in pvalues]
    if method == "bonferroni":
        return [min(1.0, m * float(p)) for p in pvalues]
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Comparison(_TwoTests):
    """System ``b`` against system ``a`` on ``measure``: raw tests and p-values corrected over the family."""

    a: str
    b: str
    measure: str
    test: SignificanceResult
    correction: str
    family_size: int
    t_pvalue: float
    permutation_pvalue: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "measure": self.measure,
            "diff": self.test.diff,
            "mean_a": self.test.mean_a,
            "mean_b": self.test.mean_b,
            "n": self.test.n,
            "t_statistic": self.test.t_statistic,
            "t_pvalue_raw": self.test.t_pvalue,
            "permutation_pvalue_raw": self.test.permutation_pvalue,
            "correction": self.correction,
            "family_size": self.family_size,
            "t_pvalue": self.t_pvalue,
            "permutation_pvalue": self.permutation_pvalue,
        }


def _family(
    pairs: Sequence[tuple[str, str]],
    per_query: Mapping[str, Mapping[str, float]],
    measure: str,
    correction: str | None,
    n_resamples: int,
) -> list[Comparison]:
    method = correction if correction is not None else ("holm" if len(pairs) > 1 else "none")
    if method not in CORRECTIONS:
        raise ConfigError(f"correction must be one of {CORRECTIONS}, got {method!r}")
    for name in {n for pair in pairs for n in pair}:
        if name not in per_query:
            raise ConfigError(f"no system {name!r} to compare; have {sorted(per_query)}")
    tests = [paired_test(per_query[a], per_query[b], n_resamples=n_resamples) for a, b in pairs]
    t_adj = adjust_pvalues([t.t_pvalue for t in tests], method)
    perm_adj = adjust_pvalues([t.permutation_pvalue for t in tests], method)
    return [
        Comparison(a, b, measure, test, method, len(pairs), tp, pp)
        for (a, b), test, tp, pp in zip(pairs, tests, t_adj, perm_adj)
    ]


def compare_to(
    reference: str,
    per_query: Mapping[str, Mapping[str, float]],
    *,
    measure: str,
    rows: Sequence[str] | None = None,
    correction: str | None = None,
    n_resamples: int = 10_000,
) -> list[Comparison]:
    """Every row of ``rows`` (default: all of ``per_query`` but ``reference``) against ``reference``.

    ``per_query`` maps a system name to its per-query values of ``measure``. ``correction`` ``None`` means Holm
    when more than one row is compared; the family is the rows compared here.
    """
    names = [n for n in (rows if rows is not None else list(per_query)) if n != reference]
    return _family([(reference, n) for n in names], per_query, measure, correction, n_resamples)


def compare_pairs(
    names: Sequence[str],
    per_query: Mapping[str, Mapping[str, float]],
    *,
    measure: str,
    correction: str | None = None,
    n_resamples: int = 10_000,
) -> list[Comparison]:
    """Every pair of ``names`` (each later name against each earlier one), corrected over all the pairs."""
    unique = list(dict.fromkeys(names))
    if len(unique) < 2:
        raise ConfigError(f"a pairwise table needs at least two systems, got {unique}")
    pairs = [(unique[i], unique[j]) for i in range(len(unique)) for j in range(i + 1, len(unique))]
    return _family(pairs, per_query, measure, correction, n_resamples)
