"""Service metrics in the Prometheus text exposition format (version 0.0.4), without a client library.

Exposed series (all prefixed ``rerank_``):

* ``requests_total{path,method,status}`` counter;
* ``request_duration_seconds{path}`` histogram (latency of every HTTP request, including errors);
* ``errors_total{path,kind}`` counter (``kind``: ``malformed_json``, ``validation``, ``too_large``,
  ``overloaded``, ``backend``, ``model_output``, ``internal``, ...);
* ``client_disconnects_total{path,stage}`` counter: clients that hung up before their answer (``stage``: ``body``
  while sending the body, ``queued`` while waiting for the engine, ``running`` while their batch ran); these are
  not errors (not in ``errors_total``) and their requests count with status 499 in ``requests_total``;
* ``cancelled_requests_total`` counter: queued requests dropped because their client went away (never scored),
  and ``cancelled_documents_total``: the documents left unscored (with the unscored slices of split requests);
* ``documents_total`` counter (documents reranked), and ``split_documents_total``: those scored as slices of large
  requests (see :mod:`.batcher`);
* ``batch_size_requests`` histogram (requests per engine call) and ``batch_duration_seconds`` histogram;
* ``in_flight_requests`` and ``queued_requests`` gauges.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

__all__ = ["Histogram", "Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Histogram:
    """Cumulative-bucket histogram (Prometheus semantics: ``le`` buckets, ``_sum``, ``_count``)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = tuple(sorted(buckets))
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: dict[str, str]) -> list[str]:
        out = []
        running = 0
        for bound, n in zip(self.buckets, self.counts):
            running += n
            out.append(f"{name}_bucket{_labels({**labels, 'le': _num(bound)})} {running}")
        out.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {self.count}")
        out.append(f"{name}_sum{_labels(labels)} {self.sum!r}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out

    def quantile(self, q: float) -> float | None:
        """Upper bucket bound below which a fraction ``q`` of observations fall (None when empty)."""
        if self.count == 0:
            return None
        target = q * self.count
        running = 0
        for bound, n in zip(self.buckets, self.counts):
            running += n
            if running >= target:
                return float(bound)
        return float("inf")


class Metrics:
    """Thread-safe counters and histograms of one service; :meth:`render` gives the Prometheus text."""

    def __init__(self, prefix: str = "rerank") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[str, Histogram] = {}
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.documents = 0
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.batch_seconds = Histogram(LATENCY_BUCKETS)
        self.in_flight = 0
        self.queued: Callable[[], int] = lambda: 0
        self.cancelled: Callable[[], int] = lambda: 0
        self.cancelled_documents: Callable[[], int] = lambda: 0
        self.split_documents: Callable[[], int] = lambda: 0
        self.disconnects: dict[tuple[str, str], int] = defaultdict(int)

    def request_started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def request_finished(self, path: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests[(path, method, status)] += 1
            hist = self.latency.get(path)
            if hist is None:
                hist = self.latency[path] = Histogram(LATENCY_BUCKETS)
            hist.observe(seconds)

    def error(self, path: str, kind: str) -> None:
        with self._lock:
            self.errors[(path, kind)] += 1

    def disconnect(self, path: str, stage: str) -> None:
        with self._lock:
            self.disconnects[(path, stage)] += 1

    def batch(self, requests: int, documents: int, seconds: float) -> None:
        with self._lock:
            self.documents += documents
            self.batch_sizes.observe(requests)
            self.batch_seconds.observe(seconds)

    def render(self) -> str:
        p = self.prefix
        with self._lock:
            lines = [
                f"# HELP {p}_requests_total HTTP requests by path, method and status.",
                f"# TYPE {p}_requests_total counter",
            ]
            for (path, method, status), n in sorted(self.requests.items()):
                labels = _labels({"path": path, "method": method, "status": str(status)})
                lines.append(f"{p}_requests_total{labels} {n}")
            lines += [
                f"# HELP {p}_request_duration_seconds Latency of HTTP requests.",
                f"# TYPE {p}_request_duration_seconds histogram",
            ]
            for path, hist in sorted(self.latency.items()):
                lines += hist.lines(f"{p}_request_duration_seconds", {"path": path})
            lines += [f"# HELP {p}_errors_total Failed requests by kind.", f"# TYPE {p}_errors_total counter"]
            for (path, kind), n in sorted(self.errors.items()):
                lines.append(f"{p}_errors_total{_labels({'path': path, 'kind': kind})} {n}")
            lines += [f"# HELP {p}_client_disconnects_total Clients that hung up before their answer, by stage.",
                      f"# TYPE {p}_client_disconnects_total counter"]
            for (path, stage), n in sorted(self.disconnects.items()):
                lines.append(f"{p}_client_disconnects_total{_labels({'path': path, 'stage': stage})} {n}")
            lines += [
                f"# HELP {p}_cancelled_requests_total Queued requests dropped unscored because their client left.",
                f"# TYPE {p}_cancelled_requests_total counter",
                f"{p}_cancelled_requests_total {self.cancelled()}",
                f"# HELP {p}_cancelled_documents_total Documents left unscored because their client left.",
                f"# TYPE {p}_cancelled_documents_total counter",
                f"{p}_cancelled_documents_total {self.cancelled_documents()}",
                f"# HELP {p}_documents_total Documents reranked.",
                f"# TYPE {p}_documents_total counter",
                f"{p}_documents_total {self.documents}",
                f"# HELP {p}_split_documents_total Documents scored as slices of large requests.",
                f"# TYPE {p}_split_documents_total counter",
                f"{p}_split_documents_total {self.split_documents()}",
                f"# HELP {p}_batch_size_requests Requests per engine call.",
                f"# TYPE {p}_batch_size_requests histogram",
                *self.batch_sizes.lines(f"{p}_batch_size_requests", {}),
                f"# HELP {p}_batch_duration_seconds Duration of engine calls.",
                f"# TYPE {p}_batch_duration_seconds histogram",
                *self.batch_seconds.lines(f"{p}_batch_duration_seconds", {}),
                f"# HELP {p}_in_flight_requests Requests being handled.",
                f"# TYPE {p}_in_flight_requests gauge",
                f"{p}_in_flight_requests {self.in_flight}",
                f"# HELP {p}_queued_requests Requests waiting for the engine.",
                f"# TYPE {p}_queued_requests gauge",
                f"{p}_queued_requests {self.queued()}",
            ]
        return "\n".join(lines) + "\n"
