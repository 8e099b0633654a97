"""Request metrics in the Prometheus text exposition format (version 0.0.4), without a client library.

An ASGI middleware counts requests and observes their latency by method, *route template* (never the
raw path, so label cardinality stays bounded and ids do not leak into labels) and status code. Gauges
(videos, jobs by status, index size) are read at scrape time from callables the app registers.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class Metrics:
    """Counters, a latency histogram and scrape-time gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = defaultdict(float)
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._help: dict[str, str] = {}
        self._gauges: list[tuple[str, str, Callable[[], dict[tuple[tuple[str, str], ...], float]]]] = []
        self.started = time.time()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        with self._lock:
            self._requests[(method, route, str(status))] += 1
            key = (method, route)
            buckets = self._buckets.get(key)
            if buckets is None:
                buckets = self._buckets[key] = [0] * (len(LATENCY_BUCKETS) + 1)
            buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self._sums[key] += seconds

    def inc(self, name: str, help_text: str, value: float = 1.0, **labels: str) -> None:
        """Add to a named counter (``vidlens_uploads_total`` ...)."""
        with self._lock:
            self._help[name] = help_text
            self._counters[(name, tuple(sorted(labels.items())))] += value

    def gauge(self, name: str, help_text: str, read: Callable[[], dict[tuple[tuple[str, str], ...], float]]) -> None:
        """Register a gauge whose labelled values ``read()`` returns at scrape time."""
        self._gauges.append((name, help_text, read))

    def render(self) -> str:
        """Everything, in the Prometheus text format."""
        lines: list[str] = []
        with self._lock:
            requests = dict(self._requests)
            buckets = {k: list(v) for k, v in self._buckets.items()}
            sums = dict(self._sums)
            counters = dict(self._counters)
            helps = dict(self._help)
        lines += ["# HELP vidlens_http_requests_total HTTP requests by method, route and status.",
                  "# TYPE vidlens_http_requests_total counter"]
        for (method, route, code), n in sorted(requests.items()):
            lines.append(f"vidlens_http_requests_total"
                         f"{_labels((('method', method), ('route', route), ('status', code)))} {n}")
        lines += ["# HELP vidlens_http_request_duration_seconds Time to answer a request.",
                  "# TYPE vidlens_http_request_duration_seconds histogram"]
        for (method, route), counts in sorted(buckets.items()):
            base = (("method", method), ("route", route))
            cumulative = 0
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), counts, strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f"vidlens_http_request_duration_seconds_bucket{_labels((*base, ('le', le)))} {cumulative}")
            lines.append(f"vidlens_http_request_duration_seconds_sum{_labels(base)} {sums[(method, route)]:.6f}")
            lines.append(f"vidlens_http_request_duration_seconds_count{_labels(base)} {cumulative}")
        by_name: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = defaultdict(list)
        for (name, labels), value in counters.items():
            by_name[name].append((labels, value))
        for name in sorted(by_name):
            lines += [f"# HELP {name} {helps[name]}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in sorted(by_name[name])]
        for name, help_text, read in self._gauges:
            try:
                values = read()
            except Exception:  # a gauge that cannot be read must not break the scrape
                continue
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in sorted(values.items())]
        lines += ["# HELP vidlens_process_start_time_seconds Start time of the process since the epoch.",
                  "# TYPE vidlens_process_start_time_seconds gauge",
                  f"vidlens_process_start_time_seconds {self.started:.3f}"]
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI middleware (no per-request task overhead) that feeds :class:`Metrics`."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope.get("method", "?"), template, status_holder["status"],
                                         time.perf_counter() - t0)
