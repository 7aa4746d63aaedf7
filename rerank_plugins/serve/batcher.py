"""Gather concurrent rerank requests for a few milliseconds and run them as one ``rerank_batch`` call.

:class:`MicroBatcher` owns one background task on the event loop. A request is queued with
:meth:`MicroBatcher.submit`; the task takes the first waiting request, then every request already queued, and
(when the batch is not full) waits ``batch_wait_ms`` once more for late arrivals, up to ``max_batch`` requests
or ``max_batch_documents`` documents. The batch runs in a worker thread (the event loop keeps serving) and one
batch runs at a time, so the reranker is never called from two threads at once. While it runs, new requests
queue up and form the next batch: under load, batches grow by themselves.

A request whose client went away is cancelled (:meth:`MicroBatcher.cancel`, or cancelling the future of
:meth:`MicroBatcher.enqueue`): while it waits in the queue it is dropped and the reranker never sees it
(:attr:`MicroBatcher.cancelled` counts them); a batch already running in the worker thread cannot be stopped, and
its answer for that request is discarded.

Failures stay with their request: when a batch call raises, each request of the batch is run alone, so a
request that breaks the model gets its own error and the others their results. A full queue raises
:class:`Overloaded` at once (the service answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..base import Reranker
from ..errors import ConfigError, RerankError
from ..types import Candidate, Query, RankedList

__all__ = ["MicroBatcher", "Overloaded"]

logger = logging.getLogger(__name__)


class Overloaded(RerankError):
    """The request queue is full."""


@dataclass
class _Job:
    query: Query
    candidates: list[Candidate]
    future: asyncio.Future[RankedList]
    started: bool = False


class MicroBatcher:
    """See the module docstring. ``on_batch(requests, documents, seconds)`` is called after each engine call."""

    def __init__(
        self,
        reranker: Reranker,
        *,
        max_batch: int = 32,
        batch_wait_ms: float = 5.0,
        max_batch_documents: int | None = None,
        max_queue: int = 1024,
        on_batch: Any = None,
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(f"max_batch must be an int >= 1, got {max_batch!r}")
        if isinstance(batch_wait_ms, bool) or not isinstance(batch_wait_ms, (int, float)) or not batch_wait_ms >= 0:
            raise ConfigError(f"batch_wait_ms must be a number >= 0, got {batch_wait_ms!r}")
        if max_batch_documents is not None and (
            isinstance(max_batch_documents, bool) or not isinstance(max_batch_documents, int) or max_batch_documents < 1
        ):
            raise ConfigError(f"max_batch_documents must be an int >= 1 or None, got {max_batch_documents!r}")
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise ConfigError(f"max_queue must be an int >= 1, got {max_queue!r}")
        self.reranker = reranker
        self.max_batch = max_batch
        self.batch_wait = float(batch_wait_ms) / 1000.0
        self.max_batch_documents = max_batch_documents
        self.max_queue = max_queue
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._held: _Job | None = None  # a job that did not fit in the previous batch
        self.batches = 0
        self.batched_requests = 0
        #: requests cancelled while queued (the reranker never saw them)
        self.cancelled = 0
        self._jobs: dict[int, _Job] = {}  # id(future) -> job, for started()

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        """Start the background task on the running loop (idempotent)."""
        if self.running:
            return
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rerank-micro-batcher")

    async def stop(self) -> None:
        """Stop the task; queued requests fail with a clear error."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = [self._held] if self._held is not None else []
        self._held = None
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(Overloaded("the service is shutting down"))

    # ------------------------------------------------------------------ requests
    async def submit(self, query: Query, candidates: Sequence[Candidate]) -> RankedList:
        """Rerank one request as part of the next batch (all candidates, best first; no top_k)."""
        future = self.enqueue(query, candidates)
        try:
            return await future
        except asyncio.CancelledError:
            future.cancel()
            raise

    def enqueue(self, query: Query, candidates: Sequence[Candidate]) -> asyncio.Future[RankedList]:
        """Queue one request; cancel the returned future to drop it (see the module docstring)."""
        if not self.running:
            self.start()
        assert self._queue is not None
        future: asyncio.Future[RankedList] = asyncio.get_running_loop().create_future()
        job = _Job(query, list(candidates), future)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(f"too many requests waiting ({self.max_queue}); retry later") from None
        key = id(future)
        self._jobs[key] = job
        future.add_done_callback(lambda _f: self._jobs.pop(key, None))
        return future

    def started(self, future: asyncio.Future[Any]) -> bool:
        """True once the request of ``future`` is part of a batch handed to the reranker."""
        job = self._jobs.get(id(future))
        return job.started if job is not None else future.done()

    # ------------------------------------------------------------------ the loop
    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            first = self._held if self._held is not None else await self._queue.get()
            self._held = None
            batch = [first]
            self._drain(batch)
            if len(batch) < self.max_batch and self._held is None and self.batch_wait > 0:
                await asyncio.sleep(self.batch_wait)
                self._drain(batch)
            live = [job for job in batch if not job.future.done()]  # skip requests whose client went away
            self.cancelled += len(batch) - len(live)
            if live:
                try:
                    await self._execute(live)
                except asyncio.CancelledError:
                    for job in live:
                        if not job.future.done():
                            job.future.set_exception(Overloaded("the service is shutting down"))
                    raise
                except Exception as exc:  # never let the loop die; the jobs get the error
                    logger.exception("micro-batcher failure")
                    for job in live:
                        if not job.future.done():
                            job.future.set_exception(exc)

    def _drain(self, batch: list[_Job]) -> None:
        assert self._queue is not None
        docs = sum(len(j.candidates) for j in batch)
        while len(batch) < self.max_batch and not self._queue.empty():
            job = self._queue.get_nowait()
            if job.future.done():  # cancelled while queued: never sent to the reranker
                self.cancelled += 1
                continue
            if self.max_batch_documents is not None and docs + len(job.candidates) > self.max_batch_documents:
                self._held = job
                return
            batch.append(job)
            docs += len(job.candidates)

    async def _execute(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for job in jobs:
            job.started = True
        try:
            results = await asyncio.to_thread(
                self.reranker.rerank_batch, [j.query for j in jobs], [j.candidates for j in jobs]
            )
        except Exception as exc:
            if len(jobs) > 1:
                await self._one_by_one(jobs)
            elif not jobs[0].future.done():
                jobs[0].future.set_exception(exc)
        else:
            for job, result in zip(jobs, results):
                if not job.future.done():
                    job.future.set_result(result)
        self.batches += 1
        self.batched_requests += len(jobs)
        if self.on_batch is not None:
            self.on_batch(len(jobs), sum(len(j.candidates) for j in jobs), loop.time() - start)

    async def _one_by_one(self, jobs: list[_Job]) -> None:
        for job in jobs:
            if job.future.done():
                continue
            try:
                result = await asyncio.to_thread(self.reranker.rerank, job.query, job.candidates)
            except Exception as exc:
                if not job.future.done():
                    job.future.set_exception(exc)
            else:
                if not job.future.done():
                    job.future.set_result(result)
