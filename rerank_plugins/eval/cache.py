"""An on-disk cache of first-stage runs and document embeddings, so a second evaluation does not recompute them.

Entries live under :func:`rerank_plugins.file_cache.cache_dir` ``("eval")`` (``$RERANK_PLUGINS_CACHE/eval``,
else ``~/.cache/rerank_plugins/eval``), one file per key: the SHA-256 of the key's canonical JSON. A key holds
everything that changes the result: the content hash of the corpus (and of the queries, for runs), the stage,
its depth and settings (BM25 k1/b/stemmer/stopwords, the dense model's weight-file fingerprints, RRF k), and
:data:`FORMAT`. Runs are JSON (floats written with ``repr``, so they read back bit for bit), embeddings ``.npy``;
both are written to a temporary file and renamed (a crash or a concurrent run never leaves half a file), and
each file stores its key, which is compared on read. ``hits`` and ``misses`` count what happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._optional import require
from ..file_cache import cache_dir
from .trec import Run

__all__ = ["FORMAT", "RunCache"]

#: bump when the meaning of a cached entry changes (tokenizer, tie-breaking...): old entries are then ignored
FORMAT = 1

logger = logging.getLogger(__name__)


def _digest(key: Mapping[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _atomic_write(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class RunCache:
    """First-stage runs and document embeddings on disk, keyed by content and settings (see the module doc)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else cache_dir("eval")
        self.hits = 0
        self.misses = 0

    def run(self, key: Mapping[str, Any], compute: Callable[[], Run]) -> Run:
        """The cached run for ``key``, or ``compute()`` stored under it."""
        path = self.root / "runs" / f"{_digest(key)}.json"
        stored = self._read_json(path, key)
        if stored is not None:
            self.hits += 1
            logger.info("first stage %s read from %s", key.get("stage"), path)
            return {q: [(str(d), float(s)) for d, s in ranked] for q, ranked in stored.items()}
        self.misses += 1
        run = compute()
        record = {"key": {"format": FORMAT, **key}, "run": {q: [[d, s] for d, s in r] for q, r in run.items()}}
        _atomic_write(path, lambda fh: json.dump(record, fh), "w")
        return run

    def embeddings(self, key: Mapping[str, Any], compute: Callable[[], Any]) -> Any:
        """The cached float32 matrix for ``key``, or ``compute()`` stored under it."""
        np = require("numpy", "eval")
        digest = _digest(key)
        path, sidecar = self.root / "embeddings" / f"{digest}.npy", self.root / "embeddings" / f"{digest}.json"
        if self._read_json(sidecar, key, field="key") is not None and path.is_file():
            try:
                matrix = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                logger.warning("ignoring unreadable cached embeddings %s: %s", path, exc)
            else:
                self.hits += 1
                return matrix
        self.misses += 1
        matrix = np.ascontiguousarray(compute(), dtype=np.float32)
        _atomic_write(path, lambda fh: np.save(fh, matrix, allow_pickle=False), "wb")
        _atomic_write(sidecar, lambda fh: json.dump({"key": {"format": FORMAT, **key}}, fh, default=str), "w")
        return matrix

    @staticmethod
    def _read_json(path: Path, key: Mapping[str, Any], field: str = "run") -> Any:
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        expected = json.loads(json.dumps({"format": FORMAT, **key}, default=str))
        if record.get("key") != expected:  # a digest collision or an entry of another format: recompute
            return None
        return record.get(field)
