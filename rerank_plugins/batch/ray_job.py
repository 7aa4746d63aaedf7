"""Batch reranking with Ray Data: read rows, skip finished ones, rerank on an actor pool, write result parts.

``rerank_dataset(input, output, reranker="minilm", actors=2)``:

1. read the JSON Lines or Parquet rows with ``ray.data.read_json`` / ``read_parquet`` (file or folder);
2. drop the rows whose ``query_id`` is already in a complete result part under ``output`` (resume);
3. ``map_batches`` with a class-based UDF on ``ActorPoolStrategy(size=actors)``: each actor builds the
   reranker once (``load_reranker(name, kind, **options)`` or a picklable zero-argument factory), reserves
   ``num_cpus`` / ``num_gpus``, and for each batch of ``batch_size`` rows calls ``rerank_batch`` once and writes
   one result part atomically (see :mod:`.io`);
4. return a :class:`BatchReport` built from the per-batch summaries.

Ray runs locally by default (``ray.init`` with ``num_cpus`` when given); pass ``address="auto"`` or
``"ray://host:10001"`` for a cluster (then input and output must be paths every node sees: a shared mount or
object storage). A Ray instance that is already running is used as is and left running; one started here is
shut down at the end. Do not point two jobs at the same output directory at once.

Failed rows: a row that cannot be parsed or reranked never stops the other rows of its batch. Every good row
is written; the failed ones go to ``_errors/`` (query id and error). With ``on_error="record"`` the run then
returns normally (``BatchReport.failed`` counts them); with ``on_error="raise"`` (the default) it raises
:class:`BatchRowsFailed` naming them, after the good rows were written, so a rerun after fixing the input only
processes the failed rows.

Quiet by default: a Ray instance started here does not print its INFO lines nor the notice that token
authentication is on (authentication itself stays on), and the actors are not restarted after a crash
(``max_restarts=0``; a rerun resumes from the complete parts instead), which is also what keeps Ray's core
worker from printing, on every run, that restarting actors whose arguments live in the object store may fail.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._optional import require
from ..base import Reranker
from ..errors import BackendError, ConfigError, InvalidInputError
from ..validation import check_choice, check_int, check_number
from .io import (
    ERRORS_DIR,
    detect_format,
    done_query_ids,
    open_output,
    output_fs,
    result_row,
    row_to_inputs,
    write_part,
)

__all__ = ["BatchReport", "BatchRowsFailed", "RerankActor", "rerank_dataset"]

#: failed rows whose messages come back to the driver per batch (all are in ``_errors/``)
_MESSAGES_PER_BATCH = 5

RerankerSpec = str | Callable[[], Reranker]


@dataclass(frozen=True)
class BatchReport:
    """What one run did."""

    #: rows reranked and written in this run
    reranked: int
    #: query ids already complete in the output before this run (skipped)
    already_done: int
    #: rows that failed and were recorded under ``_errors/`` (``on_error="record"``)
    failed: int
    #: result part files written
    files: int
    seconds: float
    output: str

    @property
    def rows_per_second(self) -> float:
        return self.reranked / self.seconds if self.seconds > 0 else 0.0


class BatchRowsFailed(InvalidInputError):
    """Some rows failed with ``on_error="raise"``; every other row was written. ``report`` is the run's
    :class:`BatchReport` and ``errors`` the first failures as ``{"query_id", "error"}``."""

    def __init__(self, report: BatchReport, errors: list[dict[str, str]]) -> None:
        self.report = report
        self.errors = errors
        first = "; ".join(f"{e['query_id']!r}: {e['error']}" for e in errors[:3])
        more = f" (and {report.failed - 3} more)" if report.failed > 3 else ""
        super().__init__(
            f"{report.failed} row(s) failed: {first}{more}. The {report.reranked} other row(s) were written to "
            f"{report.output} and every failure to {report.output}/{ERRORS_DIR}/; fix those rows and rerun (finished "
            "rows are skipped), or pass on_error='record' to go on without them"
        )


def _build(reranker: RerankerSpec, kind: str | None, options: Mapping[str, Any] | None) -> Reranker:
    if isinstance(reranker, str):
        from ..models import build_reranker

        return build_reranker(reranker, kind, options, what="reranker")
    if callable(reranker):
        if kind is not None or options:
            raise ConfigError("kind and options apply only when the reranker is given by name")
        built = reranker()
    else:
        raise ConfigError(f"reranker must be a name or a zero-argument factory, got {type(reranker).__name__}")
    if not isinstance(built, Reranker):
        raise ConfigError(f"the reranker factory returned {type(built).__name__}, not a Reranker")
    return built


class RerankActor:
    """The class-based UDF: one reranker per actor, one ``rerank_batch`` and one result part per batch."""

    def __init__(
        self,
        reranker: RerankerSpec,
        kind: str | None,
        options: Mapping[str, Any] | None,
        output: str,
        output_format: str,
        run_id: str,
        top_k: int | None,
        keep_query: bool,
        on_error: str,
        done: list[str] | None = None,
    ) -> None:
        self.reranker = _build(reranker, kind, options)
        self.done = list(done or ())
        self.fs, self.root = output_fs(output)
        self.output_format = output_format
        self.run_id = run_id
        self.top_k = top_k
        self.keep_query = keep_query
        self.on_error = on_error

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        # the finished rows are dropped here, in the one (actor) stage: a separate task stage would not fuse
        # with it and could wait forever for a CPU that the actors hold
        rows = _skip_done(batch, self.done).to_pylist()
        parsed, failures = [], []
        # A failing row never takes the good rows of its batch down (whatever on_error says): they are written,
        # the failures go to _errors/ and back to the driver, which raises for on_error="raise".
        for row in rows:
            try:
                parsed.append(row_to_inputs(row))
            except Exception as exc:
                failures.append({"query_id": str(row.get("query_id")), "error": f"{type(exc).__name__}: {exc}"})
        results = []
        if parsed:
            try:
                ranked = self.reranker.rerank_batch([p[1] for p in parsed], [p[2] for p in parsed], top_k=self.top_k)
                results = list(zip(parsed, ranked))
            except Exception:
                for p in parsed:  # isolate the failing rows
                    try:
                        results.append((p, self.reranker.rerank(p[1], p[2], top_k=self.top_k)))
                    except Exception as exc:
                        failures.append({"query_id": p[0], "error": f"{type(exc).__name__}: {exc}"})
        name = self.reranker.name
        out = [result_row(p[0], r, name, p[1].text if self.keep_query else None) for p, r in results]
        files = []
        if out:
            files.append(write_part(self.fs, self.root, out, self.output_format, self.run_id))
        if failures:
            write_part(self.fs, self.root, failures, "jsonl", self.run_id, subdir=ERRORS_DIR)
        messages = json.dumps(failures[:_MESSAGES_PER_BATCH], ensure_ascii=False)
        return {"rows": [len(out)], "failed": [len(failures)], "files": [len(files)], "errors": [messages]}


def _skip_done(batch: Any, done: list[str]) -> Any:
    """Drop the rows whose query_id is in ``done`` (Arrow compute, vectorised)."""
    if not done:
        return batch
    pa = require("pyarrow", "ray")
    pc = require("pyarrow.compute", "ray")
    ids = pc.cast(batch["query_id"], pa.string())
    return batch.filter(pc.invert(pc.is_in(ids, value_set=pa.array(done, pa.string()))))


def rerank_dataset(
    input: str,
    output: str,
    *,
    reranker: RerankerSpec = "minilm",
    kind: str | None = None,
    options: Mapping[str, Any] | None = None,
    top_k: int | None = None,
    input_format: Literal["jsonl", "parquet"] | None = None,
    output_format: Literal["jsonl", "parquet"] | None = None,
    batch_size: int = 32,
    actors: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    read_num_cpus: float = 0.0,
    address: str | None = None,
    ray_init: Mapping[str, Any] | None = None,
    keep_query: bool = False,
    on_error: Literal["raise", "record"] = "raise",
    progress: bool = False,
    max_restarts: int = 0,
) -> BatchReport:
    """Rerank every row of ``input`` not yet in ``output`` (see the module docstring).

    ``on_error="raise"`` raises :class:`BatchRowsFailed` after the run when rows failed (the good ones are
    written either way). ``max_restarts`` is passed to the actors (Ray Data's default is -1, restart forever).
    """
    check_int("actors", actors, 1)
    check_int("batch_size", batch_size, 1)
    check_choice("on_error", on_error, ("raise", "record"))
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("read_num_cpus", read_num_cpus)):
        check_number(name, value, 0)
    ray = require("ray", "ray", purpose="batch reranking")
    data = require("ray.data", "ray")
    in_fmt = detect_format(input, input_format)
    out_fmt = output_format if output_format is not None else in_fmt
    detect_format(output, out_fmt)  # validates the name only (the folder need not exist)

    check_int("max_restarts", max_restarts, -1)

    started_here = False
    if not ray.is_initialized():
        init = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                **dict(ray_init or {})}
        if address is not None:
            init["address"] = address
        with _no_token_auth_notice():
            ray.init(**init)
        started_here = True
    stack = contextlib.ExitStack()
    try:
        if not progress:
            stack.enter_context(_quiet_ray_data())
        start = time.perf_counter()
        data.DataContext.get_current().enable_progress_bars = bool(progress)
        open_output(output)
        done = sorted(done_query_ids(output))
        # Read tasks ask for read_num_cpus (default 0): when the actor pool holds every CPU (2 actors x 1 CPU
        # on a 2-core machine), a read task that needs any CPU is never scheduled and the job hangs.
        if in_fmt == "jsonl":
            ds = data.read_json(input, lines=True, num_cpus=read_num_cpus)
        else:
            ds = data.read_parquet(input, num_cpus=read_num_cpus)
        with warnings.catch_warnings():
            # Ray 2.5x-2.6x has no named max_restarts parameter; its **ray_remote_args still takes it (deprecated)
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")
            ds = ds.map_batches(
                RerankActor,
                fn_constructor_args=(reranker, kind, dict(options or {}), output, out_fmt, uuid.uuid4().hex[:8],
                                     top_k, keep_query, on_error, done),
                batch_size=batch_size,
                batch_format="pyarrow",
                compute=data.ActorPoolStrategy(size=actors),
                num_cpus=num_cpus,
                num_gpus=num_gpus if num_gpus else None,
                max_restarts=max_restarts,
            )
        try:
            summaries = ds.take_all()
        except ray.exceptions.RayError as exc:  # e.g. the reranker cannot be built in an actor
            raise BackendError(f"the batch job failed: {_root_cause(exc)}") from exc
        report = BatchReport(
            reranked=sum(int(s["rows"]) for s in summaries),
            already_done=len(done),
            failed=sum(int(s["failed"]) for s in summaries),
            files=sum(int(s["files"]) for s in summaries),
            seconds=time.perf_counter() - start,
            output=output,
        )
        if on_error == "raise" and report.failed:
            errors = [e for s in summaries for e in json.loads(s.get("errors") or "[]")]
            raise BatchRowsFailed(report, errors)
        return report
    finally:
        stack.close()
        if started_here:
            ray.shutdown()


def _root_cause(exc: BaseException) -> str:
    """The innermost cause of a Ray error, as one line (``Type: message``), not Ray's wrapped traceback."""
    cause = getattr(exc, "cause", None) or exc.__cause__
    seen = {id(exc)}
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        exc = cause
        cause = getattr(exc, "cause", None) or exc.__cause__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def _drop_token_notice(record: logging.LogRecord) -> bool:
    return "Token authentication is enabled" not in record.getMessage()


@contextlib.contextmanager
def _no_token_auth_notice() -> Iterator[None]:
    """Hide Ray's notice that a new local cluster has token authentication on (Ray 2.5x, ``ray/_private/
    authentication/authentication_token_setup.py: _warn_token_auth_enabled``); the warning that authentication
    is *off* stays."""
    log = logging.getLogger("ray._private.authentication.authentication_token_setup")
    log.addFilter(_drop_token_notice)
    try:
        yield
    finally:
        log.removeFilter(_drop_token_notice)


def _drop_progress_notice(record: logging.LogRecord) -> bool:
    return "Progress bars disabled" not in record.getMessage()


@contextlib.contextmanager
def _quiet_ray_data() -> Iterator[None]:
    """Without ``progress``: no Ray Data INFO lines (execution plan, start, finish) and no notice that progress
    bars are off; Ray Data's warnings and errors still show."""
    data_log = logging.getLogger("ray.data")
    progress_log = logging.getLogger("ray.data._internal.progress")
    level = data_log.level
    data_log.setLevel(logging.WARNING)
    progress_log.addFilter(_drop_progress_notice)
    try:
        yield
    finally:
        progress_log.removeFilter(_drop_progress_notice)
        data_log.setLevel(level)
