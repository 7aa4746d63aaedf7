"""Evaluation results that reproduce outside the tool (issue 13): run files any evaluator reads the same way,
strict mode, BEIR duplicates, distinct labels, ``--split``, one query, provenance in the JSON."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from rerank_plugins.eval.datasets import DataFormatError, load_beir
from rerank_plugins.eval.metrics import evaluate
from rerank_plugins.eval.trec import write_trec_run

ir_measures = pytest.importorskip("ir_measures")
runner = CliRunner()


@pytest.fixture
def clean_beir(beir_dir: Path) -> Path:
    """The conftest's BEIR folder without its traps (strict mode would stop at them before any run file)."""
    corpus = (beir_dir / "corpus.jsonl").read_text().splitlines()
    (beir_dir / "corpus.jsonl").write_text("\n".join(line for line in corpus if line.startswith('{"')) + "\n")
    queries = (beir_dir / "queries.jsonl").read_text().splitlines()
    (beir_dir / "queries.jsonl").write_text("\n".join(q for q in queries if '"q4"' not in q) + "\n")
    (beir_dir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq3\td3\t1\n")
    return beir_dir


def _external(run_file: Path, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    """nDCG@10 and RR@10 of a run file as ir-measures (pytrec_eval, trec_eval's code) computes them from disk."""
    qrel_rows = [ir_measures.Qrel(q, d, g) for q, j in qrels.items() for d, g in j.items()]
    measures = [ir_measures.nDCG @ 10, ir_measures.RR @ 10]
    got = ir_measures.calc_aggregate(measures, qrel_rows, ir_measures.read_trec_run(str(run_file)))
    return {"nDCG@10": got[measures[0]], "MRR@10": got[measures[1]]}


def test_written_ties_evaluate_as_printed(tmp_path: Path) -> None:
    # three tied scores with the relevant document in the middle: trec_eval's tie order (by document id, either
    # direction) would put it first or last; the printed figure counts it second
    run = {"q1": [("b", 1.0), ("a", 1.0), ("c", 1.0), ("d", 0.25)], "q2": [("x", 0.0), ("y", 0.0)]}
    qrels = {"q1": {"a": 1}, "q2": {"y": 1}}
    ours = evaluate(run, qrels, ("nDCG@10", "MRR@10"))
    path = write_trec_run(run, tmp_path / "r.trec", tag="t")
    assert _external(path, qrels) == pytest.approx(ours.aggregate, abs=1e-12)
    assert ours["MRR@10"] == pytest.approx(0.5)


def test_strictly_decreasing_keeps_decreasing_scores() -> None:
    from rerank_plugins.eval.trec import strictly_decreasing

    assert strictly_decreasing([3.0, 2.0, -1.0]) == [3.0, 2.0, -1.0]
    out = strictly_decreasing([1.0, 1.0, 99.0, 0.5])
    assert all(a > b for a, b in itertools.pairwise(out)) and out[0] == 1.0 and out[3] == 0.5
    big = strictly_decreasing([1e8] * 5)  # the step survives a float32 reader
    assert len({float(np.float32(v)) for v in big}) == 5


def test_unknown_documents_in_a_given_run_evaluate_as_printed(
    app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str
) -> None:
    given = tmp_path / "given.trec"
    # "ghost" is not in the corpus: it cannot be reranked and is kept after the reranked documents, with its
    # first-stage score (99) far above the reranker's; the file must still list it last for any evaluator
    given.write_text(
        "q1 Q0 ghost 1 99.0 t\nq1 Q0 d4 2 2.0 t\nq1 Q0 d1 3 1.0 t\n"
        "q2 Q0 ghost 1 99.0 t\nq2 Q0 d2 2 1.0 t\nq3 Q0 d3 1 5.0 t\nq3 Q0 d1 2 4.0 t\n"
    )
    out = tmp_path / "o"
    args = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--first-stage", str(given)]
    result = runner.invoke(app, [*args, "--reranker", keyword_kind, "--output-dir", str(out), "--format", "json",
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    row = next(s for s in report["systems"] if s["name"] == "given > keyword-test")
    qrels = load_beir(beir_dir).qrels
    external = _external(out / "beir.given__keyword-test.trec", qrels)
    assert external == pytest.approx({k: row["metrics"][k] for k in external}, abs=1e-9)
    assert row["metrics"]["MRR@10"] == pytest.approx(1.0)  # the reranker puts d1 / d2 / d3 first


def test_strict_run_file_problems_exit_2(
    app: typer.Typer, clean_beir: Path, tmp_path: Path, keyword_kind: str
) -> None:
    beir_dir = clean_beir
    bad = tmp_path / "bad.trec"
    bad.write_text("q1 Q0 d1 1 2.0 t\ngarbage\n")
    base = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--reranker", keyword_kind, "--no-progress",
            "--output-dir", str(tmp_path / "o")]
    result = runner.invoke(app, [*base, "--first-stage", str(bad), "--strict"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr and "expected 6 fields" in result.stderr and "Traceback" not in result.output
    unknown = tmp_path / "unknown.trec"
    unknown.write_text("q1 Q0 d1 1 2.0 t\nq1 Q0 ghost 2 1.0 t\nq2 Q0 d2 1 1.0 t\nq3 Q0 d3 1 1.0 t\n")
    result = runner.invoke(app, [*base, "--first-stage", str(unknown), "--strict"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.stderr and "'ghost' is not in the corpus" in result.stderr
    assert runner.invoke(app, [*base, "--first-stage", str(unknown)]).exit_code == 0  # counted, not fatal


def test_beir_duplicate_queries_and_conflicting_qrels(clean_beir: Path) -> None:
    beir_dir = clean_beir
    with (beir_dir / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "q1", "text": "a second text for q1"}) + "\n")
    with (beir_dir / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q2\td2\t1\nq1\td1\t2\n")
    with pytest.warns(UserWarning):
        ds = load_beir(beir_dir)
    assert ds.queries["q1"] == "wing flutter"  # the first text is kept
    assert ds.report.problems["duplicate_queries"] == 1
    assert ds.report.problems["conflicting_judgments"] == 2 and ds.report.counts["queries"] == 3
    assert ds.qrels["q2"]["d2"] == 2 and ds.qrels["q1"]["d1"] == 2  # the max, as read_trec_qrels keeps
    with pytest.raises(DataFormatError, match="judged 2 then 1"):
        load_beir(beir_dir, strict=True, split="test")


def test_repeated_rerankers_get_distinct_labels(
    app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str
) -> None:
    args = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--reranker", keyword_kind,
            "--reranker", keyword_kind, "-o", f"{keyword_kind}#2:offset=-5", "--format", "json", "--no-progress"]
    result = runner.invoke(app, [*args, "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    names = [s["name"] for s in json.loads(result.stdout)["systems"]]
    assert names == ["bm25", "bm25 > keyword-test#1", "bm25 > keyword-test#2"]
    first = (tmp_path / "beir.bm25__keyword-test_1.trec").read_text().split()
    second = (tmp_path / "beir.bm25__keyword-test_2.trec").read_text().split()
    assert float(first[4]) >= 0 > float(second[4])  # the scoped option reached the second one only
    bad_args = [a if a != f"{keyword_kind}#2:offset=-5" else f"{keyword_kind}:offset=1" for a in args]
    bad = runner.invoke(app, [*bad_args, "--output-dir", str(tmp_path)])
    assert bad.exit_code == 2 and "keyword-test#1" in bad.stderr


def test_split_option(app: typer.Typer, beir_dir: Path, tmp_path: Path) -> None:
    (beir_dir / "qrels" / "test.tsv").rename(beir_dir / "qrels" / "dev.tsv")
    base = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--no-progress", "--output-dir", str(tmp_path)]
    result = runner.invoke(app, base)
    assert result.exit_code == 2 and "--split" in result.stderr
    result = runner.invoke(app, [*base, "--split", "train", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["systems"][0]["queries"] == 1 and "train" in report["summary"] + json.dumps(report["provenance"])
    result = runner.invoke(app, [*base, "--split", "nope"])
    assert result.exit_code == 2 and "no qrels/nope.tsv" in result.stderr


def test_one_query_leaves_the_paired_test_empty(
    app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str
) -> None:
    args = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--reranker", keyword_kind, "--queries", "1"]
    result = runner.invoke(app, [*args, "--no-progress", "--output-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("| bm25 > keyword-test |"))
    assert row.rstrip().endswith("|  |")  # the p-value column is empty


def test_json_carries_provenance(app: typer.Typer, beir_dir: Path, tmp_path: Path, keyword_kind: str) -> None:
    args = ["eval", "--dataset", str(beir_dir), "--baseline", "bm25", "--reranker", keyword_kind,
            "-o", "offset=0.5", "--no-progress", "--output-dir", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    prov = json.loads((tmp_path / "beir.eval.json").read_text())["provenance"]
    assert prov["command_line"][0] == "rerank-plugins"
    assert prov["rerankers"][0]["options"] == {"offset": 0.5} and prov["rerankers"][0]["label"] == keyword_kind
    assert prov["packages"]["rerank-plugins"] and prov["packages"]["ir-measures"] == ir_measures.__version__
    assert prov["threads"]["cpu_count"] >= 1 and prov["dataset"]["split"] == "test"


def test_model_files_are_hashed(tmp_path: Path) -> None:
    from rerank_plugins.eval.provenance import model_files

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    info = model_files(str(folder))
    assert info["files"] == [
        {"file": "model.safetensors", "bytes": 7, "sha256": hashlib.sha256(b"weights").hexdigest()}
    ]
    assert model_files("keyword-test-no-such-model/xyz")["resolved"] == "keyword-test-no-such-model/xyz"
