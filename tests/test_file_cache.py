"""Joining model parts once, atomically, with size and SHA-256 checks; the conversion cache folder helpers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rerank_plugins.errors import ModelNotFoundError
from rerank_plugins.file_cache import atomic_dir, cache_dir, fingerprint, join_parts


@pytest.fixture()
def parts(tmp_path: Path) -> list[Path]:
    out = []
    for i, data in enumerate([b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(data)
        out.append(p)
    return out


def test_join_in_order_and_record(parts: list[Path], tmp_path: Path) -> None:
    whole = b"".join(p.read_bytes() for p in parts)
    digest = hashlib.sha256(whole).hexdigest()
    target = join_parts(parts, tmp_path / "out" / "m.gguf", expected_size=len(whole), expected_sha256=digest)
    assert target.read_bytes() == whole
    record = json.loads((tmp_path / "out" / "m.gguf.json").read_text())
    assert record["sha256"] == digest and record["size"] == len(whole)
    assert [r["name"] for r in record["parts"]] == [p.name for p in parts]
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_second_call_reuses_and_a_changed_part_rejoins(parts: list[Path], tmp_path: Path) -> None:
    target = join_parts(parts, tmp_path / "m.gguf")
    stamp = target.stat().st_mtime_ns
    assert join_parts(parts, tmp_path / "m.gguf").stat().st_mtime_ns == stamp
    parts[1].write_bytes(b"B" * 60)
    again = join_parts(parts, tmp_path / "m.gguf")
    assert b"B" * 60 in again.read_bytes()


def test_wrong_hash_or_size_raises_and_leaves_nothing(parts: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="SHA-256"):
        join_parts(parts, tmp_path / "bad.gguf", expected_sha256="0" * 64)
    with pytest.raises(ModelNotFoundError, match="expected 5"):
        join_parts(parts, tmp_path / "bad.gguf", expected_size=5)
    assert not (tmp_path / "bad.gguf").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".bad")]
    with pytest.raises(ModelNotFoundError, match="missing"):
        join_parts([tmp_path / "nope.bin"], tmp_path / "x.gguf")


def test_atomic_dir_and_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "folder"
    with pytest.raises(RuntimeError), atomic_dir(final) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("boom")
    assert not final.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(final) as tmp:
        (tmp / "whole").write_text("x")
    assert (final / "whole").read_text() == "x"
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"1" * 10)
    b.write_bytes(b"1" * 10)
    assert fingerprint(a) == fingerprint(b)
    b.write_bytes(b"1" * 9 + b"2")
    assert fingerprint(a) != fingerprint(b)
    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path / "c"))
    assert cache_dir("x") == tmp_path / "c" / "x" and (tmp_path / "c" / "x").is_dir()
