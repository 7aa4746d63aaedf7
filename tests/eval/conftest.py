"""Fixtures for the evaluation tests: a tiny SMART (Cranfield-format) folder and a tiny BEIR folder with traps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins.eval.datasets import DataFormatError, find_cranfield


@pytest.fixture(scope="session")
def cranfield_dir() -> Path:
    try:
        return find_cranfield()
    except DataFormatError:
        pytest.skip("the Cranfield collection (../shared/data/cranfield or $RERANK_PLUGINS_CRANFIELD) is not here")


def write_smart(folder: Path) -> Path:
    """Three documents, three queries numbered .I 001, 002, 004 (the Cranfield trap), qrels by position."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cran.all.1400").write_text(
        ".I 1\n.T\nwing flutter\n.A\nsmith\n.W\nwing flutter\nflutter of a swept wing in transonic flow .\n"
        ".I 2\n.T\nheat transfer\n.W\nheat conduction in composite slabs .\n"
        ".I 3\n.T\n.W\n"
    )
    (folder / "cran.qry").write_text(
        ".I 001\n.W\nwing flutter at transonic speed .\n"
        ".I 002\n.W\nboundary layer suction .\n"
        ".I 004\n.W\nwhat problems of heat conduction in composite slabs\nhave been solved .\n"
    )
    # query 3 = the query whose .I is 004; "2 1 -1" is a judged non-relevant document; one bad line,
    # one judgment of a document that does not exist, one of a query that does not exist; query 2 has only -1.
    (folder / "cranqrel").write_text("1 1 1\n2 1 -1\n3 2 2\nthis is not a qrel\n3 99 4\n7 1 1\n")
    return folder


def write_beir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [
        {"_id": "d1", "title": "Flutter", "text": "wing flutter in transonic flow"},
        {"_id": "d2", "title": "Heat", "text": "heat conduction in composite slabs"},
        {"_id": "d3", "title": "", "text": "boundary layer suction on a flat plate"},
        {"_id": "d4", "title": "Noise", "text": "jet noise of supersonic aircraft"},
    ]
    lines = [json.dumps(d) for d in docs] + ["{not json"]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    queries = [
        {"_id": "q1", "text": "wing flutter"},
        {"_id": "q2", "text": "heat conduction slabs"},
        {"_id": "q3", "text": "suction boundary layer"},
        {"_id": "q4", "text": "a query judged nowhere"},
        {"_id": "q9", "text": "a training query"},
    ]
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq3\td3\t1\nq3\tmissing-doc\t1\nq1 d2 broken\n"
    )
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td4\t1\n")
    return folder


BOM = "\ufeff"

DOCS = [
    ("d1", "Flutter", "wing flutter in transonic flow"),
    ("d2", "Heat", "heat conduction in composite slabs"),
    ("d3", "Suction", "boundary layer suction on a flat plate"),
    ("d4", "Noise", "jet noise of supersonic aircraft"),
]
QUERIES = [("q1", "wing flutter"), ("q2", "heat conduction slabs"), ("q3", "suction boundary layer")]
QRELS = [("q1", "d1", 1), ("q2", "d2", 2), ("q3", "d3", 1)]


def write_clean_beir(folder: Path, *, bom: bool = False, empty_doc: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [{"_id": i, "title": t, "text": x} for i, t, x in DOCS]
    if empty_doc:
        docs.append({"_id": "d5", "title": "", "text": "  "})
    mark = BOM if bom else ""
    (folder / "corpus.jsonl").write_text(mark + "\n".join(json.dumps(d) for d in docs) + "\n", encoding="utf-8")
    queries = "\n".join(json.dumps({"_id": q, "text": t}) for q, t in QUERIES) + "\n"
    (folder / "queries.jsonl").write_text(mark + queries, encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    rows = "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS)
    (folder / "qrels" / "test.tsv").write_text(mark + "query-id\tcorpus-id\tscore\n" + rows, encoding="utf-8")
    return folder



@pytest.fixture(scope="module")
def app() -> Any:
    """The real entry point (its plain, one-line error messages do not depend on the terminal's width)."""
    from rerank_plugins import cli

    return cli.build()


@pytest.fixture
def keyword_kind(monkeypatch: pytest.MonkeyPatch) -> str:
    """A model-free reranker reachable through load_reranker, for fast CLI tests."""
    from rerank_plugins import models
    from rerank_plugins.models import StrategySpec

    spec = StrategySpec("keyword-test", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword-test", spec)
    return "keyword-test"


@pytest.fixture
def clean_beir() -> Any:
    """``write_clean_beir``: a BEIR folder without problems (``bom=``, ``empty_doc=`` spoil it)."""
    return write_clean_beir


@pytest.fixture
def smart_dir(tmp_path: Path) -> Path:
    return write_smart(tmp_path / "smart")


@pytest.fixture
def beir_dir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "beir")
