"""``make demo`` with its output in a file draws no progress bars (issue 21 item 20).

Runs the real command in a child process, stdout and stderr to a file as ``make demo > demo.log 2>&1`` does, on a
tiny BEIR folder with a tiny cross-encoder (the demo's own data and MiniLM take minutes on a small machine).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BARS = re.compile(r"\r|it/s\]|q/s\]|\d+%\|")


def _beir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    docs = [("d1", "wing flutter in transonic flow"), ("d2", "heat conduction in composite slabs"),
            ("d3", "boundary layer suction on a flat plate"), ("d4", "jet noise of supersonic aircraft")]
    corpus = "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs)
    (folder / "corpus.jsonl").write_text(corpus)
    queries = [("q1", "wing flutter"), ("q2", "heat conduction slabs"), ("q3", "suction boundary layer")]
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries))
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    return folder


def _command() -> list[str]:
    script = Path(sys.executable).with_name("rerank-plugins")  # the console script `make demo` runs
    return [str(script)] if script.is_file() else [sys.executable, "-c", "from rerank_plugins.cli import main; main()"]


def test_make_demo_runs_the_plain_command() -> None:
    recipe = re.search(r"^demo:.*\n\t(.+)$", (REPO / "Makefile").read_text(), flags=re.M)
    assert recipe is not None and recipe.group(1).strip().endswith("/rerank-plugins demo")  # no --progress flag


@pytest.mark.parametrize("forced", [False, True])
def test_demo_draws_no_progress_bars_into_a_file(tmp_path: Path, forced: bool) -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    model = build_tiny_cross_encoder(tmp_path / "ce")
    data = _beir(tmp_path / "beir")
    log = tmp_path / "demo.log"
    args = ["demo", "--dataset", str(data), "--model", str(model), "--queries", "1", "--depth", "3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    env.pop("TQDM_DISABLE", None)
    with log.open("w") as out:
        done = subprocess.run([*_command(), *args, *(["--progress"] if forced else [])], stdout=out,
                              stderr=subprocess.STDOUT, env=env, timeout=600, check=False)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "nDCG@10 over all 3 judged queries" in text
    if forced:
        assert BARS.search(text), text  # the check can see bars: --progress still draws them on request
    else:
        assert not BARS.search(text), text
