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

Large requests (``split_documents``): a request with more documents is scored in slices, one slice per engine
call, so it shares the engine with the requests that arrive meanwhile instead of holding it; large requests take
turns. While smaller requests are active (one was admitted or answered within the last ``idle_after`` seconds,
0.2 s), the slices of large requests get at most ``split_share`` (0.1) of the documents the others get: each
small document scored earns ``split_share`` documents of credit, and a slice takes at most the credit there is
(never more than ``split_documents``). This holds whether or not a small request shares the batch: with no credit
and no small request waiting, the engine waits for the next small request (at most until ``idle_after`` has passed
since the last one) instead of starting a slice that the small requests arriving meanwhile would queue behind.
With no small request for ``idle_after``, a large request gets every batch, in slices of ``split_documents`` (so a
client that leaves wastes at most one slice). A client that leaves stops its request at the next slice
(:attr:`MicroBatcher.cancelled_documents`). :attr:`MicroBatcher.split_documents_scored` counts the documents of
slices. ``split_share`` was 0.2 until a model slower than a client's patience showed its cost: when an engine call
takes longer than a retrying client waits (a CPU MiniLM, a 20 ms-per-document engine, against 0.3 s timeouts), every
slice of such a client's request is wasted, so the others keep at most ``1 / (1 + split_share)`` of the engine:
0.83x at 0.2 (measured 0.80x), 0.91x at 0.1 (measured 0.88x; ``benchmarks/serve_load.py``, docs/serving.md). A
patient large request still progresses at a tenth of the small requests' rate while they are active, and at full
speed once they stop. The slices are merged into one ranked list, so this is only right for rerankers that score
each document on its own (pointwise: cross-encoders, embeddings, yes/no LLM scoring), never for listwise strategies,
which compare documents with each other.

Shutdown (:meth:`MicroBatcher.drain`, called when the server begins its graceful shutdown): work goes on until
the deadline, large requests one after the other (the oldest first, so that as many as possible finish rather than
all of them a little); at the deadline every request not answered yet fails with :class:`Overloaded` ("shutting
down"; the service answers 503 with ``Retry-After``), a batch still in the engine included (its answer is dropped),
and new requests are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..base import Reranker
from ..errors import RerankError
from ..types import Candidate, Query, RankedList
from ..validation import check_int, check_number

__all__ = ["MicroBatcher", "Overloaded"]

logger = logging.getLogger(__name__)


class Overloaded(RerankError):
    """The request queue is full."""


@dataclass
class _Job:
    query: Query
    candidates: list[Candidate]
    future: asyncio.Future[RankedList]
    #: the engine to score on (a length-policy copy of the batcher's reranker), None: the batcher's reranker
    engine: Reranker | None = None
    started: bool = False
    #: split requests: candidates handed out so far, and the ranked parts back
    offset: int = 0
    partials: list[tuple[int, RankedList]] = field(default_factory=list)


@dataclass
class _Part:
    job: _Job
    candidates: list[Candidate]
    offset: int


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
        split_documents: int | None = None,
        split_share: float = 0.1,
        idle_after: float = 0.2,
        on_batch: Any = None,
    ) -> None:
        check_int("max_batch", max_batch, 1)
        check_number("batch_wait_ms", batch_wait_ms, 0)
        check_int("max_batch_documents", max_batch_documents, 1, optional=True)
        check_int("max_queue", max_queue, 1)
        self.split_documents = check_int("split_documents", split_documents, 1, optional=True)
        check_number("split_share", split_share, above=0)
        self.split_share = float(split_share)
        self.idle_after = float(check_number("idle_after", idle_after, 0))
        self._credit = 0.0  # documents large-request slices may take while small requests are active
        self._last_small = -math.inf  # loop time a small request was last admitted or answered
        self._arrival: asyncio.Event | None = None
        #: documents scored as slices of large requests
        self.split_documents_scored = 0
        self._large: deque[_Job] = deque()
        self._deadline: float | None = None  # set by drain(): the end of the graceful shutdown
        self._running_items: list[_Part] = []
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
        #: requests cancelled while queued (the reranker never saw them), and the documents left unscored
        self.cancelled = 0
        self.cancelled_documents = 0
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
        self._arrival = asyncio.Event()
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
        pending.extend(self._large)
        self._large.clear()
        while self._queue is not None and not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for job in pending:
            if not job.future.done():
                job.future.set_exception(Overloaded("the service is shutting down"))

    @property
    def draining(self) -> bool:
        """True once :meth:`drain` was called (the server is shutting down)."""
        return self._deadline is not None

    def drain(self, seconds: float) -> None:
        """Finish what can be finished within ``seconds``, then fail the rest (see the module docstring)."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + seconds
        loop.call_at(self._deadline, self._expire)
        if self._arrival is not None:
            self._arrival.set()  # stop waiting for small requests

    def _expire(self) -> None:
        jobs = [self._held] if self._held is not None else []
        self._held = None
        jobs.extend(self._large)
        self._large.clear()
        jobs.extend(item.job for item in self._running_items)
        while self._queue is not None and not self._queue.empty():
            jobs.append(self._queue.get_nowait())
        n = 0
        for job in jobs:
            if not job.future.done():
                n += 1
                job.future.set_exception(Overloaded("the service is shutting down: the request did not finish "
                                                    "within the graceful timeout; retry on another instance"))
        if n:
            logger.warning("graceful shutdown: %d request(s) not finished in time answered 503", n)

    # ------------------------------------------------------------------ requests
    async def submit(self, query: Query, candidates: Sequence[Candidate], engine: Reranker | None = None
                     ) -> RankedList:
        """Rerank one request as part of the next batch (all candidates, best first; no top_k)."""
        future = self.enqueue(query, candidates, engine)
        try:
            return await future
        except asyncio.CancelledError:
            future.cancel()
            raise

    def enqueue(self, query: Query, candidates: Sequence[Candidate], engine: Reranker | None = None
                ) -> asyncio.Future[RankedList]:
        """Queue one request (on ``engine``, a copy of the reranker sharing its model, e.g. with another length
        policy; default: the reranker); cancel the returned future to drop it (see the module docstring)."""
        if self._deadline is not None and asyncio.get_running_loop().time() >= self._deadline:
            raise Overloaded("the service is shutting down")
        if not self.running:
            self.start()
        assert self._queue is not None and self._arrival is not None
        future: asyncio.Future[RankedList] = asyncio.get_running_loop().create_future()
        # the request's handler may be gone (cancelled at shutdown) when its answer is set: never log that
        future.add_done_callback(_retrieve)
        job = _Job(query, list(candidates), future, engine)
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            if not self._compact():
                raise Overloaded(f"too many requests waiting ({self.max_queue}); retry later") from None
            self._queue.put_nowait(job)
        self._arrival.set()
        key = id(future)
        self._jobs[key] = job
        future.add_done_callback(lambda _f: self._jobs.pop(key, None))
        return future

    def _compact(self) -> bool:
        """Drop cancelled requests from a full queue (order kept); True when that made room."""
        assert self._queue is not None
        waiting = []
        while not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        live = [j for j in waiting if not j.future.done()]
        self.cancelled += len(waiting) - len(live)
        self.cancelled_documents += sum(len(j.candidates) for j in waiting if j.future.done())
        for j in live:
            self._queue.put_nowait(j)
        return len(live) < self.max_queue

    def started(self, future: asyncio.Future[Any]) -> bool:
        """True once the request of ``future`` is part of a batch handed to the reranker."""
        job = self._jobs.get(id(future))
        return job.started if job is not None else future.done()

    # ------------------------------------------------------------------ the loop
    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            self._large = deque(j for j in self._large if not self._drop_if_cancelled(j))
            batch: list[_Job] = []
            if self._held is not None:
                batch.append(self._held)
                self._held = None
            elif not self._large:
                self._admit(await self._queue.get(), batch)
            elif self._queue.empty() and self._credit < 1 and self._small_active(loop.time()):
                await self._wait_for_small(loop)
            self._drain(batch)
            if len(batch) < self.max_batch and self._held is None and self.batch_wait > 0:
                await asyncio.sleep(self.batch_wait)
                self._drain(batch)
            live = [job for job in batch if not job.future.done()]  # skip requests whose client went away
            self.cancelled += len(batch) - len(live)
            self.cancelled_documents += sum(len(j.candidates) for j in batch if j.future.done())
            items = [_Part(job, job.candidates, 0) for job in live]
            if items:
                self._last_small = loop.time()
                cap = float(self.split_documents or 0)
                self._credit = min(cap, self._credit + self.split_share * sum(len(i.candidates) for i in items))
            part = self._next_part(loop.time())
            if part is not None:
                items.append(part)
                self.split_documents_scored += len(part.candidates)
            if not items:
                continue
            self._running_items = items
            try:
                await self._execute(items)
            except asyncio.CancelledError:
                for item in items:
                    if not item.job.future.done():
                        item.job.future.set_exception(Overloaded("the service is shutting down"))
                raise
            except Exception as exc:  # never let the loop die; the jobs get the error
                logger.exception("micro-batcher failure")
                for item in items:
                    if not item.job.future.done():
                        item.job.future.set_exception(exc)
            finally:
                self._running_items = []
            if len(items) > (part is not None):
                self._last_small = loop.time()  # answered now: their clients come back from here

    def _small_active(self, now: float) -> bool:
        return self._deadline is None and now - self._last_small < self.idle_after

    async def _wait_for_small(self, loop: asyncio.AbstractEventLoop) -> None:
        """No credit for a slice while small requests are active: wait for the next one (or ``idle_after``)."""
        assert self._arrival is not None and self._queue is not None
        self._arrival.clear()
        if not self._queue.empty():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._arrival.wait(), self._last_small + self.idle_after - loop.time())

    def _drop_if_cancelled(self, job: _Job) -> bool:
        if not job.future.done():
            return False
        if job.offset == 0:
            self.cancelled += 1
        self.cancelled_documents += len(job.candidates) - job.offset
        return True

    def _admit(self, job: _Job, batch: list[_Job]) -> None:
        if self.split_documents is not None and len(job.candidates) > self.split_documents:
            self._large.append(job)
        else:
            batch.append(job)

    def _next_part(self, now: float) -> _Part | None:
        """The next slice of a large request (see the module docstring): at most the credit while small requests
        are active, ``split_documents`` otherwise; the oldest request first while draining, else in turns."""
        if not self._large:
            return None
        assert self.split_documents is not None
        if self._small_active(now):
            size = min(self.split_documents, int(self._credit))
            if size < 1:
                return None  # large requests have had their share of the engine lately; the others go first
            self._credit -= size
        else:
            size = self.split_documents
            self._credit = 0.0
        while self._large:
            job = self._large[0]
            if self._drop_if_cancelled(job):
                self._large.popleft()
                continue
            start = job.offset
            job.offset = min(len(job.candidates), start + size)
            if job.offset >= len(job.candidates):
                self._large.popleft()
            elif self._deadline is None:
                self._large.rotate(-1)  # round-robin between large requests
            return _Part(job, job.candidates[start:job.offset], start)
        return None

    def _drain(self, batch: list[_Job]) -> None:
        assert self._queue is not None
        docs = sum(len(j.candidates) for j in batch)
        while len(batch) < self.max_batch and not self._queue.empty():
            job = self._queue.get_nowait()
            if job.future.done():  # cancelled while queued: never sent to the reranker
                self.cancelled += 1
                self.cancelled_documents += len(job.candidates)
                continue
            if self.split_documents is not None and len(job.candidates) > self.split_documents:
                self._large.append(job)
                continue
            if self.max_batch_documents is not None and docs + len(job.candidates) > self.max_batch_documents:
                self._held = job
                return
            batch.append(job)
            docs += len(job.candidates)

    def _deliver(self, item: _Part, result: RankedList) -> None:
        job = item.job
        if job.future.done():
            return
        if item.offset == 0 and len(item.candidates) == len(job.candidates):
            job.future.set_result(result)
            return
        job.partials.append((item.offset, result))
        if sum(len(r.results) for _, r in job.partials) == len(job.candidates):
            job.future.set_result(_merge(job))

    async def _execute(self, items: list[_Part]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for item in items:
            item.job.started = True
        try:
            results = await asyncio.to_thread(self._score_items, items)
        except Exception as exc:
            if len(items) > 1:
                await self._one_by_one(items)
            elif not items[0].job.future.done():
                items[0].job.future.set_exception(exc)
        else:
            for item, result in zip(items, results):
                self._deliver(item, result)
        self.batches += 1
        self.batched_requests += len(items)
        if self.on_batch is not None:
            self.on_batch(len(items), sum(len(i.candidates) for i in items), loop.time() - start)

    def _score_items(self, items: list[_Part]) -> list[RankedList]:
        """One ``rerank_batch`` call per engine among the items (requests on the same engine batched together)."""
        by_engine: dict[int, list[int]] = {}
        for k, item in enumerate(items):
            by_engine.setdefault(id(self._engine(item)), []).append(k)
        out: list[RankedList | None] = [None] * len(items)
        for ks in by_engine.values():
            engine = self._engine(items[ks[0]])
            results = engine.rerank_batch([items[k].job.query for k in ks], [items[k].candidates for k in ks])
            for k, result in zip(ks, results):
                out[k] = result
        return [r for r in out if r is not None]

    def _engine(self, item: _Part) -> Reranker:
        return item.job.engine if item.job.engine is not None else self.reranker

    async def _one_by_one(self, items: list[_Part]) -> None:
        for item in items:
            if item.job.future.done():
                continue
            try:
                result = await asyncio.to_thread(self._engine(item).rerank, item.job.query, item.candidates)
            except Exception as exc:
                if not item.job.future.done():
                    item.job.future.set_exception(exc)
            else:
                self._deliver(item, result)


def _merge(job: _Job) -> RankedList:
    """One ranked list from the parts of a split request (positions of the whole request, stable by score)."""
    merged = [replace(r, original_position=offset + r.original_position)
              for offset, ranked in job.partials for r in ranked.results]
    merged.sort(key=lambda r: (-r.score, r.original_position))
    first = job.partials[0][1]
    return RankedList(query=job.query, results=tuple(replace(r, rank=k) for k, r in enumerate(merged, start=1)),
                      reranker=first.reranker, details=first.details)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a request's exception as retrieved (asyncio logs "exception was never retrieved" otherwise)."""
    if not future.cancelled():
        future.exception()
