"""Ray Data batch reranking: two local actors on all 225 Cranfield queries equal the in-process reranker;
resume after a partial or crashed run; Parquet in/out; failed rows recorded and retried. One local Ray
(2 CPUs, no dashboard) for the whole module."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from rerank_plugins.batch import BatchRowsFailed, done_query_ids, read_results, rerank_dataset  # noqa: E402
from rerank_plugins.batch.io import ERRORS_DIR, row_to_inputs, write_part  # noqa: E402
from rerank_plugins.batch.io import output_fs as fs_of  # noqa: E402
from rerank_plugins.errors import ConfigError, InvalidInputError  # noqa: E402
from rerank_plugins.testing.rerankers import KeywordReranker  # noqa: E402

KEYWORD = functools.partial(KeywordReranker, traces=False)
DEPTH = 5  # BM25 candidates per query: 225 x 5 = 1125 MiniLM documents keeps the slow test bounded


@pytest.fixture(scope="module")
def local_ray():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def cranfield_rows() -> list[dict]:
    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run

    try:
        ds = load_cranfield()
    except Exception as exc:  # the collection ships next to the repository, not on PyPI
        pytest.skip(f"Cranfield not available: {exc}")
    run = bm25_run(ds, k=DEPTH)
    return [
        {
            "query_id": qid,
            "query": ds.queries[qid],
            "candidates": [{"id": d, "text": ds.document_text(d), "score": s} for d, s in run[qid]],
        }
        for qid in ds.queries
    ]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def in_process(reranker, rows: list[dict]) -> dict[str, list[tuple[str, float]]]:
    out = {}
    for row in rows:
        qid, query, cands = row_to_inputs(row)
        out[qid] = [(r.id, r.score) for r in reranker.rerank(query, cands)]
    return out


def as_pairs(results: dict[str, list[dict]]) -> dict[str, list[tuple[str, float]]]:
    return {q: [(r["id"], r["score"]) for r in rs] for q, rs in results.items()}


# ----------------------------------------------------------------------------------------------- Ray
@pytest.mark.slow
def test_two_actors_rerank_all_cranfield_queries_like_in_process(local_ray, cranfield_rows, tmp_path):
    from rerank_plugins.models import load_reranker

    src = write_jsonl(tmp_path / "in.jsonl", cranfield_rows)
    report = rerank_dataset(src, str(tmp_path / "out"), reranker="minilm", actors=2, batch_size=32)
    assert report.reranked == len(cranfield_rows) == 225 and report.failed == 0
    assert report.files == -(-225 // 32)
    got = as_pairs(read_results(str(tmp_path / "out")))
    reranker = load_reranker("minilm")
    parsed = [row_to_inputs(r) for r in cranfield_rows]
    ranked = reranker.rerank_batch([p[1] for p in parsed], [p[2] for p in parsed])
    want = {p[0]: [(r.id, r.score) for r in result] for p, result in zip(parsed, ranked)}
    assert set(got) == set(want)
    for qid in want:
        assert [d for d, _ in got[qid]] == [d for d, _ in want[qid]], qid
        assert [s for _, s in got[qid]] == pytest.approx([s for _, s in want[qid]], abs=1e-6)


def test_resume_skips_finished_rows_and_matches_in_process(local_ray, cranfield_rows, tmp_path):
    rows = cranfield_rows[:150]
    out = str(tmp_path / "out")
    first = rerank_dataset(write_jsonl(tmp_path / "part.jsonl", rows[:60]), out, reranker=KEYWORD, actors=2,
                           batch_size=16)
    assert (first.reranked, first.already_done) == (60, 0)
    # a run that crashed mid-write leaves only a hidden temporary file: never counted, removed at the next start
    (Path(out) / ".part-dead-000.jsonl.tmp").write_text('{"query_id": "1"', encoding="utf-8")
    second = rerank_dataset(write_jsonl(tmp_path / "all.jsonl", rows), out, reranker=KEYWORD, actors=2,
                            batch_size=16)
    assert (second.reranked, second.already_done) == (90, 60)
    assert not list(Path(out).glob(".part-*"))
    third = rerank_dataset(str(tmp_path / "all.jsonl"), out, reranker=KEYWORD, actors=2)
    assert (third.reranked, third.already_done, third.files) == (0, 150, 0)
    results = read_results(out)  # raises on a query_id written twice
    assert as_pairs(results) == in_process(KEYWORD(), rows)


def test_parquet_in_and_out_with_metadata_and_top_k(local_ray, tmp_path):
    rows = [
        {"query_id": 7, "query": "shock waves", "candidates": [
            {"id": 1, "text": "pasta", "score": 1.0, "source": "a"},
            {"id": 2, "text": "shock waves form", "score": 0.5, "source": "b"},
            {"id": 3, "text": "waves", "score": 0.1, "source": None},
        ]},
        {"query_id": 8, "query": "pasta",
         "candidates": [{"id": 4, "text": "pasta water", "score": 2.0, "source": "c"}]},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    report = rerank_dataset(str(tmp_path / "in.parquet"), str(tmp_path / "out"), reranker=KEYWORD, top_k=2,
                            keep_query=True)
    assert report.reranked == 2
    parts = list((tmp_path / "out").glob("part-*.parquet"))
    assert parts and not list((tmp_path / "out").glob("*.jsonl"))
    table = pq.read_table(parts[0]).to_pylist()
    assert {r["query"] for r in table} <= {"shock waves", "pasta"}
    results = read_results(str(tmp_path / "out"))
    assert [r["id"] for r in results["7"]] == ["2", "3"]  # ids as strings, top_k applied
    assert [r["rank"] for r in results["7"]] == [1, 2]


def test_failed_rows_are_recorded_and_retried(local_ray, tmp_path):
    rows = [
        {"query_id": "ok", "query": "shock", "candidates": [{"id": "a", "text": "shock"}]},
        {"query_id": "bad", "query": "   ", "candidates": [{"id": "a", "text": "shock"}]},
    ]
    out = str(tmp_path / "out")
    report = rerank_dataset(write_jsonl(tmp_path / "in.jsonl", rows), out, reranker=KEYWORD, on_error="record")
    assert (report.reranked, report.failed) == (1, 1)
    error_files = (Path(out) / ERRORS_DIR).glob("part-*.jsonl")
    errors = [json.loads(line) for p in error_files for line in p.read_text().splitlines()]
    assert errors == [{"query_id": "bad", "error": "InvalidInputError: query is empty: give a non-blank query text "
                                                   "(or an image)"}]
    assert done_query_ids(out) == {"ok"}
    rows[1]["query"] = "shock"
    again = rerank_dataset(write_jsonl(tmp_path / "in.jsonl", rows), out, reranker=KEYWORD)
    assert (again.reranked, again.already_done) == (1, 1)


def test_errors_raise_by_default_after_the_good_rows_are_written(local_ray, tmp_path):
    rows = [
        {"query_id": "ok1", "query": "shock", "candidates": [{"id": "a", "text": "shock"}]},
        {"query_id": "bad", "query": "q", "candidates": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]},
        {"query_id": "worse", "query": "q", "candidates": "not a list"},
        {"query_id": "ok2", "query": "shock", "candidates": [{"id": "b", "text": "shock wave"}]},
    ]
    out = str(tmp_path / "out")
    with pytest.raises(BatchRowsFailed, match="duplicate candidate id 'a'") as caught:
        rerank_dataset(write_jsonl(tmp_path / "in.jsonl", rows), out, reranker=KEYWORD, batch_size=4)
    assert (caught.value.report.reranked, caught.value.report.failed) == (2, 2)
    assert "'worse'" in str(caught.value) and "ok1" not in str(caught.value)
    assert set(read_results(out)) == {"ok1", "ok2"}  # the good rows of the same batch were written
    assert {e["query_id"] for e in caught.value.errors} == {"bad", "worse"}


def test_batch_command_reports_a_bad_row_without_a_traceback(local_ray, tmp_path):
    from typer.testing import CliRunner

    from rerank_plugins import cli

    rows = [
        {"query_id": "ok", "query": "shock", "candidates": [{"id": "a", "text": "shock"}]},
        {"query_id": "bad", "query": "shock", "candidates": "oops"},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    result = CliRunner().invoke(cli.build(), ["batch", src, str(tmp_path / "out"), "--model", "minilm"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: 1 row(s) failed: 'bad': InvalidInputError: row 'bad': 'candidates'")
    assert "reranked 1 rows" in result.stdout and set(read_results(str(tmp_path / "out"))) == {"ok"}


def test_a_local_ray_started_here_is_quiet(tmp_path):
    """A fresh process (no Ray running): Ray's token-auth notice, its core-worker line about actor restarts and
    its INFO lines do not reach stderr."""
    import subprocess
    import sys

    row = {"query_id": "q", "query": "a", "candidates": [{"id": "1", "text": "a"}]}
    src = write_jsonl(tmp_path / "in.jsonl", [row])
    code = (
        "import functools\n"
        "from rerank_plugins.batch import rerank_dataset\n"
        "from rerank_plugins.testing.rerankers import KeywordReranker\n"
        f"r = rerank_dataset({src!r}, {str(tmp_path / 'out')!r}, reranker=functools.partial(KeywordReranker),"
        " ray_init={'num_cpus': 1})\n"
        "print(r.reranked)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "1"
    for noise in ("Token authentication is enabled", "core_worker", "Started a local Ray", "streaming_executor",
                  "Progress bars disabled"):
        assert noise not in done.stderr, done.stderr


# ----------------------------------------------------------------------------------------------- no Ray needed
def test_row_to_inputs():
    qid, query, cands = row_to_inputs(
        {"query_id": 3, "query": "q", "candidates": [{"id": 5, "text": "t", "score": 2, "lang": "en", "x": None}]}
    )
    assert (qid, query.text, query.id) == ("3", "q", "3")
    assert (cands[0].id, cands[0].score, dict(cands[0].metadata)) == ("5", 2.0, {"lang": "en"})
    with pytest.raises(InvalidInputError, match="no id"):
        row_to_inputs({"query_id": 1, "query": "q", "candidates": [{"text": "t"}]})
    with pytest.raises(InvalidInputError, match="'candidates' must be a list"):
        row_to_inputs({"query_id": 1, "query": "q", "candidates": "abc"})


def test_parts_are_complete_or_absent(tmp_path):
    fs, root = fs_of(str(tmp_path))
    path = write_part(fs, root, [{"query_id": "1", "results": [], "reranker": "k"}], "jsonl", "run1")
    assert Path(path).name.startswith("part-run1-") and Path(path).exists()
    assert not list(tmp_path.glob(".part-*"))
    (tmp_path / ".part-x.jsonl.tmp").write_text('{"query_id": "2"}\n')  # an unfinished write is ignored
    assert done_query_ids(str(tmp_path)) == {"1"}
    assert done_query_ids(str(tmp_path / "missing")) == set()


def test_bad_options(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [])
    with pytest.raises(ConfigError, match="actors"):
        rerank_dataset(src, str(tmp_path / "o"), actors=0)
    with pytest.raises(ConfigError, match="does not exist"):
        rerank_dataset(str(tmp_path / "nothing.jsonl"), str(tmp_path / "o"))
    (tmp_path / "rows.txt").write_text("{}\n")
    with pytest.raises(ConfigError, match="cannot tell the format"):
        rerank_dataset(str(tmp_path / "rows.txt"), str(tmp_path / "o"))
