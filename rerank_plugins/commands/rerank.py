"""``rerank-plugins rerank``: rerank candidates read from JSONL or TSV and write ranked JSONL.

Input formats (chosen by extension, ``-`` reads standard input and sniffs the format): see :data:`INPUT_HELP`,
which ``rerank-plugins rerank --help`` prints. The whole input is read and checked (keys, types, columns,
duplicate ids, at least one candidate) before any model is loaded.

Output: one JSON object per result, best first per query: ``id``, ``score``, ``rank``, ``original_position``,
``text``, ``metadata`` (plus ``query`` when the input held several queries).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from ..errors import InvalidInputError, MissingDependencyError, ModelNotFoundError, RerankError
from ._eval_common import fail, offline_env, parse_options

__all__ = ["read_candidates", "register", "rerank_command"]

_JSONL = {".jsonl", ".ndjson", ".json"}
_TSV = {".tsv", ".txt"}
_KEYS = {"id", "text", "metadata", "score", "query"}
_TSV_COLUMNS = {"query", "id", "text", "score"}

#: The input formats, as ``rerank --help`` states them (click keeps a paragraph that starts with ``\\b`` as is).
INPUT_HELP = """\b
Input (--input; chosen by extension, - reads stdin and sniffs JSONL or TSV):
JSONL (.jsonl .ndjson .json): one object per line, keys
  text      string, required
  id        string or integer (default: position within its query)
  metadata  object, copied to the output
  score     number, the first-stage score
  query     string; on every line when --query is not given
  (any other key is an error)
TSV (.tsv .txt): tab-separated, no quoting, one candidate per line:
  id<TAB>text                     two columns, the default layout
  a header line naming the columns (query, id, text, score; text
  required) sets another layout, e.g. query<TAB>id<TAB>text
A line with another number of columns, duplicate ids within a query
or an input with no candidate is an error (exit 2) before any model
is loaded."""


def _bad_input(message: str) -> typer.BadParameter:
    return typer.BadParameter(message, param_hint="'--input'")


def _lines(handle: TextIO) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(handle, 1):
        if line.strip():
            yield number, line.rstrip("\n").rstrip("\r")


def _read_jsonl(handle: TextIO, source: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in _lines(handle):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _bad_input(f"{source} line {number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise _bad_input(f"{source} line {number}: expected a JSON object, got {type(obj).__name__}")
        unknown = set(obj) - _KEYS
        if unknown:
            raise _bad_input(f"{source} line {number}: unknown keys {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        if not isinstance(obj.get("text"), str):
            raise _bad_input(f"{source} line {number}: 'text' must be a string")
        if "id" in obj and (isinstance(obj["id"], bool) or not isinstance(obj["id"], (str, int))):
            raise _bad_input(f"{source} line {number}: 'id' must be a string or an integer")
        if "metadata" in obj and not isinstance(obj["metadata"], dict):
            raise _bad_input(f"{source} line {number}: 'metadata' must be an object")
        if "score" in obj and (isinstance(obj["score"], bool) or not isinstance(obj["score"], (int, float))):
            raise _bad_input(f"{source} line {number}: 'score' must be a number")
        if "query" in obj and (not isinstance(obj["query"], str) or not obj["query"].strip()):
            raise _bad_input(f"{source} line {number}: 'query' must be a non-empty string")
        obj["_line"] = number
        rows.append(obj)
    return rows


def _tsv_header(cells: list[str]) -> list[str] | None:
    names = [c.strip().lower() for c in cells]
    if "text" in names and set(names) <= _TSV_COLUMNS and len(set(names)) == len(names):
        return names
    return None


def _read_tsv(handle: TextIO, source: str) -> list[dict[str, Any]]:
    rows = []
    columns = ["id", "text"]
    first = True
    for number, line in _lines(handle):
        cells = line.split("\t")
        if first:  # only the first non-empty line may be a header
            first = False
            header = _tsv_header(cells)
            if header is not None:
                columns = header
                continue
        if len(cells) != len(columns):
            shown = " | ".join(repr(c[:30]) for c in cells[:4]) + (" | ..." if len(cells) > 4 else "")
            layout = "<TAB>".join(columns)
            hint = (
                "; a first line naming the columns (e.g. query<TAB>id<TAB>text) sets another layout, "
                "and a tab inside a text needs JSONL"
                if columns == ["id", "text"]
                else ""
            )
            raise _bad_input(
                f"{source} line {number}: read {len(cells)} tab-separated column(s) ({shown}), "
                f"expected {len(columns)}: {layout}{hint}"
            )
        row: dict[str, Any] = {"_line": number}
        for name, cell in zip(columns, cells):
            if name == "score":
                try:
                    row["score"] = float(cell)
                except ValueError as exc:
                    raise _bad_input(f"{source} line {number}: score {cell!r} is not a number") from exc
            elif name == "text":
                row["text"] = cell
            else:
                if not cell.strip():
                    raise _bad_input(f"{source} line {number}: empty {name}")
                row[name] = cell.strip()
        rows.append(row)
    return rows


def read_candidates(path: str) -> list[dict[str, Any]]:
    """Read candidate rows from a JSONL or TSV file (``-`` for standard input); raises ``typer.BadParameter``.

    Each row carries its source line number under ``"_line"`` (for error messages; not part of the output).
    """
    if path == "-":
        data = sys.stdin.read()
        first = data.lstrip()[:1]
        from io import StringIO

        rows = _read_jsonl(StringIO(data), "<stdin>") if first == "{" else _read_tsv(StringIO(data), "<stdin>")
        return _not_empty(rows, "<stdin>", data)
    file = Path(path).expanduser()
    if not file.is_file():
        raise _bad_input(f"{path} does not exist or is not a file")
    suffix = file.suffix.lower()
    if suffix not in _JSONL | _TSV:
        raise _bad_input(f"{path}: unknown format {suffix or '(no extension)'}; use .jsonl or .tsv")
    try:
        with file.open(encoding="utf-8") as handle:
            rows = _read_jsonl(handle, path) if suffix in _JSONL else _read_tsv(handle, path)
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _bad_input(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return _not_empty(rows, path, text)


def _not_empty(rows: list[dict[str, Any]], source: str, text: str) -> list[dict[str, Any]]:
    if not rows:
        lines = text.splitlines()
        what = "an empty file" if not text else f"{len(lines)} line(s), none with a candidate"
        raise _bad_input(f"{source}: no candidates to rerank (read {what}); see rerank --help for the formats")
    return rows


def _group(rows: list[dict[str, Any]], query: str | None) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """Split rows into (queries, candidate lists); ids default to the position within their query."""
    if query is not None:
        if any("query" in r for r in rows):
            raise _bad_input("the input has per-line 'query' fields and --query was also given; use one of them")
        groups = {query: rows}
    else:
        missing = [i for i, r in enumerate(rows) if "query" not in r]
        if rows and missing:
            raise typer.BadParameter(
                f"give --query, or a 'query' on every JSONL line ({len(missing)} lines have none)",
                param_hint="'--query'",
            )
        groups = {}
        for r in rows:
            groups.setdefault(r["query"], []).append(r)
    queries, lists = [], []
    for q, members in groups.items():
        cands = []
        lines: dict[str, int] = {}
        for position, r in enumerate(members):
            cand = {k: v for k, v in r.items() if k not in ("query", "_line")}
            cand["id"] = str(cand.get("id", position))
            if cand["id"] in lines:
                raise _bad_input(
                    f"duplicate id {cand['id']!r} for query {q!r} (lines {lines[cand['id']]} and {r.get('_line')}); "
                    "ids must be unique within a query"
                )
            lines[cand["id"]] = r.get("_line", position + 1)
            cands.append(cand)
        queries.append(q)
        lists.append(cands)
    return queries, lists


def rerank_command(
    model: Annotated[str, typer.Option("--model", "-m", help="bundled name (minilm), local path or hub id")],
    input_path: Annotated[str, typer.Option("--input", "-i", help="candidates: .jsonl or .tsv file, or - for stdin")],
    query: Annotated[str | None, typer.Option("--query", "-q", help="the query (omit if lines carry one)")] = None,
    kind: Annotated[str | None, typer.Option(help="strategy kind (cross-encoder, embedding, ...)")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=0, help="keep the best K per query")] = None,
    threshold: Annotated[float | None, typer.Option(help="keep scores >= this value")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="write JSONL here (default stdout)")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="reranker option key=value (JSON values), repeatable")
    ] = None,
) -> None:
    """Rerank candidates for a query and print them as ranked JSONL, best first."""  # + INPUT_HELP, below
    if query is not None and not query.strip():
        raise typer.BadParameter("the query is empty", param_hint="'--query'")
    rows = read_candidates(input_path)
    queries, lists = _group(rows, query)
    options = parse_options(option)
    offline_env(quiet=True)
    from ..models import load_reranker

    try:
        reranker = load_reranker(model, kind=kind, **options)
    except ModelNotFoundError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--model'") from exc
    except MissingDependencyError as exc:
        raise fail(str(exc), code=1) from exc
    except (RerankError, TypeError) as exc:
        raise fail(f"cannot build the reranker {model!r}: {exc}") from exc
    try:
        if len(queries) == 1:
            results = [reranker.rerank(queries[0], lists[0], top_k=top_k, score_threshold=threshold)]
        else:
            results = reranker.rerank_batch(queries, lists, top_k=top_k, score_threshold=threshold)
    except InvalidInputError as exc:
        raise _bad_input(str(exc)) from exc
    finally:
        reranker.close()
    many = len(queries) > 1
    handle: TextIO = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        for q, ranked in zip(queries, results):
            for r in ranked.results:
                line: dict[str, Any] = {"query": q} if many else {}
                line.update(
                    id=r.id,
                    score=r.score,
                    rank=r.rank,
                    original_position=r.original_position,
                    text=r.text,
                    metadata=dict(r.metadata),
                )
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        if output is not None:
            handle.close()
    if output is not None:
        total = sum(len(r.results) for r in results)
        typer.echo(f"wrote {total} results for {len(queries)} quer{'y' if len(queries) == 1 else 'ies'} to {output}",
                   err=True)


def register(app: typer.Typer) -> None:
    app.command("rerank", help=f"{rerank_command.__doc__}\n\n{INPUT_HELP}")(rerank_command)
