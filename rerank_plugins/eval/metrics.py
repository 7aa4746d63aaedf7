"""Retrieval metrics through ir-measures (pytrec_eval underneath), per query and averaged, and paired tests.

nDCG is trec_eval's (linear gains: gain / log2(rank + 1)). Two conventions matter and are fixed here:

* the order of a run is the order of its lists: documents are handed to ir-measures with scores derived from
  their rank, because trec_eval re-sorts by score and breaks ties by document id, which would silently
  reorder tied scores (BM25 zeros, equal reranker scores);
* a judged query that is missing from the run scores 0 on every measure (trec_eval would skip it and inflate the
  mean); the number of such queries is returned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._optional import require
from ..errors import ConfigError

__all__ = [
    "DEFAULT_MEASURES",
    "EvalResult",
    "SignificanceResult",
    "evaluate",
    "paired_test",
    "parse_measure",
]

#: Display names accepted everywhere; the aliases map to ir-measures names.
DEFAULT_MEASURES = ("nDCG@10", "MRR@10", "Recall@100")
_ALIASES = {"MRR": "RR", "Recall": "R", "MAP": "AP", "Precision": "P"}


def parse_measure(name: str) -> Any:
    """An ir-measures measure from a display name: ``nDCG@10``, ``MRR@10`` (= ``RR@10``), ``Recall@100`` (=
    ``R@100``), ``MAP`` (= ``AP``), or any ir-measures syntax (``P(rel=2)@5``...)."""
    ir_measures = require("ir_measures", "eval", purpose="retrieval metrics")
    base, sep, rest = name.partition("@")
    text = _ALIASES.get(base, base) + sep + rest
    try:
        return ir_measures.parse_measure(text)
    except (ValueError, NameError, SyntaxError) as exc:
        raise ConfigError(f"unknown measure {name!r}: {exc}") from exc


@dataclass(frozen=True)
class EvalResult:
    """Mean and per-query values of each measure (keyed by the display name asked for)."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_queries: int
    missing_queries: int = 0
    measures: tuple[str, ...] = field(default_factory=tuple)

    def __getitem__(self, measure: str) -> float:
        return self.aggregate[measure]


def evaluate(
    run: Mapping[str, Sequence[tuple[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    measures: Iterable[str] = DEFAULT_MEASURES,
    *,
    queries: Iterable[str] | None = None,
) -> EvalResult:
    """Evaluate ``run`` (best first per query) against ``qrels`` on every judged query (or on ``queries``)."""
    ir_measures = require("ir_measures", "eval", purpose="retrieval metrics")
    names = tuple(measures)
    if not names:
        raise ConfigError("give at least one measure")
    parsed = {name: parse_measure(name) for name in names}
    qids = list(queries) if queries is not None else [q for q, j in qrels.items() if j]
    unjudged = [q for q in qids if not qrels.get(q)]
    if unjudged:
        raise ConfigError(f"{len(unjudged)} queries have no judgments (first {unjudged[0]!r}); they cannot be scored")
    if not qids:
        raise ConfigError("no judged query to evaluate")
    wanted = set(qids)
    qrel_rows = [
        ir_measures.Qrel(q, d, int(g)) for q, judged in qrels.items() if q in wanted for d, g in judged.items()
    ]
    run_rows = [
        ir_measures.ScoredDoc(q, d, float(len(ranked) - i))
        for q, ranked in run.items()
        if q in wanted
        for i, (d, _) in enumerate(ranked)
    ]
    per_query: dict[str, dict[str, float]] = {name: dict.fromkeys(qids, 0.0) for name in names}
    by_measure = {m: name for name, m in parsed.items()}
    for metric in ir_measures.iter_calc(list(parsed.values()), qrel_rows, run_rows):
        name = by_measure[metric.measure]
        per_query[name][metric.query_id] = float(metric.value)
    missing = sum(1 for q in qids if not run.get(q))
    aggregate = {name: math.fsum(values.values()) / len(qids) for name, values in per_query.items()}
    return EvalResult(aggregate, per_query, len(qids), missing, names)


class _TwoTests:
    """The rule both paired-test records share: significant when the t-test and the permutation test agree."""

    t_pvalue: float
    permutation_pvalue: float

    def significant(self, alpha: float = 0.05) -> bool:
        """True when both p-values (on a :class:`~rerank_plugins.eval.compare.Comparison`, both corrected) are
        below ``alpha``: both tests reject equality."""
        return self.t_pvalue < alpha and self.permutation_pvalue < alpha


@dataclass(frozen=True)
class SignificanceResult(_TwoTests):
    """Paired comparison of system B against system A on the same queries (``diff`` = mean B - mean A)."""

    n: int
    mean_a: float
    mean_b: float
    diff: float
    t_statistic: float
    t_pvalue: float
    permutation_pvalue: float


def paired_test(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> SignificanceResult:
    """Paired two-sided t-test (``scipy.stats.ttest_rel``) and paired randomisation test (sign flips,
    ``scipy.stats.permutation_test``) of per-query values ``a`` vs ``b`` on the queries they share.

    Queries present in only one of the two are an error (a fair comparison uses the same queries).
    """
    np = require("numpy", "eval")
    stats = require("scipy.stats", "eval", purpose="significance tests")
    only = set(a) ^ set(b)
    if only:
        raise ConfigError(f"{len(only)} queries are scored in only one of the two runs (e.g. {sorted(only)[0]!r})")
    qids = sorted(a)
    if len(qids) < 2:
        raise ConfigError(f"a paired test needs at least 2 queries, got {len(qids)}")
    x = np.array([a[q] for q in qids], dtype=np.float64)
    y = np.array([b[q] for q in qids], dtype=np.float64)
    d = y - x
    if np.allclose(d, 0.0):
        t_stat, t_p, perm_p = 0.0, 1.0, 1.0
    else:
        t = stats.ttest_rel(y, x)
        t_stat, t_p = float(t.statistic), float(t.pvalue)
        perm = stats.permutation_test(
            (y, x),
            lambda u, v, axis: np.mean(u - v, axis=axis),
            permutation_type="samples",
            n_resamples=n_resamples,
            alternative="two-sided",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        perm_p = float(perm.pvalue)
    return SignificanceResult(len(qids), float(x.mean()), float(y.mean()), float(d.mean()), t_stat, t_p, perm_p)
