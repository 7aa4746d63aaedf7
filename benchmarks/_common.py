"""Shared by the benchmark scripts (run as ``python benchmarks/<name>.py``, which puts this folder on the path).

Importing it also puts the repository's ``tests/`` folder on the path, for the helpers the benchmarks share with
the tests (``tests/_support``: local servers, the PyLate reference run).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)


def save_results(path: str | os.PathLike[str], payload: dict[str, Any], *, indent: int = 2) -> Path:
    """Write ``payload`` as JSON to ``path`` (folders created; values JSON cannot hold written as ``str``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=indent, default=str))
    print(f"results written to {out}")
    return out


def group_by_query(pairs: list[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """Consecutive ``(query, document)`` pairs of one query as ``(queries, documents per query)``: the
    ``rerank_batch`` arguments that score the pairs in their order."""
    queries: list[str] = []
    lists: list[list[str]] = []
    for q, d in pairs:
        if not queries or queries[-1] != q:
            queries.append(q)
            lists.append([])
        lists[-1].append(d)
    return queries, lists
