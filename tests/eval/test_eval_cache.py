"""Issue 22: first stages and document embeddings cached on disk; first-stage settings on the command line;
``rrf`` as the name; the kinds in ``--help``; content hash and code commit in the provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from rerank_plugins.eval import first_stage
from rerank_plugins.eval.cache import RunCache
from rerank_plugins.eval.datasets import load_beir
from rerank_plugins.eval.first_stage import FirstStageSettings, first_stage_run

runner = CliRunner()


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, int]:
    """Counts of BM25 and dense retrievals and of MiniLM document/query embedding calls; the cache in tmp_path."""
    pytest.importorskip("faiss")
    from rerank_plugins.rankers.embedding import EmbeddingReranker

    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path / "cache"))
    counts = {"bm25": 0, "dense": 0, "embed_documents": 0, "embed_queries": 0}

    def wrap(owner: Any, attr: str, name: str) -> None:
        inner = getattr(owner, attr)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return inner(*args, **kwargs)

        monkeypatch.setattr(owner, attr, wrapper)

    wrap(first_stage, "bm25_run", "bm25")
    wrap(first_stage, "dense_run", "dense")
    wrap(EmbeddingReranker, "embed_documents", "embed_documents")
    wrap(EmbeddingReranker, "embed_queries", "embed_queries")
    return counts


def _eval(app: typer.Typer, data: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["eval", "--dataset", str(data), "--output-dir", str(out), "--no-progress", "--format", "json", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_second_identical_eval_does_not_recompute_the_dense_first_stage(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, counted: dict[str, int]
) -> None:
    data = clean_beir(tmp_path / "beir")
    first = _eval(app, data, tmp_path / "o1")  # default baselines: bm25, dense, rrf
    assert [s["name"] for s in first["systems"]] == ["bm25", "dense", "rrf"]
    assert counted == {"bm25": 1, "dense": 1, "embed_documents": 1, "embed_queries": 1}
    second = _eval(app, data, tmp_path / "o2")
    assert counted == {"bm25": 1, "dense": 1, "embed_documents": 1, "embed_queries": 1}  # nothing recomputed
    assert [s["metrics"] for s in second["systems"]] == [s["metrics"] for s in first["systems"]]
    assert all(s["details"]["read_from_cache"] for s in second["systems"])
    assert (tmp_path / "o1" / "beir.dense.trec").read_text() == (tmp_path / "o2" / "beir.dense.trec").read_text()
    table = runner.invoke(app, ["eval", "--dataset", str(data), "--output-dir", str(tmp_path / "m"), "--no-progress"])
    assert "| dense |" in table.stdout and "(cache)" in table.stdout  # the time column says it was read
    _eval(app, data, tmp_path / "o3", "--no-cache")
    assert counted["dense"] == 2 and counted["bm25"] == 2
    # other queries, same corpus: the dense run is recomputed, the document embeddings are read back
    _eval(app, data, tmp_path / "o4", "--queries", "2")
    assert counted["dense"] == 3 and counted["embed_documents"] == 2 and counted["embed_queries"] == 3
    # a different BM25 setting is another entry; the same one again is a hit
    _eval(app, data, tmp_path / "o5", "--baseline", "bm25", "--bm25-k1", "0.9")
    _eval(app, data, tmp_path / "o6", "--baseline", "bm25", "--bm25-k1", "0.9")
    assert counted["bm25"] == 4  # o4 (new queries) and o5 (new k1); o6 read from the cache


def test_changed_corpus_is_a_cache_miss(clean_beir: Any, tmp_path: Path) -> None:
    cache = RunCache(tmp_path / "c")
    a = load_beir(clean_beir(tmp_path / "a"))
    b = load_beir(clean_beir(tmp_path / "b", empty_doc=False))
    assert a.content_hash() == b.content_hash()  # the path does not matter
    first_stage_run(a, "bm25", 3, disk_cache=cache)
    first_stage_run(b, "bm25", 3, disk_cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    (tmp_path / "b" / "corpus.jsonl").write_text(
        (tmp_path / "b" / "corpus.jsonl").read_text().replace("wing flutter", "wing fluttering")
    )
    changed = load_beir(tmp_path / "b")
    assert changed.content_hash("corpus") != a.content_hash("corpus")
    first_stage_run(changed, "bm25", 3, disk_cache=cache)
    assert (cache.hits, cache.misses) == (1, 2)


def test_bm25_settings_reach_bm25(clean_beir: Any, tmp_path: Path) -> None:
    settings = FirstStageSettings(stemmer="english", stopwords="english")
    stem = settings.bm25_options()["stemmer"]
    assert stem("fluttering") == "flutter"
    data = load_beir(clean_beir(tmp_path / "beir"))
    plain = first_stage_run(data, "bm25", 4)
    other = first_stage_run(data, "bm25", 4, settings=FirstStageSettings(k1=0.1, b=0.0))
    assert plain != other  # k1 and b change the scores
    with pytest.raises(Exception, match="stopwords"):
        FirstStageSettings(stopwords="klingon")


def test_rrf_name_alias_help_and_provenance(
    clean_beir: Any, app: typer.Typer, tmp_path: Path, counted: dict[str, int]
) -> None:
    data = clean_beir(tmp_path / "beir")
    args = ["eval", "--dataset", str(data), "--output-dir", str(tmp_path / "o"), "--no-progress"]
    result = runner.invoke(app, [*args, "--baseline", "bm25", "--first-stage", "fusion", "--rrf-k", "10"])
    assert result.exit_code == 0, result.output
    assert "'fusion' is now called 'rrf'" in result.output and "| rrf |" in result.stdout
    saved = json.loads((tmp_path / "o" / "beir.eval.json").read_text())
    prov = saved["provenance"]
    assert prov["first_stage_settings"]["rrf_k"] == 10
    assert prov["dataset"]["content_sha256"] == load_beir(data).content_hash()
    assert Path(prov["dataset"]["path"]).is_absolute()
    code = prov["code"]
    assert code.get("git_commit") or code.get("package_version")
    if (Path(first_stage.__file__).parents[2] / ".git").exists():
        assert len(code["git_commit"]) == 40
    helptext = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"}).stdout
    assert "prf-text" in helptext and "cross-encoder" in helptext and "--kind embedding" in helptext
    assert "--bm25-k1" in helptext and "--rrf-k" in helptext and "--no-cache" in helptext
