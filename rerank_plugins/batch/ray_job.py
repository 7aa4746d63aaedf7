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
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._optional import require
from ..base import Reranker
from ..errors import ConfigError
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

__all__ = ["BatchReport", "RerankActor", "rerank_dataset"]

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
    ) -> None:
        self.reranker = _build(reranker, kind, options)
        self.fs, self.root = output_fs(output)
        self.output_format = output_format
        self.run_id = run_id
        self.top_k = top_k
        self.keep_query = keep_query
        self.on_error = on_error

    def __call__(self, batch: Any) -> dict[str, list[Any]]:
        rows = batch.to_pylist()
        parsed, failures = [], []
        for row in rows:
            try:
                parsed.append(row_to_inputs(row))
            except Exception as exc:
                if self.on_error == "raise":
                    raise
                failures.append({"query_id": str(row.get("query_id")), "error": f"{type(exc).__name__}: {exc}"})
        results = []
        if parsed:
            try:
                ranked = self.reranker.rerank_batch([p[1] for p in parsed], [p[2] for p in parsed], top_k=self.top_k)
                results = list(zip(parsed, ranked))
            except Exception:
                if self.on_error == "raise":
                    raise
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
        return {"rows": [len(out)], "failed": [len(failures)], "files": [len(files)]}


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
) -> BatchReport:
    """Rerank every row of ``input`` not yet in ``output`` (see the module docstring)."""
    if isinstance(actors, bool) or not isinstance(actors, int) or actors < 1:
        raise ConfigError(f"actors must be an int >= 1, got {actors!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if on_error not in ("raise", "record"):
        raise ConfigError(f"on_error must be 'raise' or 'record', got {on_error!r}")
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus), ("read_num_cpus", read_num_cpus)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
    ray = require("ray", "ray", purpose="batch reranking")
    data = require("ray.data", "ray")
    in_fmt = detect_format(input, input_format)
    out_fmt = output_format if output_format is not None else in_fmt
    detect_format(output, out_fmt)  # validates the name only (the folder need not exist)

    started_here = False
    if not ray.is_initialized():
        init = {"include_dashboard": False, "log_to_driver": False, **dict(ray_init or {})}
        if address is not None:
            init["address"] = address
        ray.init(**init)
        started_here = True
    try:
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
        ds = ds.map_batches(_skip_done, fn_kwargs={"done": done}, batch_format="pyarrow")
        ds = ds.map_batches(
            RerankActor,
            fn_constructor_args=(reranker, kind, dict(options or {}), output, out_fmt, uuid.uuid4().hex[:8], top_k,
                                 keep_query, on_error),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=data.ActorPoolStrategy(size=actors),
            num_cpus=num_cpus,
            num_gpus=num_gpus if num_gpus else None,
        )
        summaries = ds.take_all()
        return BatchReport(
            reranked=sum(int(s["rows"]) for s in summaries),
            already_done=len(done),
            failed=sum(int(s["failed"]) for s in summaries),
            files=sum(int(s["files"]) for s in summaries),
            seconds=time.perf_counter() - start,
            output=output,
        )
    finally:
        if started_here:
            ray.shutdown()
