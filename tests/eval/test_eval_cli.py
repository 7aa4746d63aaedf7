"""``rerank-plugins eval`` / ``bench`` / ``demo`` end to end (tiny BEIR folder, Cranfield BM25; demo is slow)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rerank_plugins import cli

runner = CliRunner()


def test_commands_are_registered() -> None:
    assert {"rerank_plugins.commands.eval", "rerank_plugins.commands.bench", "rerank_plugins.commands.demo"} <= set(
        cli.COMMAND_MODULES
    )


def test_eval_on_tiny_beir(app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str) -> None:
    out = tmp_path / "runs"
    args = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--reranker", keyword_kind, "--depth", "3"]
    result = runner.invoke(app, [*args, "--output-dir", str(out), "--format", "json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    names = [s["name"] for s in report["systems"]]
    assert names == ["bm25", "bm25 > keyword-test"]
    bm25_row = report["systems"][0]
    assert set(bm25_row["metrics"]) == {"nDCG@10", "MRR@10", "Recall@100"}
    assert bm25_row["queries"] == 3  # q4 has no judgments: counted, not scored
    assert report["data_report"]["problems"]["queries_without_judgments"] == 1
    assert report["data_report"]["problems"]["bad_corpus_lines"] == 1
    assert report["systems"][1]["comparison"]["a"] == "bm25"
    files = sorted(p.name for p in out.iterdir())
    assert files == ["beir.bm25.trec", "beir.bm25__keyword-test.trec", "beir.eval.json"]
    lines = (out / "beir.bm25.trec").read_text().splitlines()
    assert len(lines) == 4 * 3 and lines[0].split()[1] == "Q0"  # 4 queries x depth 3, TREC format
    saved = json.loads((out / "beir.eval.json").read_text())
    assert "per_query" in saved["systems"][0]


def test_eval_markdown_and_bad_run_file(app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str) -> None:
    run_file = tmp_path / "given.trec"
    run_file.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 ghost 2 1.0 t\nq2 Q0 d2 1 1.0 t\ngarbage\n")
    args = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--first-stage", str(run_file)]
    result = runner.invoke(
        app, [*args, "--reranker", keyword_kind, "--output-dir", str(tmp_path / "o"), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "| bm25 |" in result.stdout and "| given > keyword-test |" in result.stdout
    assert "unknown_doc_ids" in result.stdout and "bad_run_lines=1" in result.stdout
    saved = json.loads((tmp_path / "o" / "beir.eval.json").read_text())
    assert saved["run_reports"]["given"]["problems"] == {"unknown_doc_ids": 1, "queries_missing_from_run": 1}
    # the unknown document is kept (after the reranked ones), never dropped
    reranked = (tmp_path / "o" / "beir.given__keyword-test.trec").read_text()
    assert "ghost" in reranked


def test_eval_errors_are_clear(app: typer.Typer, beir_dir: Path) -> None:
    result = runner.invoke(app, ["eval", "--dataset", str(beir_dir), "--first-stage", "sparse"])
    assert result.exit_code == 2 and "--first-stage" in result.output
    result = runner.invoke(app, ["eval", "--dataset", "nowhere", "--baseline", "bm25"])
    assert result.exit_code == 2 and "unknown dataset" in result.output


def test_eval_cranfield_bm25(app: typer.Typer, cranfield_dir: Path, tmp_path: Path) -> None:
    args = ["eval", "--dataset", str(cranfield_dir), "--baseline", "bm25", "--output-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("| bm25 |"))
    ndcg, mrr, recall = (float(c) for c in row.split("|")[2:5])
    assert (ndcg, mrr, recall) == pytest.approx((0.3515, 0.5068, 0.7051), abs=1e-4)


def test_bench_on_tiny_beir(app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--dataset", str(beir_dir), "--reranker", keyword_kind, "--depth", "4", "--queries", "3"]
    result = runner.invoke(app, [*args, "--output", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "p50 (ms)" in result.stdout and "| keyword-test | 3 | 12 |" in result.stdout
    row = json.loads(out.read_text())["results"][0]
    assert row["p95_ms"] >= row["p50_ms"] > 0 and row["peak_rss_mib"] > 0 and row["batch_docs_per_s"] > 0


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("zaragoza_construction_faq") is None, reason="FAQ package missing")
def test_demo_smoke(app: typer.Typer) -> None:
    result = runner.invoke(app, ["demo", "--queries", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("query ") >= 2 and "*1" in out
    before = float(re.search(r"^  BM25 top-100 +([0-9.]+)", out, re.M).group(1))  # type: ignore[union-attr]
    after = float(re.search(r"^  BM25 top-100 > \S+ +([0-9.]+)", out, re.M).group(1))  # type: ignore[union-attr]
    assert before == pytest.approx(0.4898, abs=1e-3)
    assert after == pytest.approx(0.6928, abs=2e-3)


def test_eval_scoped_reranker_options(app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str) -> None:
    base = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--reranker", keyword_kind, "--no-progress"]
    ok = runner.invoke(
        app, [*base, "-o", f"{keyword_kind}:offset=-5", "--output-dir", str(tmp_path), "--format", "json"]
    )
    assert ok.exit_code == 0, ok.output
    scores = [float(line.split()[4]) for line in (tmp_path / "beir.bm25__keyword-test.trec").read_text().splitlines()]
    assert max(scores) < 0  # the scoped option reached the reranker (without it every score is >= 0)
    bad = runner.invoke(app, [*base, "-o", "other:offset=1", "--output-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "name no reranker" in bad.output
