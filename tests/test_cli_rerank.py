"""``rerank-plugins rerank``: JSONL / TSV in, ranked JSONL out, clear errors (exit code 2) for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
typer = pytest.importorskip("typer")
from typer.testing import CliRunner  # noqa: E402

from rerank_plugins import cli  # noqa: E402


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """The real entry point (its plain, one-line error messages do not depend on the terminal's width)."""
    return cli.build()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("cli-ce"), num_labels=1)


def _run(app: typer.Typer, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["rerank", *args])
    return result.exit_code, result.stdout, result.stderr


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_command_is_registered() -> None:
    assert "rerank_plugins.commands.rerank" in cli.COMMAND_MODULES


def test_jsonl_to_ranked_jsonl(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "shock waves at supersonic speed", "metadata": {"src": "x"}, "score": 3.0},
        {"id": "b", "text": "boiling pasta"},
        {"id": "c", "text": "wing flutter ünïcode 超音速"},
    ]
    inp = _jsonl(tmp_path / "c.jsonl", rows)
    out = tmp_path / "out.jsonl"
    code, _, err = _run(app, "--model", str(model_dir), "--query", "shock waves", "--input", str(inp),
                        "--output", str(out))
    assert code == 0, err
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(x["id"] for x in lines) == ["a", "b", "c"]
    assert [x["rank"] for x in lines] == [1, 2, 3]
    assert [x["score"] for x in lines] == sorted((x["score"] for x in lines), reverse=True)
    by_id = {x["id"]: x for x in lines}
    assert by_id["a"]["metadata"] == {"src": "x"} and by_id["a"]["original_position"] == 0
    assert by_id["c"]["text"] == rows[2]["text"]
    assert set(lines[0]) == {"id", "score", "rank", "original_position", "text", "metadata"}


def test_scores_match_the_library(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    from rerank_plugins import load_reranker

    inp = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "one"}, {"id": "b", "text": "two words"}])
    code, stdout, _ = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp))
    assert code == 0
    got = {json.loads(x)["id"]: json.loads(x)["score"] for x in stdout.splitlines()}
    expected = {r.id: r.score for r in load_reranker(str(model_dir)).rerank("q", [{"id": "a", "text": "one"},
                                                                                   {"id": "b", "text": "two words"}])}
    assert got == pytest.approx(expected, abs=1e-6)


def test_tsv_top_k_and_threshold(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    inp = tmp_path / "c.tsv"
    inp.write_text("id\ttext\nd1\tfirst text\nd2\tsecond text\nd3\tthird\n", encoding="utf-8")
    code, stdout, _ = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp), "--top-k", "2")
    assert code == 0
    lines = [json.loads(x) for x in stdout.splitlines()]
    assert len(lines) == 2
    code, stdout, _ = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp), "--threshold", "2.0")
    assert code == 0 and stdout.strip() == ""
    code, stdout, _ = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp))
    assert {json.loads(x)["id"]: json.loads(x)["text"] for x in stdout.splitlines()}["d2"] == "second text"


def test_many_queries_from_jsonl(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    rows = [{"query": "q1", "text": "a"}, {"query": "q2", "text": "b"}, {"query": "q1", "text": "c"}]
    inp = _jsonl(tmp_path / "m.jsonl", rows)
    code, stdout, _ = _run(app, "-m", str(model_dir), "-i", str(inp))
    assert code == 0
    lines = [json.loads(x) for x in stdout.splitlines()]
    assert [x["query"] for x in lines] == ["q1", "q1", "q2"]
    assert sorted(x["id"] for x in lines if x["query"] == "q1") == ["0", "1"]


def test_options_are_passed(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    inp = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "one"}])
    code, stdout, _ = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp), "-o", 'activation="raw"')
    assert code == 0
    raw = json.loads(stdout)["score"]
    code, stdout, _ = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp))
    assert json.loads(stdout)["score"] == pytest.approx(1 / (1 + 2.718281828459045 ** -raw), abs=1e-6)


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("{not json}\n", ".jsonl", "not valid JSON"),
        ('["a"]\n', ".jsonl", "JSON object"),
        ('{"id": "a"}\n', ".jsonl", "'text'"),
        ('{"id": "a", "text": "x", "colour": 1}\n', ".jsonl", "unknown keys"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', ".jsonl", "duplicate"),
        ("no tab here\n", ".tsv", "no tab"),
        ("a,b\n", ".csv", "unknown format"),
    ],
)
def test_bad_files_exit_2(app: typer.Typer, model_dir: Path, tmp_path: Path, content: str, suffix: str,
                          message: str) -> None:
    inp = tmp_path / f"bad{suffix}"
    inp.write_text(content, encoding="utf-8")
    code, _, err = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(inp))
    assert code == 2
    assert message in err


def test_missing_file_and_missing_query(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    code, _, err = _run(app, "-m", str(model_dir), "-q", "q", "-i", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "does not exist" in err
    inp = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "one"}])
    code, _, err = _run(app, "-m", str(model_dir), "-i", str(inp))
    assert code == 2 and "--query" in err
    code, _, err = _run(app, "-m", str(model_dir), "-q", "  ", "-i", str(inp))
    assert code == 2 and "empty" in err


def test_bad_model_path_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    inp = _jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "one"}])
    code, _, err = _run(app, "-m", str(tmp_path / "no-model"), "-q", "q", "-i", str(inp))
    assert code == 2 and "--model" in err


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a model fails the test: input errors must come before it."""
    from rerank_plugins import models

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(models, "load_reranker", forbidden)


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("", ".jsonl", "no candidates to rerank (read an empty file)"),
        ("\n  \n", ".jsonl", "no candidates to rerank (read 2 line(s), none with a candidate)"),
        ("q1\td1\tshock waves\n", ".tsv", "line 1: read 3 tab-separated column(s) ('q1' | 'd1' | 'shock waves'), "
         "expected 2: id<TAB>text"),
        ("query\tid\ttext\nq1\td1\n", ".tsv", "line 2: read 2 tab-separated column(s) ('q1' | 'd1'), expected 3"),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', ".jsonl", "duplicate id 'a' for query 'q' (lines 1 "
         "and 2)"),
    ],
)
def test_bad_input_is_rejected_before_any_model_loads(
    app: typer.Typer, tmp_path: Path, no_model: None, content: str, suffix: str, message: str
) -> None:
    inp = tmp_path / f"bad{suffix}"
    inp.write_text(content, encoding="utf-8")
    code, _, err = _run(app, "-m", "minilm", "-q", "q", "-i", str(inp))
    assert code == 2 and message in err, err


def test_tsv_header_sets_the_layout(app: typer.Typer, model_dir: Path, tmp_path: Path) -> None:
    inp = tmp_path / "c.tsv"
    inp.write_text("query\tid\ttext\tscore\nq1\ta\tone\t3\nq2\tb\ttwo\t1.5\nq1\tc\tthree\t2\n", encoding="utf-8")
    code, stdout, err = _run(app, "-m", str(model_dir), "-i", str(inp))
    assert code == 0, err
    lines = [json.loads(x) for x in stdout.splitlines()]
    assert sorted((x["query"], x["id"]) for x in lines) == [("q1", "a"), ("q1", "c"), ("q2", "b")]


def test_help_states_the_input_formats(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["rerank", "--help"], env={"COLUMNS": "80", "TERM": "dumb"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for key in ("text string, required", "id string or integer", "metadata object", "score number",
                "query string", "id<TAB>text", "query<TAB>id<TAB>text"):
        assert key in text, key
