"""The on-disk cache for converted and joined model files (pure Python, no torch).

* :func:`cache_dir` - ``$RERANK_PLUGINS_CACHE`` if set, else ``$XDG_CACHE_HOME/rerank_plugins``, else
  ``~/.cache/rerank_plugins``.
* :func:`fingerprint` - a cheap content key of a large file: its size plus a SHA-256 of its first and last
  4 MiB. It does not depend on the path or the modification time, so a reinstalled identical wheel reuses
  the cache, and any real change of the file (which changes its size or its header/tail) does not.
* :func:`join_parts` - concatenate chunk files in order into one file, once: written to a temporary file in
  the same folder and renamed into place (atomic), its size and SHA-256 checked against expected values
  when given and recorded in a ``.json`` sidecar; later calls only compare the sidecar with the parts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError

__all__ = ["atomic_dir", "cache_dir", "fingerprint", "join_parts", "sha256_file"]

_EDGE = 4 * 1024 * 1024


def cache_dir(*parts: str) -> Path:
    """The rerank-plugins cache folder (created), or a sub-folder of it."""
    root = os.environ.get("RERANK_PLUGINS_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "rerank_plugins"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike[str], chunk: int = 8 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: str | os.PathLike[str]) -> str:
    """``<size>-<sha256 of size, first and last 4 MiB>[:16]`` of a file."""
    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_EDGE))
        if size > _EDGE:
            fh.seek(max(_EDGE, size - _EDGE))
            h.update(fh.read(_EDGE))
    return f"{size}-{h.hexdigest()[:16]}"


class atomic_dir:
    """``with atomic_dir(final) as tmp:`` write into ``tmp``; on success it is renamed to ``final``.

    If ``final`` appeared meanwhile (another process finished first), the temporary folder is discarded.
    On an exception the temporary folder is removed and ``final`` is left untouched.
    """

    def __init__(self, final: str | os.PathLike[str]) -> None:
        self.final = Path(final)
        self.tmp: Path | None = None

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", dir=self.final.parent))
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self.tmp is not None
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        os.chmod(self.tmp, 0o755)  # mkdtemp makes it private; a cache folder is readable like any other
        try:
            os.replace(self.tmp, self.final)
        except OSError:
            if not self.final.exists():
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)


def _part_signature(parts: Sequence[Path]) -> list[dict[str, Any]]:
    return [{"name": p.name, "size": p.stat().st_size, "mtime_ns": p.stat().st_mtime_ns} for p in parts]


def join_parts(
    parts: Sequence[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """Join ``parts`` in order into ``target`` once and return ``target``.

    The sidecar ``<target>.json`` records the parts (name, size, mtime), the size and the SHA-256 of the
    result. When it matches the current parts and ``target`` has the recorded size, the file is reused
    without re-reading it. A size or hash that differs from the expected values raises
    :class:`ModelNotFoundError` (the packages carrying the parts are damaged or of another version).
    """
    paths = [Path(p) for p in parts]
    for p in paths:
        if not p.is_file():
            raise ModelNotFoundError(f"model part {p} is missing")
    target = Path(target)
    sidecar = target.with_name(target.name + ".json")
    signature = _part_signature(paths)
    total = sum(s["size"] for s in signature)
    if expected_size is not None and total != expected_size:
        raise ModelNotFoundError(
            f"the {len(paths)} parts of {target.name} hold {total} bytes, expected {expected_size}: "
            "reinstall the packages that carry them"
        )
    if target.is_file() and sidecar.is_file():
        try:
            record = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            record = {}
        if (
            record.get("parts") == signature
            and record.get("size") == target.stat().st_size == total
            and (expected_sha256 is None or record.get("sha256") == expected_sha256)
        ):
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for p in paths:
                with open(p, "rb") as src:
                    while block := src.read(8 * 1024 * 1024):
                        h.update(block)
                        out.write(block)
        digest = h.hexdigest()
        size = os.path.getsize(tmp_name)
        if size != total:
            raise ModelNotFoundError(f"joined {size} bytes into {target.name}, expected {total}")
        if expected_sha256 is not None and digest != expected_sha256:
            raise ModelNotFoundError(
                f"{target.name} joined from {len(paths)} parts has SHA-256 {digest}, expected {expected_sha256}: "
                "reinstall the packages that carry the parts"
            )
        os.replace(tmp_name, target)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    record = {"parts": signature, "size": size, "sha256": digest}
    fd, tmp_side = tempfile.mkstemp(prefix=f".{sidecar.name}.", dir=target.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh, indent=1)
    os.replace(tmp_side, sidecar)
    return target
