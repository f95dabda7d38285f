"""The system metrics: request rates, latency and errors per route (`api.metrics.recorder`), and the
pipeline's freshness and the warehouse's size (`warehouse.marts`), as JSON for GET /api/metrics and
as Prometheus series for GET /metrics.

Who may read them: GET /api/metrics needs an analyst or admin. GET /metrics is for a Prometheus
scraper: open by default (keep it on a private network), refused with 404 when the setting
`metrics_enabled` is false, and, when `metrics_token` is set, only with `Authorization: Bearer <token>`
(Prometheus' `authorization` scrape option)."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from api import __version__
from api.core.settings import Settings
from api.metrics.recorder import WINDOW_SECONDS, RequestMetrics, RouteStats, merge, multiprocess_dir
from api.metrics.schemas import (
    LatencyOut,
    PipelineOut,
    ProcessOut,
    RequestsOut,
    RouteOut,
    StreamOut,
    SystemMetricsOut,
    TableOut,
    WarehouseOut,
)
from warehouse import marts
from warehouse.duckdb import WarehouseUnavailable

log = structlog.get_logger("api.metrics")


# --- settings ---------------------------------------------------------------------------------------


def metrics_enabled(settings: Settings) -> bool:
    return settings.metrics_enabled


def metrics_token(settings: Settings) -> str | None:
    return settings.metrics_token.get_secret_value() or None if settings.metrics_token else None


def token_matches(expected: str, authorization: str | None) -> bool:
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


# --- requests -------------------------------------------------------------------------------------


def _latency(stats: RouteStats) -> LatencyOut:
    def ms(q: float) -> float | None:
        value = stats.latency_ms(q)
        return None if value is None else round(value, 3)

    mean = stats.mean_ms
    return LatencyOut(
        p50=ms(0.5), p90=ms(0.9), p95=ms(0.95), p99=ms(0.99), mean=None if mean is None else round(mean, 3)
    )


def _rate(requests: int, seconds: float | None) -> float | None:
    return round(requests / seconds, 4) if seconds else None


def requests_out(stats: Sequence[RouteStats], *, seconds: float | None, scope: str) -> RequestsOut:
    everything = merge("*", "*", stats)
    routes = sorted(stats, key=lambda s: (-s.requests, s.route, s.method))
    return RequestsOut(
        seconds=None if seconds is None else round(seconds, 3),
        scope=scope,
        requests=everything.requests,
        rate_per_second=_rate(everything.requests, seconds),
        server_errors=everything.server_errors,
        client_errors=everything.client_errors,
        error_rate=everything.error_rate,
        latency_ms=_latency(everything),
        routes=[
            RouteOut(
                method=s.method,
                route=s.route,
                requests=s.requests,
                rate_per_second=_rate(s.requests, seconds),
                server_errors=s.server_errors,
                client_errors=s.client_errors,
                error_rate=s.error_rate,
                latency_ms=_latency(s),
            )
            for s in routes
        ],
    )


# --- the pipeline and the warehouse ---------------------------------------------------------------


def pipeline_out(settings: Settings, now: datetime) -> PipelineOut:
    try:
        with marts.open_marts(settings) as reader:
            fresh = marts.freshness(reader, settings, marts=False)
            streams, tables = marts.pipeline_loads(reader)
    except WarehouseUnavailable as exc:
        return PipelineOut(
            status="unavailable",
            message=str(exc),
            loaded_at=None,
            age_seconds=None,
            events_loaded_at=None,
            published_at=None,
            streams=[],
            tables=[],
        )
    age = fresh.age_seconds(now)
    return PipelineOut(
        status="ok" if fresh.loaded_at is not None else "never_loaded",
        message=None,
        loaded_at=fresh.loaded_at,
        age_seconds=None if age is None else round(age, 3),
        events_loaded_at=fresh.events_loaded_at,
        published_at=fresh.published_at,
        streams=[
            StreamOut(
                stream=s.stream,
                high_water_mark=s.high_water_mark,
                source_count=s.source_count,
                rows_total=s.rows_total,
                rows_loaded=s.rows_loaded,
                loaded_at=s.loaded_at,
                lag_rows=None if s.source_count is None else max(0, s.source_count - s.rows_total),
            )
            for s in streams
        ],
        tables=[TableOut(table=t.table_name, rows=t.row_count, loaded_at=t.loaded_at) for t in tables],
    )


def warehouse_out(settings: Settings) -> WarehouseOut:
    target = marts.POSTGRES if settings.warehouse_url else marts.DUCKDB
    try:
        size = marts.warehouse_size(settings)
    except WarehouseUnavailable:
        return WarehouseOut(target=target, size_bytes=None, writer_size_bytes=None)
    return WarehouseOut(target=size.target, size_bytes=size.bytes, writer_size_bytes=size.writer_bytes)


def system_metrics(recorder: RequestMetrics, settings: Settings) -> SystemMetricsOut:
    now = datetime.now(UTC)
    uptime = time.monotonic() - recorder.started_monotonic
    span = min(float(WINDOW_SECONDS), max(uptime, 1.0))
    multiprocess = multiprocess_dir() is not None
    return SystemMetricsOut(
        process=ProcessOut(
            pid=os.getpid(),
            started_at=datetime.fromtimestamp(recorder.started, tz=UTC),
            uptime_seconds=round(uptime, 3),
            multiprocess=multiprocess,
        ),
        window=requests_out(recorder.window(), seconds=span, scope="process"),
        lifetime=requests_out(
            recorder.lifetime(), seconds=None, scope="all_processes" if multiprocess else "process"
        ),
        pipeline=pipeline_out(settings, now),
        warehouse=warehouse_out(settings),
    )


# --- Prometheus -----------------------------------------------------------------------------------


class WarehouseCollector(Collector):
    """The warehouse's freshness and size as gauges, read when scraped (a few milliseconds)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "up": GaugeMetricFamily(
                "store_warehouse_up", "1 if the warehouse could be read (built and reachable), else 0"
            ),
            "loaded": GaugeMetricFamily(
                "store_warehouse_last_load_timestamp_seconds",
                "Unix time of the pipeline's last committed load",
            ),
            "age": GaugeMetricFamily(
                "store_warehouse_load_age_seconds", "Seconds since the pipeline's last committed load"
            ),
            "size": GaugeMetricFamily(
                "store_warehouse_size_bytes",
                "Bytes of the warehouse: the read snapshot and the writer's file (DuckDB), or the database",
                labels=["file"],
            ),
            "rows": GaugeMetricFamily(
                "store_warehouse_rows",
                "Rows loaded per raw table (events: all loaded so far)",
                labels=["table"],
            ),
        }

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Names without samples: registering the collector must not read the warehouse.
        return list(self._families().values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        try:
            self._fill(families)
        except WarehouseUnavailable:
            families["up"].add_metric([], 0)
        except Exception:  # a scrape reports the warehouse as down rather than failing whole
            log.exception("warehouse_metrics_failed")
            families["up"].add_metric([], 0)
        yield from families.values()

    def _fill(self, families: dict[str, GaugeMetricFamily]) -> None:
        with marts.open_marts(self.settings) as reader:
            fresh = marts.freshness(reader, self.settings, marts=False)
            streams, tables = marts.pipeline_loads(reader)
        size = marts.warehouse_size(self.settings)
        families["up"].add_metric([], 1)
        if fresh.loaded_at is not None:
            families["loaded"].add_metric([], fresh.loaded_at.timestamp())
            age = fresh.age_seconds(datetime.now(UTC))
            families["age"].add_metric([], age or 0.0)
        if size.target == marts.DUCKDB:
            families["size"].add_metric(["snapshot"], size.bytes)
            if size.writer_bytes is not None:
                families["size"].add_metric(["writer"], size.writer_bytes)
        else:
            families["size"].add_metric(["database"], size.bytes)
        for s in streams:
            families["rows"].add_metric([s.stream], s.rows_total)
        for t in tables:
            families["rows"].add_metric([t.table_name], t.row_count)


class _Proxy(Collector):
    """Another registry's metrics, inside a registry built for one scrape."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.registry.collect()  # type: ignore[misc]


class _Info(Collector):
    def collect(self) -> Iterator[InfoMetricFamily]:
        yield InfoMetricFamily("store_api", "The store API's version", value={"version": __version__})


def scrape_registry(recorder: RequestMetrics, warehouse: WarehouseCollector) -> CollectorRegistry:
    """Everything GET /metrics exports, for one scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Proxy(recorder.exposition_registry()))
    registry.register(_Info())
    registry.register(warehouse)
    return registry
