"""Issue 22: every input line is used or counted by cause, and ``--strict`` stops before any retrieval.

Each test builds a clean BEIR folder, spoils one thing, and checks (a) the fix or the count on the "Data
problems" line and (b) that ``--strict`` exits 2 naming the problem with ZERO first-stage retrievals and ZERO
reranker loads (both counted by wrapping the functions the command calls).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rerank_plugins import models
from rerank_plugins.eval import first_stage
from rerank_plugins.eval.datasets import DataFormatError, load_beir

runner = CliRunner()
BOM = "\ufeff"
# q1's best document is ranked SECOND in the file, so losing the first line changes q1's nDCG@10
RUN = [("q1", "d4", 3.0), ("q1", "d1", 2.0), ("q2", "d2", 2.0), ("q2", "d1", 1.0), ("q3", "d3", 1.0)]


def write_run(path: Path, rows: list[tuple[str, str, float]], *, bom: bool = False) -> Path:
    lines = [f"{q} Q0 {d} {i} {s} t" for i, (q, d, s) in enumerate(rows, 1)]
    path.write_text((BOM if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, keyword_kind: str) -> dict[str, int]:
    """Counts of first-stage retrievals (BM25, dense) and reranker loads made by the command."""
    counts = {"bm25": 0, "dense": 0, "load_reranker": 0}

    def counted(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(first_stage, "bm25_run", counted("bm25", first_stage.bm25_run))
    monkeypatch.setattr(first_stage, "dense_run", counted("dense", first_stage.dense_run))
    monkeypatch.setattr(models, "load_reranker", counted("load_reranker", models.load_reranker))
    return counts


def _eval(app: typer.Typer, data: Path, run: Path, out: Path, *extra: str) -> Any:
    args = ["eval", "--dataset", str(data), "--first-stage", str(run), "--reranker", "keyword-test"]
    return runner.invoke(app, [*args, "--output-dir", str(out), "--no-progress", *extra])


def _assert_strict_stops_early(app: typer.Typer, data: Path, run: Path, out: Path, calls: dict[str, int],
                               words: str) -> None:
    # the default baselines (bm25, dense, rrf) would retrieve first: the check must come before them
    result = _eval(app, data, run, out, "--strict")
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert calls == {"bm25": 0, "dense": 0, "load_reranker": 0}


def _assert_counted_then_strict_stops(app: typer.Typer, data: Path, run: Path, tmp_path: Path,
                                      calls: dict[str, int], counted: str, words: str) -> None:
    # without --strict the run goes on (output in tmp_path / "o") and the "Data problems" line shows ``counted``
    result = _eval(app, data, run, tmp_path / "o", "--baseline", "bm25")
    assert result.exit_code == 0, result.output
    assert counted in result.stdout
    calls.update(bm25=0, dense=0, load_reranker=0)
    _assert_strict_stops_early(app, data, run, tmp_path / "s", calls, words)


def _problems(out: Path) -> dict[str, int]:
    saved = json.loads(next(out.glob("*.eval.json")).read_text())
    merged: dict[str, int] = dict(saved["data_report"]["problems"])
    for name, rep in saved["run_reports"].items():
        merged.update({f"{name}: {k}": v for k, v in rep["problems"].items()})
    return merged


def test_bom_run_file_keeps_its_first_line(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, calls: dict[str, int]
) -> None:
    data = clean_beir(tmp_path / "beir")
    plain = write_run(tmp_path / "plain.trec", RUN)
    marked = write_run(tmp_path / "marked.trec", RUN, bom=True)
    figures = []
    for run, out in ((plain, tmp_path / "o1"), (marked, tmp_path / "o2")):
        result = _eval(app, data, run, out, "--baseline", "bm25", "--format", "json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        row = next(s for s in report["systems"] if s["reranker"] is None and s["name"] != "bm25")
        figures.append(row["metrics"]["nDCG@10"])
        assert _problems(out) == {}
        file_rep = next(v for k, v in report["run_reports"].items() if k.endswith("(file)"))
        assert file_rep["counts"]["run_entries"] == len(RUN)
    assert figures[1] == figures[0]  # the BOM no longer moves q1's first line to a query "\ufeffq1"
    result = _eval(app, data, marked, tmp_path / "o3", "--strict", "--baseline", "bm25")
    assert result.exit_code == 0, result.output


def test_unknown_query_in_run_is_counted_and_strict_stops(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, calls: dict[str, int]
) -> None:
    data = clean_beir(tmp_path / "beir")
    run = write_run(tmp_path / "given.trec", [*RUN, ("q77", "d1", 1.0), ("q77", "d2", 0.5)])
    _assert_counted_then_strict_stops(app, data, run, tmp_path, calls, "given: queries_not_in_dataset=1", "'q77'")
    saved = json.loads((tmp_path / "o" / "beir.eval.json").read_text())
    assert saved["run_reports"]["given"]["counts"]["run_entries_not_in_dataset"] == 2


def test_judged_query_missing_from_run_is_counted_and_strict_stops(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, calls: dict[str, int]
) -> None:
    data = clean_beir(tmp_path / "beir")
    run = write_run(tmp_path / "given.trec", [r for r in RUN if r[0] != "q3"])
    _assert_counted_then_strict_stops(app, data, run, tmp_path, calls, "given: queries_missing_from_run=1", "'q3'")


def test_queries_left_out_by_queries_option_are_not_problems(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, calls: dict[str, int]
) -> None:
    data = clean_beir(tmp_path / "beir")
    run = write_run(tmp_path / "given.trec", RUN)
    result = _eval(app, data, run, tmp_path / "o", "--baseline", "bm25", "--queries", "2", "--strict")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "o" / "beir.eval.json").read_text())
    assert saved["run_reports"]["given"]["counts"]["run_queries_not_selected"] == 1


def test_bom_in_beir_corpus_queries_and_qrels(clean_beir: Any, tmp_path: Path) -> None:
    data = load_beir(clean_beir(tmp_path / "beir", bom=True), strict=True)
    assert sorted(data.corpus) == ["d1", "d2", "d3", "d4"]
    assert sorted(data.queries) == ["q1", "q2", "q3"]
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2}, "q3": {"d3": 1}}
    assert data.report.ok


def test_empty_beir_document_is_counted_and_strict_stops(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, calls: dict[str, int]
) -> None:
    folder = clean_beir(tmp_path / "beir", empty_doc=True)
    with pytest.warns(UserWarning, match="empty_documents"):
        data = load_beir(folder)
    assert data.report.problems == {"empty_documents": 1} and "d5" in data.corpus  # kept, counted
    with pytest.raises(DataFormatError, match="'d5'"):
        load_beir(folder, strict=True)
    run = write_run(tmp_path / "given.trec", RUN)
    _assert_counted_then_strict_stops(app, folder, run, tmp_path, calls, "empty_documents=1", "'d5'")


def test_unknown_document_in_run_fails_strict_before_the_baselines(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, calls: dict[str, int]
) -> None:
    # the case: with the default baselines the unknown-document error came after 201 s of retrieval
    data = clean_beir(tmp_path / "beir")
    run = write_run(tmp_path / "given.trec", [*RUN, ("q2", "ghost", 0.5)])
    _assert_strict_stops_early(app, data, run, tmp_path / "s", calls, "'ghost'")
