"""Evaluate first stages and rerankers on one data set: the engine behind ``rerank-plugins eval`` and the demo.

:func:`rerank_run` reranks the top ``depth`` of a first-stage run with any :class:`~rerank_plugins.base.Reranker`
through ``rerank_batch`` (chunks of queries, so pointwise models batch across queries). :func:`run_eval` computes
the first stages, reranks, evaluates every system with ir-measures, runs a paired test of each reranker against
its first stage, and returns an :class:`EvalReport` that renders as markdown or JSON and writes TREC run files.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import ConfigError
from ..types import Candidate
from .cache import RunCache
from .compare import CORRECTIONS, Comparison, compare_pairs
from .compare import compare_to as compare_rows
from .datasets import Dataset
from .first_stage import FirstStageSettings, canonical_first_stage, first_stage_run
from .metrics import DEFAULT_MEASURES, EvalResult, SignificanceResult, evaluate
from .report import LoadReport
from .trec import Run, write_trec_run

__all__ = [
    "EvalReport",
    "SystemResult",
    "candidates_for",
    "check_comparisons",
    "pairwise_markdown",
    "planned_rows",
    "rerank_run",
    "run_eval",
]


@dataclass
class SystemResult:
    """One row of the table: a first stage, a given run, or a first stage followed by a reranker."""

    name: str
    run: Run
    metrics: EvalResult
    seconds: float
    first_stage: str | None = None
    reranker: str | None = None
    #: this row against the report's reference row (``--compare-to``), p-values corrected over the rows compared
    comparison: Comparison | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def significance(self) -> SignificanceResult | None:
        """The uncorrected paired tests of :attr:`comparison` (``None`` for the reference row)."""
        return None if self.comparison is None else self.comparison.test

    @property
    def ms_per_query(self) -> float:
        return 1000.0 * self.seconds / max(1, len(self.run))


@dataclass
class EvalReport:
    dataset: str
    summary: str
    depth: int
    measures: tuple[str, ...]
    systems: list[SystemResult]
    data_report: LoadReport
    run_reports: dict[str, LoadReport] = field(default_factory=dict)
    run_files: dict[str, str] = field(default_factory=dict)
    #: what reproduces the figures: command line, reranker options, package versions, model files, threads
    #: (filled by the caller, e.g. ``rerank-plugins eval``; see :mod:`rerank_plugins.eval.provenance`)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: the row every other row is compared with (the first stage unless ``compare_to`` named another)
    reference: str | None = None
    #: every pair of the rows chosen for the pairwise table, corrected over those pairs
    pairwise: list[Comparison] = field(default_factory=list)

    def system(self, name: str) -> SystemResult:
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(f"no system {name!r}; have {[s.name for s in self.systems]}")

    def _p_header(self) -> str:
        first = next((s.comparison for s in self.systems if s.comparison is not None), None)
        if first is None:
            return f"p vs {self.reference}"
        how = "uncorrected" if first.correction == "none" else f"{first.correction}, {first.family_size} rows"
        return f"Δ {first.measure} vs {self.reference}: t-test p (randomisation p), {how}"

    def to_markdown(self) -> str:
        head = ["system", *self.measures, "time (s)", "ms/query", self._p_header()]
        lines = [
            f"**{self.summary}**, depth {self.depth}",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
        ]
        for s in self.systems:
            c = s.comparison
            p = "" if c is None else f"{c.test.diff:+.4f}: {c.t_pvalue:.3g} ({c.permutation_pvalue:.3g})"
            cells = [s.name, *(f"{s.metrics[m]:.4f}" for m in self.measures)]
            cached = " (cache)" if s.details.get("read_from_cache") else ""  # the time read, not the time computed
            cells += [f"{s.seconds:.1f}{cached}", f"{s.ms_per_query:.1f}", p]
            lines.append("| " + " | ".join(cells) + " |")
        if self.pairwise:
            lines += ["", *pairwise_markdown(self.pairwise)]
        problems = dict(self.data_report.problems)
        for name, rep in self.run_reports.items():
            problems.update({f"{name}: {k}": v for k, v in rep.problems.items()})
        if problems:
            lines += [
                "",
                "Data problems (counted, see the JSON for messages): "
                + ", ".join(f"{k}={v}" for k, v in sorted(problems.items())),
            ]
        return "\n".join(lines)

    def to_dict(self, per_query: bool = True) -> dict[str, Any]:
        systems = []
        for s in self.systems:
            row: dict[str, Any] = {
                "name": s.name,
                "first_stage": s.first_stage,
                "reranker": s.reranker,
                "metrics": s.metrics.aggregate,
                "queries": s.metrics.n_queries,
                "queries_missing_from_run": s.metrics.missing_queries,
                "seconds": s.seconds,
                "ms_per_query": s.ms_per_query,
                "details": s.details,
            }
            if s.comparison is not None:
                row["comparison"] = s.comparison.to_dict()
            if per_query:
                row["per_query"] = s.metrics.per_query
            if s.name in self.run_files:
                row["run_file"] = self.run_files[s.name]
            systems.append(row)
        return {
            "dataset": self.dataset,
            "summary": self.summary,
            "depth": self.depth,
            "measures": list(self.measures),
            "systems": systems,
            "data_report": self.data_report.to_dict(),
            "run_reports": {k: v.to_dict() for k, v in self.run_reports.items()},
            "compare_to": self.reference,
            "pairwise": [c.to_dict() for c in self.pairwise],
            "provenance": self.provenance,
        }

    def write(self, output_dir: str | os.PathLike[str]) -> Path:
        """Write one TREC run file per system and ``<dataset>.eval.json``; returns the JSON path."""
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = _slug(self.dataset)
        for s in self.systems:
            path = write_trec_run(s.run, out / f"{stem}.{_slug(s.name)}.trec", tag=_slug(s.name))
            self.run_files[s.name] = str(path)
        path = out / f"{stem}.eval.json"
        path.write_text(json.dumps(self.to_dict(), indent=2, default=_jsonable), encoding="utf-8")
        return path


def pairwise_markdown(comparisons: Sequence[Comparison]) -> list[str]:
    """The pairwise table: one line per pair, the difference B - A and both corrected p-values."""
    if not comparisons:
        return []
    c0 = comparisons[0]
    how = "uncorrected" if c0.correction == "none" else f"{c0.correction} over {c0.family_size} pairs"
    lines = [
        f"Pairwise ({c0.measure}, paired t-test p and randomisation p, {how}):",
        "",
        "| A | B | mean A | mean B | B - A | t-test p | randomisation p |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in comparisons:
        t = c.test
        lines.append(
            f"| {c.a} | {c.b} | {t.mean_a:.4f} | {t.mean_b:.4f} | {t.diff:+.4f} | {c.t_pvalue:.3g} | "
            f"{c.permutation_pvalue:.3g} |"
        )
    return lines


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.replace(" > ", "__")).strip("_") or "run"


def candidates_for(
    dataset: Dataset, ranked: Sequence[tuple[str, float]], depth: int, report: LoadReport, qid: str = "?"
) -> tuple[list[Candidate], list[tuple[str, float]]]:
    """Candidates for the top ``depth`` of one ranked list, and the entries that cannot be reranked (documents not
    in the corpus: counted in ``report`` and kept, in their first-stage order, after the reranked ones)."""
    cands: list[Candidate] = []
    unknown: list[tuple[str, float]] = []
    seen: set[str] = set()
    for doc_id, score in ranked[:depth]:
        if doc_id in seen:
            report.problem("duplicate_run_entries", f"query {qid!r}: document {doc_id!r} repeated; kept once")
            continue
        seen.add(doc_id)
        if doc_id not in dataset.corpus:
            report.problem("unknown_doc_ids", f"query {qid!r}: document {doc_id!r} is not in the corpus; not reranked")
            unknown.append((doc_id, score))
            continue
        cands.append(Candidate(id=doc_id, text=dataset.document_text(doc_id), score=float(score)))
    return cands, unknown


def rerank_run(
    reranker: Any,
    dataset: Dataset,
    run: Mapping[str, Sequence[tuple[str, float]]],
    *,
    depth: int = 100,
    queries_per_batch: int = 16,
    progress: bool = False,
    report: LoadReport | None = None,
) -> tuple[Run, float, LoadReport]:
    """Rerank the top ``depth`` of ``run`` for the queries of ``dataset``; returns (run, seconds, report).

    Only reranking is timed (candidate building is not). Documents below ``depth`` are dropped from the output
    (the reranked run has ``depth`` entries per query, like the first stage cut at ``depth``).
    """
    if queries_per_batch < 1:
        raise ConfigError(f"queries_per_batch must be >= 1, got {queries_per_batch}")
    rep = report if report is not None else LoadReport(f"rerank {getattr(reranker, 'name', reranker)}")
    tqdm = require("tqdm", "eval").tqdm
    qids = [q for q in dataset.queries if q in run]
    for q in dataset.queries:
        if q not in run:
            rep.problem("queries_missing_from_run", f"query {q!r} has no first-stage results; nothing to rerank")
    prepared = {q: candidates_for(dataset, run[q], depth, rep, q) for q in qids}
    out: Run = {}
    elapsed = 0.0
    bar = tqdm(total=len(qids), desc=f"rerank {getattr(reranker, 'name', '')}", disable=not progress, unit="q")
    for start in range(0, len(qids), queries_per_batch):
        chunk = qids[start : start + queries_per_batch]
        t0 = time.perf_counter()
        ranked_lists = reranker.rerank_batch([dataset.queries[q] for q in chunk], [prepared[q][0] for q in chunk])
        elapsed += time.perf_counter() - t0
        for q, ranked in zip(chunk, ranked_lists):
            out[q] = [(r.id, float(r.score)) for r in ranked.results] + prepared[q][1]
        bar.update(len(chunk))
    bar.close()
    return out, elapsed, rep


def planned_rows(baselines: Sequence[str], first_stage: str, labels: Sequence[str]) -> list[str]:
    """The names of the rows :func:`run_eval` will produce, in order (known before anything is computed)."""
    return list(dict.fromkeys([*baselines, first_stage, *(f"{first_stage} > {label}" for label in labels)]))


def check_comparisons(
    rows: Sequence[str], compare_to: str | None, pairwise: Sequence[str], correction: str | None
) -> None:
    """Raise :class:`~rerank_plugins.errors.ConfigError` for a comparison that names no row or a bad correction
    (called before any retrieval or model load)."""
    if correction is not None and correction not in CORRECTIONS:
        raise ConfigError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    for wanted in [*([compare_to] if compare_to is not None else []), *pairwise]:
        if wanted not in rows:
            raise ConfigError(f"no row {wanted!r} to compare; the rows will be {list(rows)}")
    if pairwise and len(set(pairwise)) < 2:
        raise ConfigError(f"a pairwise table needs at least two distinct rows, got {list(pairwise)}")


def run_eval(
    dataset: Dataset,
    *,
    first_stage: str = "bm25",
    baselines: Sequence[str] = ("bm25",),
    rerankers: Sequence[tuple[str, Any]] = (),
    depth: int = 100,
    measures: Sequence[str] = DEFAULT_MEASURES,
    given_run: tuple[str, Run] | None = None,
    progress: bool = False,
    queries_per_batch: int = 16,
    embedder: Any = None,
    strict: bool = False,
    given_run_report: LoadReport | None = None,
    compare_to: str | None = None,
    correction: str | None = None,
    pairwise: Sequence[str] = (),
    n_resamples: int = 10_000,
    settings: FirstStageSettings | None = None,
    disk_cache: RunCache | None = None,
) -> EvalReport:
    """Evaluate ``baselines`` (first stages), then ``first_stage`` followed by each reranker.

    ``given_run`` = (name, run) uses a run read from a file as the first stage instead of computing one.
    ``rerankers`` are (label, reranker) pairs (labels must be distinct: they name rows and run files). Every
    system is evaluated on all judged queries of ``dataset``. ``given_run`` is checked first, before any
    retrieval (see :func:`~rerank_plugins.eval.trec.check_run`); ``strict`` makes its first problem (an unknown
    document or query id, a judged query missing from it, a duplicate) a
    :class:`~rerank_plugins.eval.report.DataFormatError` instead of a count. ``given_run_report`` is that check
    when the caller already made it (``rerank-plugins eval`` checks the file against the whole data set before
    ``--queries`` selects some); its lines for queries outside ``dataset`` are then left out here.

    Every row but one is compared with the row named ``compare_to`` (default: the first stage the rerankers
    reorder) on the first measure: paired t-test and randomisation test (``n_resamples`` sign flips), their
    p-values corrected over the rows compared with ``correction`` (``holm``, ``bonferroni``, ``none``; default
    Holm when more than one row is compared). ``pairwise`` names rows (two or more) whose every pair is compared,
    corrected over those pairs. ``settings`` configures BM25, the dense model and RRF's k; ``disk_cache``
    reads first stages computed by an earlier evaluation (see :func:`~rerank_plugins.eval.first_stage_run`).
    The paired tests need at least two queries; with one, ``comparison`` stays
    ``None`` (an empty column). Row names are checked before any retrieval.
    """
    measures = tuple(measures)
    first_stage = canonical_first_stage(first_stage)
    baselines = list(dict.fromkeys(canonical_first_stage(b) for b in baselines))
    labels = [label for label, _ in rerankers]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ConfigError(f"reranker labels must be distinct (they name rows and run files); repeated: {repeated}")
    judged = dataset.judged_query_ids
    if not judged:
        raise ConfigError(f"{dataset.name}: no query has judgments; nothing to evaluate")
    planned_base = given_run[0] if given_run is not None else first_stage
    check_comparisons(planned_rows(baselines, planned_base, labels), compare_to, pairwise, correction)
    cache: dict[str, Run] = {}
    systems: list[SystemResult] = []
    run_reports: dict[str, LoadReport] = {}
    if given_run is not None:  # checked before any retrieval: --strict fails in seconds, not after the baselines
        given_name, given = given_run
        if given_run_report is None:
            given_run_report = dataset.check_run(given, source=given_name, strict=strict)
        run_reports[given_name] = given_run_report
        given_run = (given_name, {q: list(r) for q, r in given.items() if q in dataset.queries})

    def add(name: str, run: Run, seconds: float, **kw: Any) -> SystemResult:
        res = SystemResult(name, run, evaluate(run, dataset.qrels, measures, queries=judged), seconds, **kw)
        systems.append(res)
        return res

    timings: dict[str, float] = {}
    cached: dict[str, bool] = {}
    names = list(dict.fromkeys([*baselines, *([] if given_run is not None else [first_stage])]))
    for name in names:
        t0 = time.perf_counter()
        hits = disk_cache.hits if disk_cache is not None else 0
        run = first_stage_run(
            dataset,
            name,
            depth,
            cache=cache,
            progress=progress,
            embedder=embedder,
            settings=settings,
            disk_cache=disk_cache,
        )
        cached[name] = disk_cache is not None and disk_cache.hits > hits
        # rrf reuses the cached BM25 and dense runs: its own time is the fusion plus what it computed
        timings[name] = time.perf_counter() - t0
        if name in baselines:
            add(name, run, timings[name], first_stage=name, details={"read_from_cache": cached[name]})
    if given_run is not None:
        base_name, base_run = given_run
        base = add(base_name, {q: list(r)[:depth] for q, r in base_run.items()}, 0.0, first_stage=base_name)
    else:
        base_name = first_stage
        base_run = cache[f"{first_stage}@{depth}"]
        base = next((s for s in systems if s.name == first_stage), None) or add(
            first_stage,
            base_run,
            timings[first_stage],
            first_stage=first_stage,
            details={"read_from_cache": cached[first_stage]},
        )
    for label, reranker in rerankers:
        reranked, seconds, rep = rerank_run(
            reranker, dataset, base_run, depth=depth, progress=progress, queries_per_batch=queries_per_batch
        )
        name = f"{base_name} > {label}"
        run_reports[name] = rep
        add(name, reranked, seconds, first_stage=base_name, reranker=label, details={"reranker": repr(reranker)})
    reference = compare_to if compare_to is not None else base.name
    key = measures[0]
    per_query = {s.name: s.metrics.per_query[key] for s in systems}
    report = EvalReport(
        dataset.name, dataset.summary(), depth, measures, systems, dataset.report, run_reports, reference=reference
    )
    if len(judged) >= 2:
        found = compare_rows(reference, per_query, measure=key, correction=correction, n_resamples=n_resamples)
        by_name = {c.b: c for c in found}
        for s in systems:
            s.comparison = by_name.get(s.name)
        if pairwise:
            report.pairwise = compare_pairs(
                pairwise, per_query, measure=key, correction=correction, n_resamples=n_resamples
            )
    return report
