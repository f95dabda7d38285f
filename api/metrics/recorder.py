"""What the API records about its own HTTP requests, from `RequestContextMiddleware`'s timing.

Two views of the same observations:
- Prometheus series, exported at GET /metrics: `store_http_requests_total{method,route,status}` and
  `store_http_request_duration_seconds{method,route}` (a histogram). With several worker processes
  prometheus_client's multiprocess mode keeps them in files under `PROMETHEUS_MULTIPROC_DIR` (set
  before the workers import prometheus_client), and /metrics adds up every worker's files.
- A rolling one-minute window in this process (one slot per second), for the real-time answer of
  GET /api/metrics: rates and latency percentiles of the last minute without a Prometheus server.

`route` is the route's template (`/api/shops/{shop_id}`), never the raw path, so the number of series
stays bounded; requests that match no route share `<unmatched>`. The hot path is a dict lookup, two
prometheus updates and a few integer increments: a few microseconds.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Scope

# Seconds. Dense below 50 ms, where the API's targets are (1-200 ms), so the percentiles are useful.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
WINDOW_SECONDS = 60
UNMATCHED = "<unmatched>"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUESTS_METRIC = "store_http_requests"
LATENCY_METRIC = "store_http_request_duration_seconds"


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, if this process runs in it."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The q-quantile of a histogram given per-bucket (not cumulative) counts, the last bucket being
    +Inf: linear within the bucket, as Prometheus' histogram_quantile; None without observations. A
    quantile in the +Inf bucket is reported as the largest finite bound (a lower bound)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, count in enumerate(counts):
        if count and cumulative + count >= rank:
            if i >= len(bounds):
                return bounds[-1]
            lower = bounds[i - 1] if i > 0 else 0.0
            return lower + (bounds[i] - lower) * (rank - cumulative) / count
        cumulative += count
    return bounds[-1]


@dataclass(frozen=True)
class RouteStats:
    """Requests of one method and route over a span of time."""

    method: str
    route: str
    requests: int
    server_errors: int  # 5xx
    client_errors: int  # 4xx
    latency_sum_seconds: float
    buckets: tuple[float, ...]  # per bucket of LATENCY_BUCKETS, then +Inf

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None

    def latency_ms(self, q: float) -> float | None:
        value = quantile(q, LATENCY_BUCKETS, self.buckets)
        return None if value is None else value * 1000

    @property
    def mean_ms(self) -> float | None:
        return self.latency_sum_seconds / self.requests * 1000 if self.requests else None


def merge(method: str, route: str, stats: Iterable[RouteStats]) -> RouteStats:
    items = list(stats)
    width = len(LATENCY_BUCKETS) + 1
    return RouteStats(
        method=method,
        route=route,
        requests=sum(s.requests for s in items),
        server_errors=sum(s.server_errors for s in items),
        client_errors=sum(s.client_errors for s in items),
        latency_sum_seconds=sum(s.latency_sum_seconds for s in items),
        buckets=tuple(sum(s.buckets[i] for s in items) for i in range(width)),
    )


class _Slot:
    """One second of one route's requests."""

    __slots__ = ("buckets", "client_errors", "count", "errors", "second", "total")

    def __init__(self) -> None:
        self.reset(-1)

    def reset(self, second: int) -> None:
        self.second = second
        self.count = 0
        self.errors = 0
        self.client_errors = 0
        self.total = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)


class _Window:
    """Per-second slots of the last WINDOW_SECONDS seconds, reused round the ring."""

    __slots__ = ("slots",)

    def __init__(self) -> None:
        self.slots = [_Slot() for _ in range(WINDOW_SECONDS)]

    def add(self, second: int, seconds: float, status: int) -> None:
        slot = self.slots[second % WINDOW_SECONDS]
        if slot.second != second:
            slot.reset(second)
        slot.count += 1
        if status >= 500:
            slot.errors += 1
        elif status >= 400:
            slot.client_errors += 1
        slot.total += seconds
        slot.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1

    def stats(self, method: str, route: str, now_second: int, span: int) -> RouteStats:
        oldest = now_second - span
        live = [s for s in self.slots if oldest < s.second <= now_second]
        width = len(LATENCY_BUCKETS) + 1
        return RouteStats(
            method=method,
            route=route,
            requests=sum(s.count for s in live),
            server_errors=sum(s.errors for s in live),
            client_errors=sum(s.client_errors for s in live),
            latency_sum_seconds=sum(s.total for s in live),
            buckets=tuple(float(sum(s.buckets[i] for s in live)) for i in range(width)),
        )


class _Series:
    __slots__ = ("by_status", "latency", "window")

    def __init__(self, latency: Histogram) -> None:
        self.latency = latency
        self.by_status: dict[int, Counter] = {}
        self.window = _Window()


class RequestMetrics:
    """The request metrics of one app (a registry of its own, so apps in one process stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.started = time.time()
        self.started_monotonic = time.monotonic()
        if multiprocess_dir() is None:
            # The process's CPU, memory, file descriptors and collections (per process only: in
            # multiprocess mode prometheus_client cannot add them up, so they are left out).
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self._requests = Counter(
            REQUESTS_METRIC,
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            LATENCY_METRIC,
            "Time from a request's arrival to the end of its response, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._series: dict[tuple[str, str], _Series] = {}

    # The hot path: called by the middleware on the event loop for every HTTP request.
    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED
        key = (scope.get("method") or "", route)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self._latency.labels(*key))
        counter = series.by_status.get(status)
        if counter is None:
            counter = series.by_status[status] = self._requests.labels(key[0], key[1], str(status))
        counter.inc()
        series.latency.observe(seconds)
        series.window.add(int(time.monotonic()), seconds, status)

    def window(self, span: int = WINDOW_SECONDS) -> list[RouteStats]:
        """Each route's requests of the last `span` seconds (at most WINDOW_SECONDS) in this process."""
        span = max(1, min(span, WINDOW_SECONDS))
        now = int(time.monotonic())
        # list(): the event loop may add a series while a worker thread reads.
        out = [s.window.stats(m, r, now, span) for (m, r), s in list(self._series.items())]
        return [s for s in out if s.requests]

    def exposition_registry(self) -> CollectorRegistry:
        """What /metrics exports: this app's registry, or in multiprocess mode every worker's files."""
        path = multiprocess_dir()
        if path is None:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        return registry

    def lifetime(self) -> list[RouteStats]:
        """Each route's requests since start, read back from the Prometheus series (so in multiprocess
        mode: of every worker)."""
        return lifetime_stats(self.exposition_registry())


def lifetime_stats(registry: CollectorRegistry) -> list[RouteStats]:
    counts: dict[tuple[str, str], list[int]] = {}
    buckets: dict[tuple[str, str], dict[float, float]] = {}
    sums: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        if family.name == REQUESTS_METRIC:
            for sample in family.samples:
                if not sample.name.endswith("_total"):
                    continue
                key = (sample.labels["method"], sample.labels["route"])
                acc = counts.setdefault(key, [0, 0, 0])
                status = int(sample.labels["status"])
                acc[0] += int(sample.value)
                if status >= 500:
                    acc[1] += int(sample.value)
                elif status >= 400:
                    acc[2] += int(sample.value)
        elif family.name == LATENCY_METRIC:
            for sample in family.samples:
                key = (sample.labels["method"], sample.labels["route"])
                if sample.name.endswith("_bucket"):
                    le = float(sample.labels["le"])
                    per = buckets.setdefault(key, {})
                    per[le] = per.get(le, 0.0) + sample.value
                elif sample.name.endswith("_sum"):
                    sums[key] = sums.get(key, 0.0) + sample.value
    out = []
    for key, (requests, errors, client_errors) in sorted(counts.items()):
        cumulative = [buckets.get(key, {}).get(b, 0.0) for b in (*LATENCY_BUCKETS, float("inf"))]
        per_bucket = [cumulative[0]] + [cumulative[i] - cumulative[i - 1] for i in range(1, len(cumulative))]
        out.append(
            RouteStats(
                method=key[0],
                route=key[1],
                requests=requests,
                server_errors=errors,
                client_errors=client_errors,
                latency_sum_seconds=sums.get(key, 0.0),
                buckets=tuple(per_bucket),
            )
        )
    return out
