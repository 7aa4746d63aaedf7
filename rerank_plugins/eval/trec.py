"""TREC run and qrels files: readers and writers that count every line they cannot use.

* run: ``qid Q0 doc_id rank score tag`` (whitespace separated); read into ``Run`` = ``{qid: [(doc_id, score), ...]}``
  best first (by score, ties by the file's rank);
* qrels: ``qid iteration doc_id gain`` read into ``Qrels`` = ``{qid: {doc_id: gain}}``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from .report import DataFormatError, LoadReport

__all__ = [
    "Qrels",
    "Run",
    "check_run",
    "read_trec_qrels",
    "read_trec_run",
    "strictly_decreasing",
    "write_trec_qrels",
    "write_trec_run",
]

Run = dict[str, list[tuple[str, float]]]
Qrels = dict[str, dict[str, int]]


def _lines(path: str | os.PathLike[str]) -> Iterable[tuple[int, str]]:
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"file not found: {p}")
    # utf-8-sig: a byte-order mark (written by some Windows tools) would otherwise glue itself to the first
    # query id ("\ufeff1") and silently move that line to a query that does not exist
    with p.open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                yield lineno, line


def read_trec_run(
    path: str | os.PathLike[str], *, strict: bool = False, report: LoadReport | None = None
) -> tuple[Run, LoadReport]:
    """Read a TREC run file. Returns the run (best first per query) and a :class:`LoadReport`."""
    rep = report if report is not None else LoadReport(str(path), strict=strict)
    rows: dict[str, dict[str, tuple[float, int]]] = {}
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 6:
            rep.problem("bad_run_lines", f"line {lineno}: expected 6 fields 'qid Q0 doc rank score tag', got {line!r}")
            continue
        qid, _, doc_id, rank_s, score_s, _ = parts
        try:
            rank, score = int(rank_s), float(score_s)
        except ValueError:
            rep.problem("bad_run_lines", f"line {lineno}: rank/score are not numbers: {line.strip()!r}")
            continue
        if not math.isfinite(score):
            rep.problem("bad_run_lines", f"line {lineno}: score is not finite: {line.strip()!r}")
            continue
        per_query = rows.setdefault(qid, {})
        if doc_id in per_query:
            rep.problem("duplicate_run_entries", f"line {lineno}: document {doc_id!r} repeated for query {qid!r}")
            continue
        per_query[doc_id] = (score, rank)
        rep.count("run_entries")
    run: Run = {
        qid: [(d, s) for d, (s, _) in sorted(docs.items(), key=lambda kv: (-kv[1][0], kv[1][1]))]
        for qid, docs in rows.items()
    }
    rep.count("run_queries", len(run))
    return run, rep


def strictly_decreasing(scores: Sequence[float]) -> list[float]:
    """Scores for a list in its evaluated (best-first) order that strictly decrease, so that any evaluator which
    re-sorts by score (trec_eval and pytrec_eval sort by score and break ties by document id) sees the same order.

    A score that is not strictly below the previous one becomes the previous one minus a step of
    ``max(1e-6, 1e-6 * |previous|)`` (large enough to survive a float32 reader); other scores are kept. Ties
    (BM25 zeros, equal reranker scores) and entries appended after a reranked list (documents that could not be
    reranked keep their first-stage score, which may be higher) are the cases this changes.
    """
    out: list[float] = []
    for score in scores:
        value = float(score)
        if out and not value < out[-1]:
            value = out[-1] - max(1e-6, 1e-6 * abs(out[-1]))
        out.append(value)
    return out


def write_trec_run(run: Mapping[str, Sequence[tuple[str, float]]], path: str | os.PathLike[str], tag: str) -> Path:
    """Write ``run`` (best first per query) as a TREC run file; ``tag`` must not contain whitespace.

    The written scores strictly decrease in the list's order (see :func:`strictly_decreasing`) and are written
    with full precision (``repr``), so trec_eval, pytrec_eval or ir-measures reading the file evaluate exactly
    the order :func:`rerank_plugins.eval.metrics.evaluate` scored.
    """
    if not tag or any(c.isspace() for c in tag):
        raise DataFormatError(f"run tag must be a non-empty word without spaces, got {tag!r}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for qid, ranked in run.items():
            scores = strictly_decreasing([score for _, score in ranked])
            for rank, ((doc_id, _), score) in enumerate(zip(ranked, scores), 1):
                fh.write(f"{qid} Q0 {doc_id} {rank} {score!r} {tag}\n")
    return p


def read_trec_qrels(
    path: str | os.PathLike[str], *, strict: bool = False, report: LoadReport | None = None
) -> tuple[Qrels, LoadReport]:
    """Read a TREC qrels file (``qid iter doc_id gain``); a 3-field ``qid doc_id gain`` line is also accepted."""
    rep = report if report is not None else LoadReport(str(path), strict=strict)
    qrels: Qrels = {}
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) == 4:
            qid, _, doc_id, gain_s = parts
        elif len(parts) == 3:
            qid, doc_id, gain_s = parts
        else:
            rep.problem("bad_qrels_lines", f"line {lineno}: expected 'qid iter doc gain', got {line.strip()!r}")
            continue
        try:
            gain = int(gain_s)
        except ValueError:
            rep.problem("bad_qrels_lines", f"line {lineno}: gain {gain_s!r} is not an integer")
            continue
        add_judgment(qrels, rep, f"line {lineno}", qid, doc_id, gain)
    rep.count("judged_queries", len(qrels))
    return qrels, rep


def add_judgment(qrels: Qrels, rep: LoadReport, where: str, qid: str, doc_id: str, gain: int) -> None:
    """Record one judgment read at ``where``; a different grade for a (query, document) already judged is counted
    as ``conflicting_judgments`` and the higher grade kept."""
    judged = qrels.setdefault(qid, {})
    if doc_id in judged and judged[doc_id] != gain:
        rep.problem(
            "conflicting_judgments",
            f"{where}: query {qid!r} doc {doc_id!r} judged {judged[doc_id]} then {gain}; keeping the max",
        )
    judged[doc_id] = max(gain, judged.get(doc_id, gain))
    rep.count("judgments")


def write_trec_qrels(qrels: Mapping[str, Mapping[str, int]], path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for qid, judged in qrels.items():
            for doc_id, gain in judged.items():
                fh.write(f"{qid} 0 {doc_id} {int(gain)}\n")
    return p


def check_run(
    run: Mapping[str, Sequence[tuple[str, float]]],
    *,
    corpus_ids: Iterable[str] | None = None,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    query_ids: Iterable[str] | None = None,
    expected: Iterable[str] | None = None,
    strict: bool = False,
    source: str = "run",
) -> LoadReport:
    """Count what in ``run`` does not match the data, one problem kind per cause.

    * ``unknown_doc_ids``: a document that is not in ``corpus_ids`` (kept in the run: it counts as non-relevant);
    * ``queries_not_in_dataset``: a query id that is not in ``query_ids`` (its lines cannot be evaluated; the
      volume counter ``run_entries_not_in_dataset`` says how many lines that is);
    * ``queries_without_judgments``: a query of the data set that ``qrels`` does not judge;
    * ``queries_missing_from_run``: a query of ``expected`` (the judged queries evaluated) with no line in the
      run (it scores 0 on every measure);
    * ``duplicate_run_entries`` and ``bad_scores``.

    In ``strict`` mode the first problem raises :class:`DataFormatError`.
    """
    rep = LoadReport(source, strict=strict)
    known = set(corpus_ids) if corpus_ids is not None else None
    known_queries = set(query_ids) if query_ids is not None else None
    for qid, ranked in run.items():
        if known_queries is not None and qid not in known_queries:
            rep.problem(
                "queries_not_in_dataset",
                f"query {qid!r} ({len(ranked)} lines) is not a query of the data set; its lines are not evaluated",
            )
            rep.count("run_entries_not_in_dataset", len(ranked))
            continue
        seen: set[str] = set()
        for doc_id, score in ranked:
            rep.count("run_entries")
            if doc_id in seen:
                rep.problem("duplicate_run_entries", f"query {qid!r}: document {doc_id!r} appears twice")
            seen.add(doc_id)
            if known is not None and doc_id not in known:
                rep.problem("unknown_doc_ids", f"query {qid!r}: document {doc_id!r} is not in the corpus")
            if not isinstance(score, (int, float)) or not math.isfinite(score):
                rep.problem("bad_scores", f"query {qid!r}: document {doc_id!r} has score {score!r}")
        if qrels is not None and not qrels.get(qid):
            rep.problem("queries_without_judgments", f"query {qid!r} is in the run but has no judgments")
    for qid in expected if expected is not None else ():
        if not run.get(qid):
            rep.problem(
                "queries_missing_from_run", f"judged query {qid!r} has no line in the run; it scores 0 on every measure"
            )
    rep.count("run_queries", len(run))
    return rep
