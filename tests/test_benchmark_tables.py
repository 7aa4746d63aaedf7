"""The markdown tables the benchmarks print have one header cell per row cell (issue 13: benchmarks/pointwise.py
printed a 10-column header over 11-column rows)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))  # the scripts import their sibling _common
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_pointwise_table_columns(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("pointwise")
    systems = {"sentence-transformers": (None, 0.2, ""), "ours fp32": (None, 0.1, "sorted"),
               "onnx": (None, 0.0, "not installed")}
    scores = {"sentence-transformers": [0.1, 0.5, 0.3, 0.2], "ours fp32": [0.1, 0.5, 0.3, 0.25]}
    rows = bench.report(systems, {"sentence-transformers": 2.0, "ours fp32": 1.0},
                        {"sentence-transformers": 4.0, "ours fp32": 2.0}, scores, 1e9, {"fp32": 10.0, "bf16": 20.0},
                        ["q1", "q1", "q2", "q2"])
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(systems)
    widths = {line.count("|") for line in table}
    assert widths == {len(bench.COLUMNS) + 1}, table
    assert "per-query Kendall tau" in table[0] and rows[1]["per_query_kendall_tau"] == pytest.approx(1.0)


def test_long_documents_collection_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("long_documents")
    corpus = {str(i): f"document {i} " + "word " * 50 for i in range(1, 30)}
    qrels = {"q1": {"1": 4, "2": 0}, "q2": {"3": 2}}
    run = {"q1": [("5", 3.0), ("6", 2.0)], "q2": [("3", 1.0), ("7", 0.5)]}
    cands = bench.candidate_ids(qrels, run, ["q1", "q2"])
    assert cands == {"q1": ["5", "6", "1"], "q2": ["3", "7"]}  # relevant documents BM25 missed are added
    unpadded, padded = bench.needle_collection(corpus, qrels, cands, lambda t: len(t.split()), 120)
    for q, docs in padded.items():
        for (d, text), (d0, original) in zip(docs, unpadded[q]):
            assert d == d0 and text.endswith(original) and len(text.split()) - len(original.split()) >= 120
            filler = text[: -len(original)]
            banned = set(qrels[q]) | set(cands[q])
            assert not any(f"document {b} " in filler for b in banned)  # unrelated text only
    assert bench.needle_collection(corpus, qrels, cands, lambda t: len(t.split()), 120)[1] == padded  # seeded
    rows = bench.summarise("m", [("unpadded", "truncate", 0.8, 10, 1.0), ("padded", "truncate", 0.5, 10, 2.0),
                                 ("padded", "chunk max", 0.79, 40, 6.0)])
    assert rows[2]["delta"] == pytest.approx(-0.01) and rows[2]["ratio"] == pytest.approx(3.0)
    bench.report(rows)
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows) and {line.count("|") for line in table} == {len(bench.COLUMNS) + 1}
