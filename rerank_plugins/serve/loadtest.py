"""A bounded HTTP load generator for the rerank service (used by ``benchmarks/serve_load.py`` and the tests).

:func:`run_load` runs ``concurrency`` asyncio clients against ``url``; together they send at most
``max_requests`` requests and stop at ``max_seconds`` whatever happens (both bounds always apply). Each client
cycles through ``bodies``; every ``bad_every``-th request (when given) is replaced by a malformed one from
:data:`BAD_REQUESTS` (invalid JSON, wrong types, too many documents), whose answer must be a 4xx with a JSON
error message. :class:`LoadReport` has throughput, latency percentiles of the good requests, and the counts.

``impatient`` more clients (their own connections) send ``impatient_body`` with a ``impatient_timeout``-second
timeout, hang up when it passes and retry after ``impatient_backoff`` seconds, as retrying SDKs do against a slow
service, until the time bound; they count in ``impatient_sent`` / ``impatient_ok`` / ``impatient_timeouts`` and
not in the throughput, which is the other clients' alone.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._optional import require
from ..validation import check_int, check_mapping, check_number, check_that

__all__ = ["BAD_REQUESTS", "LoadReport", "percentile", "run_load"]


def _bad_requests(max_documents: int) -> list[tuple[str, bytes]]:
    return [
        ("malformed_json", b'{"query": "shock waves", "documents": ["a", '),
        ("wrong_types", json.dumps({"query": 42, "documents": "not a list"}).encode()),
        ("missing_documents", json.dumps({"query": "q"}).encode()),
        ("too_many_documents", json.dumps({"query": "q", "documents": ["d"] * (max_documents + 1)}).encode()),
    ]


#: (name, body) of malformed requests for a service with the default ``max_documents=1000``.
BAD_REQUESTS = _bad_requests(1000)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass
class LoadReport:
    concurrency: int
    sent: int = 0
    ok: int = 0
    #: good requests that did not get a 200 (must be 0)
    errors: int = 0
    #: good requests still in flight when the time bound ran out (abandoned, not errors)
    cut: int = 0
    #: malformed requests answered 4xx with a JSON "error" message / answered otherwise (must be 0)
    bad_rejected: int = 0
    bad_mishandled: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    #: requests of the impatient clients, answered in time, and given up (client timeout, then retried)
    impatient_sent: int = 0
    impatient_ok: int = 0
    impatient_timeouts: int = 0

    @property
    def throughput(self) -> float:
        """Good requests answered 200 per second."""
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)

    def summary(self) -> str:
        return (
            f"{self.concurrency} clients: {self.ok} ok / {self.sent} sent in {self.seconds:.1f}s, "
            f"{self.throughput:.1f} req/s, p50 {self.p50 * 1000:.1f} ms, p99 {self.p99 * 1000:.1f} ms, "
            f"errors {self.errors}, cut at the time bound {self.cut}, malformed rejected {self.bad_rejected}, "
            f"mishandled {self.bad_mishandled}"
            + (f"; impatient clients: {self.impatient_sent} sent, {self.impatient_ok} answered in time, "
               f"{self.impatient_timeouts} gave up" if self.impatient_sent else "")
        )


async def run_load(
    url: str,
    bodies: Sequence[Mapping[str, Any]],
    *,
    concurrency: int = 8,
    max_requests: int = 200,
    max_seconds: float = 60.0,
    bad_every: int | None = None,
    max_documents: int = 1000,
    timeout: float = 60.0,
    grace: float = 5.0,
    impatient: int = 0,
    impatient_body: Mapping[str, Any] | None = None,
    impatient_timeout: float = 0.3,
    impatient_backoff: float = 0.1,
) -> LoadReport:
    """Send the load (see the module docstring) and return the report; never more than the two bounds."""
    check_that("bodies", bodies, bool(bodies), "at least one request body")
    for name, count, least in (("concurrency", concurrency, 1), ("max_requests", max_requests, 1),
                               ("max_documents", max_documents, 1), ("impatient", impatient, 0)):
        check_int(name, count, least)
    check_int("bad_every", bad_every, 1, optional=True)
    for name, seconds in (("max_seconds", max_seconds), ("timeout", timeout), ("impatient_timeout", impatient_timeout)):
        check_number(name, seconds, above=0)
    check_number("grace", grace, 0)
    check_number("impatient_backoff", impatient_backoff, 0)
    check_mapping("impatient_body", impatient_body, optional=True)
    httpx = require("httpx", "serve", purpose="the load generator")
    encoded = [json.dumps(dict(b)).encode("utf-8") for b in bodies]
    bad = _bad_requests(max_documents)
    report = LoadReport(concurrency=concurrency)
    counter = 0
    start = time.perf_counter()
    deadline = start + max_seconds

    def take() -> int | None:
        nonlocal counter
        if counter >= max_requests or time.perf_counter() >= deadline:
            return None
        counter += 1
        return counter - 1

    async def client(worker: int, http: Any) -> None:
        while (n := take()) is not None:
            is_bad = bad_every is not None and n % bad_every == bad_every - 1
            # the k-th malformed request is bad[k % len(bad)], so every kind is sent
            body = bad[(n // bad_every) % len(bad)][1] if is_bad and bad_every else encoded[n % len(encoded)]
            report.sent += 1
            t0 = time.perf_counter()
            try:
                # a request may run past the time bound by at most `grace` seconds, then it is abandoned
                response = await http.post(url, content=body, headers={"content-type": "application/json"},
                                           timeout=max(0.1, min(timeout, deadline - t0 + grace)))
            except httpx.HTTPError as exc:
                if isinstance(exc, httpx.TimeoutException) and time.perf_counter() >= deadline:
                    report.cut += 1  # abandoned at the time bound
                    continue
                if is_bad:
                    report.bad_mishandled += 1
                else:
                    report.errors += 1
                if len(report.error_samples) < 5:
                    report.error_samples.append(f"{type(exc).__name__}: {exc}")
                continue
            elapsed = time.perf_counter() - t0
            report.statuses[response.status_code] += 1
            if is_bad:
                ok = 400 <= response.status_code < 500 and "error" in _json_or_empty(response)
                report.bad_rejected += ok
                report.bad_mishandled += not ok
            elif response.status_code == 200:
                report.ok += 1
                report.latencies.append(elapsed)
            else:
                report.errors += 1
                if len(report.error_samples) < 5:
                    report.error_samples.append(f"HTTP {response.status_code}: {response.text[:200]}")

    heavy = json.dumps(dict(impatient_body if impatient_body is not None else bodies[0])).encode("utf-8")

    finished = False  # the other clients are done: the impatient ones stop too

    async def impatient_client(http: Any) -> None:
        while time.perf_counter() < deadline and not finished:
            report.impatient_sent += 1
            try:
                response = await http.post(url, content=heavy, headers={"content-type": "application/json"},
                                           timeout=impatient_timeout)
            except httpx.TimeoutException:
                report.impatient_timeouts += 1
                await asyncio.sleep(impatient_backoff)
                continue
            except httpx.HTTPError:
                await asyncio.sleep(impatient_backoff)
                continue
            report.impatient_ok += response.status_code == 200

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as http, httpx.AsyncClient(
        limits=httpx.Limits(max_connections=max(1, impatient))
    ) as impatient_http:
        async def others() -> None:
            nonlocal finished
            await asyncio.gather(*(client(i, http) for i in range(concurrency)))
            report.seconds = time.perf_counter() - start  # throughput: the other clients' time alone
            finished = True

        await asyncio.gather(others(), *(impatient_client(impatient_http) for _ in range(impatient)))
    return report


def _json_or_empty(response: Any) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
