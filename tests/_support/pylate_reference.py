"""Run PyLate itself (``pylate.models.ColBERT`` + ``pylate.rank.rerank``) on a model folder, in a child process.

PyLate 1.6.0 pins ``sentence-transformers==5.3.0`` and ``transformers<=5.3.0``, older than the project's stack
(PyLate 1.0.0, the last release with loose pins, no longer imports under sentence-transformers 6). So the
reference lives in its own ``--target`` folder (``.venv/pylate-ref``, installed by the Makefile's ``.full``
target with ``--no-deps``: pylate 1.6.0, sentence-transformers 5.3.0, transformers 5.3.0, tokenizers 0.22.2,
huggingface-hub 1.33.0, ujson 5.12.0) that is put first on ``PYTHONPATH`` of a child interpreter; torch, numpy and
the rest come from the project's environment. :func:`run_pylate` returns what PyLate produced, as JSON-able data.

A request with ``"batch": [{...}, ...]`` runs each entry (merged over the request) in the same child and returns a
list (one interpreter start for several model folders).

Run as a script (``python tests/_support/pylate_reference.py REQUEST.json``) it reads a request
``{"model": path, "queries": [...], "documents": [[...], ...], "batch_size": 32, "repeat": 1, "model_kwargs": {}}``
and prints ``{"query_ids", "document_ids", "rankings", "seconds"}``; ``seconds`` is the best of ``repeat`` timed
encode+rerank runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["PYLATE_VERSION", "PyLateWorker", "pylate_overlay", "run_pylate"]

PYLATE_VERSION = "1.6.0"


def pylate_overlay() -> Path | None:
    """The folder holding PyLate and its pinned stack (``$RERANK_PLUGINS_PYLATE_REF`` or ``<venv>/pylate-ref``)."""
    env = os.environ.get("RERANK_PLUGINS_PYLATE_REF")
    candidates = [Path(env)] if env else []
    candidates.append(Path(sys.prefix) / "pylate-ref")
    for folder in candidates:
        if (folder / "pylate" / "__init__.py").is_file():
            return folder
    return None


def _child_env() -> dict[str, str]:
    overlay = pylate_overlay()
    if overlay is None:
        raise FileNotFoundError("PyLate reference folder not found (make .venv/.full installs .venv/pylate-ref)")
    path = os.pathsep.join([str(overlay), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


class PyLateWorker:
    """A PyLate child process kept alive between timed runs (benchmarks interleave it with ours, round by round).

    ``PyLateWorker(request)`` loads the model once; :meth:`run` encodes and reranks the request's queries and
    documents once more and returns ``{"seconds", "cpu_seconds", "rankings"}`` (wall and process CPU time of that
    run only).
    """

    def __init__(self, request: dict[str, Any]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_child_env(),
        )
        self.info = self._call(request)

    def _call(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(message) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            err = self._proc.stderr.read() if self._proc.stderr is not None else ""
            raise RuntimeError(f"PyLate worker died:\n{err[-4000:]}")
        return json.loads(line)  # type: ignore[no-any-return]

    def run(self) -> dict[str, Any]:
        return self._call({"cmd": "run"})

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=60)


def run_pylate(request: dict[str, Any], *, timeout: float = 600) -> dict[str, Any]:
    """Run the request (see the module docstring) in a child interpreter with the PyLate overlay first on the path."""
    env = _child_env()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], input=json.dumps(request),
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"PyLate reference failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# Both child programs rank with PyLate's own pipeline: encode the queries and all documents, regroup the document
# embeddings per query, rank.rerank. Defined after ``from pylate import models, rank`` in each.
_PYLATE_RERANK = r"""
def pylate_rerank(model, queries, documents, batch_size):
    q = model.encode(queries, is_query=True, batch_size=batch_size, show_progress_bar=False)
    flat = [d for docs in documents for d in docs]
    d = model.encode(flat, is_query=False, batch_size=batch_size, show_progress_bar=False)
    grouped, start = [], 0
    for docs in documents:
        grouped.append(d[start:start + len(docs)])
        start += len(docs)
    doc_ids = [list(range(len(docs))) for docs in documents]
    return rank.rerank(documents_ids=doc_ids, queries_embeddings=q, documents_embeddings=grouped), q, d
"""

# The child: only PyLate's public API (models.ColBERT, ColBERT.tokenize/encode, rank.rerank).
_CHILD = r"""
import json, logging, sys, time, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import torch
req = json.loads(sys.stdin.read())
threads = req.get("threads")
if threads:
    torch.set_num_threads(int(threads))
from pylate import models, rank
import pylate
""" + _PYLATE_RERANK + r"""
def handle(req):
    assert pylate.__version__ == req.get("expect_version", pylate.__version__), pylate.__version__
    model = models.ColBERT(req["model"], device="cpu", **req.get("model_kwargs", {}))
    queries, documents = req["queries"], req["documents"]
    batch_size = int(req.get("batch_size", 32))

    def ids(texts, is_query):
        out = []
        for t in texts:
            enc = model.tokenize([t], is_query=is_query)
            row = enc["input_ids"][0].tolist()
            mask = enc["attention_mask"][0].tolist()
            out.append({"input_ids": row, "attention_mask": mask})
        return out

    def once():
        return pylate_rerank(model, queries, documents, batch_size)

    best = None
    for _ in range(int(req.get("repeat", 1))):
        t0 = time.perf_counter()
        rankings, q_emb, d_emb = once()
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    result = {
        "version": pylate.__version__,
        "seconds": best,
        "rankings": [[{"id": int(r["id"]), "score": float(r["score"])} for r in ranked] for ranked in rankings],
        "query_tokens": [int(x.shape[0]) for x in q_emb],
        "document_tokens": [int(x.shape[0]) for x in d_emb],
    }
    if req.get("with_ids", True):
        result["query_ids"] = ids(queries, True)
        result["document_ids"] = ids([d for docs in documents for d in docs], False)
    if req.get("single_document_scores", False):
        single = []
        for qi, docs in enumerate(documents):
            qe = model.encode([queries[qi]], is_query=True, show_progress_bar=False)
            row = []
            for doc in docs:
                de = model.encode([doc], is_query=False, show_progress_bar=False)
                row.append(float(rank.rerank(documents_ids=[[0]], queries_embeddings=qe,
                                             documents_embeddings=[de])[0][0]["score"]))
            single.append(row)
        result["single_document_scores"] = single
    return result

if "batch" in req:
    print(json.dumps([handle(dict(req, **sub)) for sub in req["batch"]]))
else:
    print(json.dumps(handle(req)))
"""


_WORKER = r"""
import json, logging, sys, time, warnings
warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)
import torch
req = json.loads(sys.stdin.readline())
if req.get("threads"):
    torch.set_num_threads(int(req["threads"]))
from pylate import models, rank
import pylate
""" + _PYLATE_RERANK + r"""
model = models.ColBERT(req["model"], device="cpu", **req.get("model_kwargs", {}))
queries, documents = req["queries"], req["documents"]
batch_size = int(req.get("batch_size", 32))
sys.stdout.write(json.dumps({"version": pylate.__version__}) + "\n")
sys.stdout.flush()
for line in sys.stdin:
    t0, c0 = time.perf_counter(), time.process_time()
    ranked, _, _ = pylate_rerank(model, queries, documents, batch_size)
    out = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
           "rankings": [[{"id": int(r["id"]), "score": float(r["score"])} for r in x] for x in ranked]}
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
"""


def _main(argv: list[str]) -> int:  # pragma: no cover - a thin command-line wrapper
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    out = run_pylate(request)
    out["wall"] = time.perf_counter() - t0
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main(sys.argv[1:]))
