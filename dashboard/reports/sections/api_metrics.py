"""The API's own request counters, read from its Prometheus endpoint (GET /metrics) for the Security and
System reports: requests by method, route template and status, and the latency histogram per route.

They are counters since each API process started (summed over workers in multiprocess mode), not the
report's date range: the API keeps no history, a Prometheus server would. An API that cannot be reached
gives an empty scrape with the reason, never an exception: a report must build without it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from api.core.settings import Settings
from api.metrics.recorder import REQUESTS_METRIC, RouteStats, lifetime_stats

TIMEOUT_SECONDS = 2.0
PATH = "/metrics"


@dataclass(frozen=True)
class StatusCount:
    method: str
    route: str
    status: int
    requests: int


@dataclass(frozen=True)
class Scrape:
    url: str
    routes: tuple[RouteStats, ...] = ()  # per method and route, with latency buckets
    statuses: tuple[StatusCount, ...] = ()  # per method, route and status code
    error: str | None = None  # why there is nothing: unreachable, refused, unreadable

    @property
    def ok(self) -> bool:
        return self.error is None

    def count(self, *statuses: int) -> int:
        wanted = set(statuses)
        return sum(s.requests for s in self.statuses if s.status in wanted)

    def unreachable_note(self) -> str:
        return f"The API's metrics at {self.url} could not be read ({self.error}): request counts are empty."


class _Parsed(Collector):
    """A collector that hands back already parsed families, so `lifetime_stats` (the API's own reading of
    its series) adds them up exactly as GET /api/metrics does."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def metrics_url(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/") + PATH


def scrape(settings: Settings, *, timeout: float = TIMEOUT_SECONDS) -> Scrape:
    url = metrics_url(settings)
    headers = {}
    if settings.metrics_token is not None and settings.metrics_token.get_secret_value():
        headers["Authorization"] = f"Bearer {settings.metrics_token.get_secret_value()}"
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return Scrape(url, error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if response.status_code != 200:
        return Scrape(url, error=f"HTTP {response.status_code}")
    return parse(url, response.text)


def parse(url: str, text: str) -> Scrape:
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        return Scrape(url, error=f"unreadable exposition: {exc}")
    statuses = [
        StatusCount(s.labels["method"], s.labels["route"], int(s.labels["status"]), int(s.value))
        for f in families
        if f.name == REQUESTS_METRIC
        for s in f.samples
        if s.name.endswith("_total")
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Parsed(families))
    return Scrape(
        url,
        routes=tuple(lifetime_stats(registry)),
        statuses=tuple(sorted(statuses, key=lambda s: (s.route, s.method, s.status))),
    )
