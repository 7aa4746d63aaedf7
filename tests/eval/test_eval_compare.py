"""Issue 22: ``--compare-to`` any row, a pairwise table, and corrected p-values (Holm by default).

The p-values of the command are checked against scipy's paired t-test on the per-query values the command wrote,
followed by a Holm correction written here, independently of :mod:`rerank_plugins.eval.compare`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rerank_plugins.errors import ConfigError
from rerank_plugins.eval.compare import adjust_pvalues, compare_pairs, compare_to

scipy_stats = pytest.importorskip("scipy.stats")
runner = CliRunner()

WORDS = ["wing flutter", "heat slabs", "boundary suction", "jet noise", "shock wave", "rotor blade", "skin friction",
         "plate buckling"]


def holm_by_hand(pvalues: list[float]) -> list[float]:
    """Holm (1979): sort ascending, multiply the i-th smallest (0-based) by m - i, enforce monotonicity, cap at 1."""
    m = len(pvalues)
    ranked = sorted((p, i) for i, p in enumerate(pvalues))
    out = [0.0] * m
    best = 0.0
    for k, (p, i) in enumerate(ranked):
        best = max(best, min(1.0, (m - k) * p))
        out[i] = best
    return out


@pytest.fixture
def collection(tmp_path: Path) -> tuple[Path, Path]:
    """8 queries, 8 relevant documents plus distractors; a run file whose relevant document sits at varied ranks."""
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    docs, qrels, run = [], ["query-id\tcorpus-id\tscore"], []
    for i, words in enumerate(WORDS):
        docs.append({"_id": f"r{i}", "title": "", "text": f"{words} measured in a long report on {words}"})
        docs.append({"_id": f"x{i}", "title": "", "text": f"{words.split()[0]} notes"})
        qrels.append(f"q{i}\tr{i}\t1")
        ranked = [f"x{j}" for j in range(len(WORDS)) if j != i]
        ranked.insert(i % 5, f"r{i}")  # the relevant document at rank 1..5
        run += [f"q{i} Q0 {d} {k} {100 - k} t" for k, d in enumerate(ranked, 1)]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    queries = [json.dumps({"_id": f"q{i}", "text": w}) for i, w in enumerate(WORDS)]
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    (tmp_path / "given.trec").write_text("\n".join(run) + "\n")
    return root, tmp_path / "given.trec"


def test_compare_to_with_holm_matches_scipy_then_holm(
    app: typer.Typer, collection: tuple[Path, Path], tmp_path: Path, keyword_kind: str
) -> None:
    data, run = collection
    args = ["eval", "--dataset", str(data), "--first-stage", str(run), "--baseline", "bm25", "--reranker",
            keyword_kind, "--depth", "4", "--compare-to", "bm25", "--output-dir", str(tmp_path / "o"), "--no-progress"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "vs bm25" in result.stdout and "holm, 2 rows" in result.stdout
    saved = json.loads((tmp_path / "o" / "beir.eval.json").read_text())
    assert saved["compare_to"] == "bm25"
    rows = {s["name"]: s for s in saved["systems"]}
    assert "comparison" not in rows["bm25"]
    compared = ["given", "given > keyword-test"]
    qids = sorted(rows["bm25"]["per_query"]["nDCG@10"])
    base = [rows["bm25"]["per_query"]["nDCG@10"][q] for q in qids]
    raw = []
    for name in compared:
        other = [rows[name]["per_query"]["nDCG@10"][q] for q in qids]
        raw.append(float(scipy_stats.ttest_rel(other, base).pvalue))
    assert min(raw) < 0.5  # the runs differ: a real test, not p = 1 everywhere
    expected = holm_by_hand(raw)
    got = [rows[name]["comparison"]["t_pvalue"] for name in compared]
    assert got == pytest.approx(expected, rel=1e-12)
    assert [rows[name]["comparison"]["t_pvalue_raw"] for name in compared] == pytest.approx(raw, rel=1e-12)
    assert all(rows[n]["comparison"]["correction"] == "holm" for n in compared)
    assert expected != pytest.approx(raw)  # the correction changed something


def test_pairwise_table_and_no_correction(
    app: typer.Typer, collection: tuple[Path, Path], tmp_path: Path, keyword_kind: str
) -> None:
    data, run = collection
    args = ["eval", "--dataset", str(data), "--first-stage", str(run), "--baseline", "bm25", "--reranker",
            keyword_kind, "--pairwise", "bm25", "--pairwise", "given", "--pairwise", "given > keyword-test",
            "--correction", "bonferroni", "--output-dir", str(tmp_path / "o"), "--no-progress", "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    pairs = report["pairwise"]
    assert [(p["a"], p["b"]) for p in pairs] == [
        ("bm25", "given"), ("bm25", "given > keyword-test"), ("given", "given > keyword-test")
    ]
    for p in pairs:
        assert p["family_size"] == 3 and p["t_pvalue"] == pytest.approx(min(1.0, 3 * p["t_pvalue_raw"]))
    bad = runner.invoke(app, [*args[:-2], "--compare-to", "nothing"])
    assert bad.exit_code == 2 and "no row 'nothing'" in bad.output
    bad = runner.invoke(app, [*args[:-2], "--correction", "sidak"])
    assert bad.exit_code == 2 and "correction must be one of" in bad.output


def test_adjust_pvalues_holm_bonferroni_none() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    assert adjust_pvalues(p, "holm") == pytest.approx(holm_by_hand(p))
    assert adjust_pvalues(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert adjust_pvalues(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.8])
    assert adjust_pvalues(p, "none") == p
    with pytest.raises(ConfigError):
        adjust_pvalues(p, "fdr")


def test_single_comparison_is_not_corrected_by_default() -> None:
    a = {"1": 0.1, "2": 0.5, "3": 0.2, "4": 0.4}
    b = {"1": 0.3, "2": 0.6, "3": 0.2, "4": 0.9}
    (one,) = compare_to("a", {"a": a, "b": b}, measure="nDCG@10", n_resamples=200)
    assert one.correction == "none" and one.t_pvalue == one.test.t_pvalue
    with pytest.raises(ConfigError):
        compare_pairs(["a"], {"a": a}, measure="nDCG@10")
