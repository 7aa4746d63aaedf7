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
