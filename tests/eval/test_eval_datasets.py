"""Loaders: Cranfield traps (numbering by position, grade codes), FAQ, BEIR, TREC files; bad data is counted."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rerank_plugins.eval.datasets import (
    DataFormatError,
    DataWarning,
    check_run,
    load_beir,
    load_cranfield,
    load_dataset,
    load_faq,
    read_trec_qrels,
    read_trec_run,
    write_trec_qrels,
    write_trec_run,
)


# ---------------------------------------------------------------------------------------------- real Cranfield
def test_cranfield_real_numbering_and_gains(cranfield_dir: Path) -> None:
    ds = load_cranfield(cranfield_dir)
    assert len(ds.corpus) == 1400 and len(ds.queries) == 225
    # the third query in cran.qry has .I 004, and cranqrel calls it 3
    assert ds.metadata["query_dot_i"]["3"] == "004"
    assert ds.queries["3"].startswith("what problems of heat conduction in composite slabs")
    assert ds.qrels["3"], "qrels must be keyed by position"
    # first line of cranqrel is "1 184 2": code 2 -> gain 3; code -1 lines become gain 0
    assert ds.qrels["1"]["184"] == 3
    gains = {g for judged in ds.qrels.values() for g in judged.values()}
    assert gains == {0, 1, 2, 3, 4}
    assert sum(len(j) for j in ds.qrels.values()) == ds.report.counts["judgments"] == 1837
    assert ds.report.counts["empty_documents"] == 2  # .I 471 and 995 are empty: kept and counted
    assert "471" in ds.corpus and ds.document_text("471") == ""
    assert ds.report.ok


def test_cranfield_found_through_env(cranfield_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RERANK_PLUGINS_CRANFIELD", str(cranfield_dir))
    monkeypatch.chdir(tmp_path)
    assert len(load_dataset("cranfield").queries) == 225
    monkeypatch.setenv("RERANK_PLUGINS_CRANFIELD", str(tmp_path))
    with pytest.raises(DataFormatError, match="RERANK_PLUGINS_CRANFIELD"):
        load_cranfield()


# ---------------------------------------------------------------------------------------------- synthetic SMART
def test_smart_traps_and_problem_counts(smart_dir: Path) -> None:
    with pytest.warns(DataWarning, match="bad_qrels_lines"):
        ds = load_cranfield(smart_dir)
    assert list(ds.queries) == ["1", "2", "3"]
    assert ds.queries["3"] == "what problems of heat conduction in composite slabs have been solved ."
    assert ds.qrels["1"] == {"1": 4}
    assert ds.qrels["2"] == {"1": 0}
    assert ds.qrels["3"] == {"2": 3, "99": 1}
    p = ds.report.problems
    assert p["bad_qrels_lines"] == 1
    assert p["judgments_for_unknown_documents"] == 1
    assert p["judgments_for_unknown_queries"] == 1
    assert p["queries_without_relevant_documents"] == 1
    assert ds.report.counts["empty_documents"] == 1
    assert any("not a qrel" in w for w in ds.report.warnings)
    # title repeated in .W: the document text joins them as BEIR does
    assert ds.document_text("1").startswith("wing flutter wing flutter")


def test_smart_strict_raises(smart_dir: Path) -> None:
    with pytest.raises(DataFormatError, match="line 4"):
        load_cranfield(smart_dir, strict=True)


def test_query_without_judgments_is_counted(smart_dir: Path) -> None:
    (smart_dir / "cranqrel").write_text("1 1 1\n3 2 2\n")
    with pytest.warns(DataWarning):
        ds = load_cranfield(smart_dir)
    assert ds.report.problems["queries_without_judgments"] == 1
    assert "2" in ds.queries and ds.judged_query_ids == ["1", "3"]
    assert list(ds.head(1).queries) == ["1"]


# ---------------------------------------------------------------------------------------------- FAQ
@pytest.mark.skipif(importlib.util.find_spec("zaragoza_construction_faq") is None, reason="FAQ package missing")
def test_faq_each_question_has_its_own_answer() -> None:
    ds = load_faq()
    assert len(ds.queries) == len(ds.corpus) == 503
    assert all(ds.qrels[q] == {q: 1} for q in ds.queries)
    assert ds.queries["bygglov-001"] == "What is a bygglov (building permit)?"
    assert ds.corpus["bygglov-001"][0] == "" and ds.corpus["bygglov-001"][1].startswith("A bygglov is")
    assert ds.report.ok
    sv = load_faq(lang="sv")
    assert sv.queries["bygglov-001"] == "Vad är bygglov?"


# ---------------------------------------------------------------------------------------------- BEIR
def test_beir_counts_every_problem(beir_dir: Path) -> None:
    with pytest.warns(DataWarning):
        ds = load_dataset(beir_dir)
    assert set(ds.corpus) == {"d1", "d2", "d3", "d4"}
    assert ds.corpus["d1"] == ("Flutter", "wing flutter in transonic flow")
    assert set(ds.queries) == {"q1", "q2", "q3", "q4"}  # q9 is judged in train only
    assert ds.qrels["q2"] == {"d2": 2}
    p = ds.report.problems
    assert p == {
        "bad_corpus_lines": 1,
        "bad_qrels_lines": 1,
        "queries_without_judgments": 1,
        "judgments_for_unknown_documents": 1,
    }
    assert ds.report.counts["queries_in_other_splits"] == 1
    with pytest.warns(DataWarning, match="queries_without_judgments"):
        train = load_beir(beir_dir, split="train", strict=False)
    assert list(train.qrels) == ["q9"]


def test_beir_strict_and_bad_folders(beir_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not JSON"):
        load_beir(beir_dir, strict=True)
    with pytest.raises(DataFormatError, match=r"corpus\.jsonl"):
        load_beir(tmp_path)
    with pytest.raises(DataFormatError, match="unknown dataset"):
        load_dataset("no-such-dataset")


# ---------------------------------------------------------------------------------------------- TREC files
def test_trec_round_trip(tmp_path: Path) -> None:
    run = {"q1": [("d2", 3.5), ("d1", 1.0)], "q2": [("d3", 0.25)]}
    path = write_trec_run(run, tmp_path / "r.trec", tag="sys")
    back, rep = read_trec_run(path)
    assert back == run and rep.ok and rep.counts["run_entries"] == 3
    qrels = {"q1": {"d1": 1, "d2": 0}}
    back_q, rep_q = read_trec_qrels(write_trec_qrels(qrels, tmp_path / "q.txt"))
    assert back_q == qrels and rep_q.ok
    with pytest.raises(DataFormatError, match="tag"):
        write_trec_run(run, tmp_path / "x.trec", tag="two words")


def test_trec_bad_lines_counted(tmp_path: Path) -> None:
    (tmp_path / "r.trec").write_text(
        "q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2 notanumber t\nshort line\nq1 Q0 d1 3 1.0 t\nq1 Q0 d3 4 5.0 t\n"
    )
    run, rep = read_trec_run(tmp_path / "r.trec")
    assert run == {"q1": [("d3", 5.0), ("d1", 2.0)]}  # re-sorted by score, best first
    assert rep.problems == {"bad_run_lines": 2, "duplicate_run_entries": 1}
    (tmp_path / "q.txt").write_text("q1 0 d1 1\nq1 0 d2 x\nq1 d3\n")
    qrels, rep_q = read_trec_qrels(tmp_path / "q.txt")
    assert qrels == {"q1": {"d1": 1}} and rep_q.problems["bad_qrels_lines"] == 2
    with pytest.raises(DataFormatError, match="line 2"):
        read_trec_qrels(tmp_path / "q.txt", strict=True)


def test_check_run_unknown_docs_and_unjudged_queries() -> None:
    run = {"q1": [("d1", 1.0), ("ghost", 0.5)], "q2": [("d1", 1.0)]}
    rep = check_run(run, corpus_ids={"d1"}, qrels={"q1": {"d1": 1}})
    assert rep.problems == {"unknown_doc_ids": 1, "queries_without_judgments": 1}
    assert "ghost" in rep.summary()
