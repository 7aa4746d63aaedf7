"""Files of the batch reranking job: rows in, atomic result parts out, the ids already done (needs pyarrow).

Input rows (JSON Lines or Parquet)::

    {"query_id": "q1", "query": "...", "candidates": [{"id": "d1", "text": "...", "score": 12.3, ...}, ...]}

Candidate fields other than ``id``, ``text`` and ``score`` become the candidate's metadata (``None`` values,
which Arrow adds for fields missing in some rows, are dropped). Ids may be strings or integers (made strings).

Output: the output directory holds ``part-<run>-<n>.jsonl`` or ``.parquet`` files, one per processed batch,
each row ``{"query_id", "results": [{"id", "score", "rank"}], "reranker"}`` (plus ``"query"`` when asked).
Every part is written under a hidden temporary name and renamed when complete, so the directory only ever
holds complete files: a crashed run loses at most the batches in flight, and :func:`done_query_ids` (the
``query_id`` values of all parts) tells a rerun what to skip. Rows that failed with ``on_error="record"`` go to
``_errors/`` and are *not* counted as done, so a rerun tries them again. Paths may be local or any URI that
:mod:`pyarrow.fs` understands (``s3://``, ``gs://``, ``hdfs://``), which a cluster needs for shared output.
"""

from __future__ import annotations

import io
import json
import math
import posixpath
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._optional import require
from ..errors import ConfigError, InvalidInputError
from ..types import Candidate, Query, RankedList

__all__ = [
    "ERRORS_DIR",
    "detect_format",
    "done_query_ids",
    "open_output",
    "output_fs",
    "read_results",
    "row_to_inputs",
    "write_part",
]

ERRORS_DIR = "_errors"
_JSON_EXT = (".jsonl", ".json", ".ndjson")
_PARQUET_EXT = (".parquet", ".pq")


def output_fs(uri: str) -> tuple[Any, str]:
    """The pyarrow filesystem and the path inside it for a local path or a URI."""
    return _fs(uri)


def _fs(uri: str) -> tuple[Any, str]:
    fs_mod = require("pyarrow.fs", "ray", purpose="batch reranking files")
    try:
        return fs_mod.FileSystem.from_uri(uri)  # type: ignore[no-any-return]
    except (ValueError, TypeError):
        import os

        return fs_mod.LocalFileSystem(), os.path.abspath(uri)


def detect_format(path: str, given: str | None = None) -> str:
    """``"jsonl"`` or ``"parquet"`` from ``given`` or from the file name(s) at ``path``."""
    if given is not None:
        if given not in ("jsonl", "parquet"):
            raise ConfigError(f"format must be 'jsonl' or 'parquet', got {given!r}")
        return given
    fs, root = _fs(path)
    fs_mod = require("pyarrow.fs", "ray")
    info = fs.get_file_info(root)
    if info.type == fs_mod.FileType.NotFound:
        raise ConfigError(f"input {path!r} does not exist")
    names = [info.path] if info.type == fs_mod.FileType.File else [
        f.path for f in fs.get_file_info(fs_mod.FileSelector(root, recursive=True)) if f.type == fs_mod.FileType.File
    ]
    kinds = {"jsonl" if n.endswith(_JSON_EXT) else "parquet" if n.endswith(_PARQUET_EXT) else None for n in names}
    kinds.discard(None)
    if len(kinds) != 1:
        raise ConfigError(
            f"cannot tell the format of {path!r} from its file names (found {sorted(k for k in kinds if k)}); "
            "pass input_format='jsonl' or 'parquet'"
        )
    return kinds.pop()  # type: ignore[return-value]


def open_output(output: str) -> tuple[Any, str]:
    """Create the output directory when needed and remove temporary files left by a crashed run."""
    fs, root = _fs(output)
    fs_mod = require("pyarrow.fs", "ray")
    fs.create_dir(root, recursive=True)
    for info in fs.get_file_info(fs_mod.FileSelector(root, recursive=True)):
        if info.type == fs_mod.FileType.File and posixpath.basename(info.path).startswith(".part-"):
            fs.delete_file(info.path)
    return fs, root


def _part_files(fs: Any, root: str) -> list[tuple[str, str]]:
    fs_mod = require("pyarrow.fs", "ray")
    info = fs.get_file_info(root)
    if info.type == fs_mod.FileType.NotFound:
        return []
    out = []
    for f in fs.get_file_info(fs_mod.FileSelector(root, recursive=False)):
        name = posixpath.basename(f.path)
        if f.type != fs_mod.FileType.File or not name.startswith("part-"):
            continue
        if name.endswith(".jsonl"):
            out.append((f.path, "jsonl"))
        elif name.endswith(".parquet"):
            out.append((f.path, "parquet"))
    return sorted(out)


def _read_part(fs: Any, path: str, kind: str, columns: Sequence[str] | None = None) -> list[dict[str, Any]]:
    if kind == "parquet":
        pq = require("pyarrow.parquet", "ray")
        with fs.open_input_file(path) as f:
            return pq.read_table(f, columns=list(columns) if columns else None).to_pylist()  # type: ignore[no-any-return]
    with fs.open_input_stream(path) as f:
        text = f.read().decode("utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if columns:
        rows = [{c: r.get(c) for c in columns} for r in rows]
    return rows


def done_query_ids(output: str) -> set[str]:
    """``query_id`` of every row in the complete result parts under ``output`` (empty when it does not exist)."""
    fs, root = _fs(output)
    done: set[str] = set()
    for path, kind in _part_files(fs, root):
        done.update(str(r["query_id"]) for r in _read_part(fs, path, kind, ["query_id"]))
    return done


def read_results(output: str) -> dict[str, list[dict[str, Any]]]:
    """All results under ``output``: ``query_id -> [{"id", "score", "rank"}, ...]`` (best first)."""
    fs, root = _fs(output)
    out: dict[str, list[dict[str, Any]]] = {}
    for path, kind in _part_files(fs, root):
        for row in _read_part(fs, path, kind):
            qid = str(row["query_id"])
            if qid in out:
                raise InvalidInputError(f"query_id {qid!r} appears twice in the results under {output!r}")
            out[qid] = list(row["results"])
    return out


def row_to_inputs(row: Mapping[str, Any]) -> tuple[str, Query, list[Candidate]]:
    """``(query_id, Query, candidates)`` of one input row; raises :class:`InvalidInputError` naming the row."""
    qid = row.get("query_id")
    if qid is None:
        raise InvalidInputError(f"row without query_id: {str(dict(row))[:200]}")
    qid = str(qid)
    text = row.get("query")
    if not isinstance(text, str):
        raise InvalidInputError(f"row {qid!r}: 'query' must be a string, got {type(text).__name__}")
    raw = row.get("candidates")
    if raw is None or isinstance(raw, (str, bytes)) or not isinstance(raw, Iterable):
        raise InvalidInputError(f"row {qid!r}: 'candidates' must be a list of objects")
    candidates = []
    for i, c in enumerate(raw):
        if not isinstance(c, Mapping):
            raise InvalidInputError(f"row {qid!r}: candidate {i} is not an object")
        cid = c.get("id")
        if cid is None:
            raise InvalidInputError(f"row {qid!r}: candidate {i} has no id")
        score = c.get("score")
        if score is not None and isinstance(score, float) and math.isnan(score):
            score = None
        metadata = {k: v for k, v in c.items() if k not in ("id", "text", "score") and v is not None}
        candidates.append(Candidate(id=str(cid), text=c.get("text"), score=score, metadata=metadata))
    return qid, Query(text=text, id=qid), candidates


def result_row(qid: str, ranked: RankedList, reranker: str, query: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"query_id": qid}
    if query is not None:
        row["query"] = query
    row["results"] = [{"id": r.id, "score": float(r.score), "rank": int(r.rank)} for r in ranked.results]
    row["reranker"] = reranker
    return row


def write_part(fs: Any, root: str, rows: Sequence[Mapping[str, Any]], fmt: str, run_id: str,
               subdir: str | None = None) -> str:
    """Write ``rows`` as one complete part file (temporary name, then rename); returns its final path."""
    folder = posixpath.join(root, subdir) if subdir else root
    if subdir:
        fs.create_dir(folder, recursive=True)
    ext = "parquet" if fmt == "parquet" else "jsonl"
    name = f"part-{run_id}-{uuid.uuid4().hex[:12]}.{ext}"
    tmp = posixpath.join(folder, f".{name}.tmp")
    final = posixpath.join(folder, name)
    if fmt == "parquet":
        pa = require("pyarrow", "ray")
        pq = require("pyarrow.parquet", "ray")
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([dict(r) for r in rows]), buffer)
        payload = buffer.getvalue()
    else:
        payload = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with fs.open_output_stream(tmp) as f:
        f.write(payload)
    fs.move(tmp, final)
    return final
