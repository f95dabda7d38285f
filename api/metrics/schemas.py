"""GET /api/metrics answer (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime

from api.core.schemas import ResponseModel


class LatencyOut(ResponseModel):
    """Milliseconds, estimated from the latency histogram's buckets (linear within a bucket)."""

    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    mean: float | None


class RouteOut(ResponseModel):
    method: str
    route: str
    requests: int
    rate_per_second: float | None  # over the window; null for lifetime figures
    server_errors: int
    client_errors: int
    error_rate: float | None  # 5xx / requests
    latency_ms: LatencyOut


class RequestsOut(ResponseModel):
    """`window`: this process's last `seconds` seconds; `lifetime`: since start, of every worker
    process in Prometheus multiprocess mode, else of this one."""

    seconds: float | None
    scope: str
    requests: int
    rate_per_second: float | None
    server_errors: int
    client_errors: int
    error_rate: float | None
    latency_ms: LatencyOut
    routes: list[RouteOut]


class ProcessOut(ResponseModel):
    pid: int
    started_at: datetime
    uptime_seconds: float
    multiprocess: bool


class StreamOut(ResponseModel):
    stream: str
    high_water_mark: int
    source_count: int | None
    rows_total: int
    rows_loaded: int
    loaded_at: datetime | None
    lag_rows: int | None  # source rows not loaded yet when the last load read the source


class TableOut(ResponseModel):
    table: str
    rows: int
    loaded_at: datetime | None


class PipelineOut(ResponseModel):
    """`status`: ok (loaded), never_loaded (built but no load committed), or unavailable (no
    warehouse yet, or unreachable: see `message`)."""

    status: str
    message: str | None
    loaded_at: datetime | None
    age_seconds: float | None
    events_loaded_at: datetime | None
    published_at: datetime | None
    streams: list[StreamOut]
    tables: list[TableOut]


class WarehouseOut(ResponseModel):
    """`sizeBytes`: the read snapshot (DuckDB) or the database (PostgreSQL); `writerSizeBytes`: the
    DuckDB file the pipeline writes."""

    target: str
    size_bytes: int | None
    writer_size_bytes: int | None


class SystemMetricsOut(ResponseModel):
    process: ProcessOut
    window: RequestsOut
    lifetime: RequestsOut
    pipeline: PipelineOut
    warehouse: WarehouseOut
