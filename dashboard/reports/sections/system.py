"""System: the platform's state now. How fresh the warehouse is (the events stream and the table
snapshots: warehouse.marts.freshness, pipeline_loads), the pipeline's last runs and asset checks from the
Dagster instance of the data dir (pipelines.run.instance_for), the API's requests, errors and latency
per route from its GET /metrics (`api_metrics`), and the warehouse's size.

Current state, not a period: the date range and the shop, category and product filters do not apply.
For analysts and admins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from api.core.settings import Settings
from api.metrics.recorder import merge
from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.model import Cell, Chart, ChartKind, Column, Format, Metric, Report, Table, table
from dashboard.reports.sections import api_metrics
from warehouse import marts
from warehouse.duckdb import WarehouseUnavailable

RUN_LIMIT = 50
MEGABYTE = 1024 * 1024
# pipelines.run.dagster_home: <data_dir>/dagster, with the SQLite run and event storage in `storage`.
DAGSTER_DIR = "dagster"
NO_INSTANCE_NOTE = (
    "No pipeline runs are recorded for this data directory yet: runs started with `store pipeline` or "
    "from the Dagster UI (DAGSTER_HOME=<data_dir>/dagster) appear here."
)


def _age_minutes(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds() / 60)


# --- freshness ------------------------------------------------------------------------------------


def loads_tables(ctx: BuildContext) -> tuple[Table, Table]:
    streams, snapshots = marts.pipeline_loads(ctx.reader)
    stream_rows: list[list[Cell]] = [
        [
            s.stream,
            s.rows_total,
            s.rows_loaded,
            s.source_count,
            None if s.source_count is None else max(0, s.source_count - s.rows_total),
            s.high_water_mark,
            s.loaded_at,
            _age_minutes(ctx.now, s.loaded_at),
        ]
        for s in streams
    ]
    snapshot_rows: list[list[Cell]] = [
        [t.table_name, t.row_count, t.loaded_at, _age_minutes(ctx.now, t.loaded_at)] for t in snapshots
    ]
    return (
        table(
            "streams",
            "Incremental streams",
            [
                Column("stream", "Stream"),
                Column("rows_total", "Rows loaded", Format.integer),
                Column("rows_last_load", "Rows in the last load", Format.integer),
                Column("source_count", "Rows at the source", Format.integer),
                Column("lag", "Behind the source", Format.integer),
                Column("high_water_mark", "High-water mark", Format.integer),
                Column("loaded_at", "Loaded (UTC)", Format.datetime),
                Column("age_minutes", "Age (minutes)", Format.number),
            ],
            stream_rows,
            "Behind: rows the source had when the last load read it, minus the rows loaded.",
        ),
        table(
            "snapshots",
            "Table snapshots",
            [
                Column("table_name", "Table"),
                Column("row_count", "Rows", Format.integer),
                Column("loaded_at", "Loaded (UTC)", Format.datetime),
                Column("age_minutes", "Age (minutes)", Format.number),
            ],
            snapshot_rows,
        ),
    )


# --- the Dagster instance -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    run_id: str
    job: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class CheckRow:
    asset: str
    check: str
    passed: bool
    severity: str
    evaluated_at: datetime
    run_id: str
    description: str | None


def _stamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def dagster_history(settings: Settings, limit: int = RUN_LIMIT) -> tuple[list[RunRow], list[CheckRow]] | None:
    """The last `limit` runs, newest first, and each asset check's latest evaluation among them; None
    when no run was ever recorded in the data dir's instance (opening it would create one)."""
    home = (settings.data_dir / DAGSTER_DIR).resolve()
    if not (home / "storage").is_dir():
        return None
    # Imported here: Dagster and the pipeline definitions take seconds to import, and only this
    # section needs them.
    from dagster import DagsterEventType

    from pipelines.run import instance_for

    runs: list[RunRow] = []
    checks: dict[tuple[str, str], CheckRow] = {}
    with instance_for(settings) as instance:
        for record in instance.get_run_records(limit=limit):
            run = record.dagster_run
            runs.append(
                RunRow(
                    run.run_id,
                    run.job_name,
                    run.status.value,
                    _stamp(record.start_time),
                    _stamp(record.end_time),
                )
            )
            found = instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, ascending=False
            )
            for event_record in found.records:
                entry = event_record.event_log_entry
                if entry.dagster_event is None:
                    continue
                ev = entry.dagster_event.asset_check_evaluation_data
                key = (ev.asset_key.to_user_string(), ev.check_name)
                # Runs come newest first: the first evaluation seen of a check is its latest.
                checks.setdefault(
                    key,
                    CheckRow(
                        asset=key[0],
                        check=key[1],
                        passed=ev.passed,
                        severity=ev.severity.value,
                        evaluated_at=datetime.fromtimestamp(entry.timestamp, tz=UTC),
                        run_id=run.run_id,
                        description=ev.description,
                    ),
                )
    return runs, sorted(checks.values(), key=lambda c: (c.passed, c.asset, c.check))


def runs_table(runs: Sequence[RunRow]) -> Table:
    return table(
        "pipeline_runs",
        f"Pipeline runs (the last {RUN_LIMIT})",
        [
            Column("run_id", "Run"),
            Column("job", "Job"),
            Column("status", "Status"),
            Column("started_at", "Started (UTC)", Format.datetime),
            Column("ended_at", "Ended (UTC)", Format.datetime),
            Column("seconds", "Duration (s)", Format.number),
        ],
        [[r.run_id, r.job, r.status, r.started_at, r.ended_at, r.seconds] for r in runs],
    )


def checks_table(checks: Sequence[CheckRow]) -> Table:
    return table(
        "asset_checks",
        "Asset checks: latest evaluation",
        [
            Column("asset", "Asset"),
            Column("check", "Check"),
            Column("passed", "Passed"),
            Column("severity", "Severity"),
            Column("evaluated_at", "Evaluated (UTC)", Format.datetime),
            Column("run_id", "Run"),
            Column("description", "Result"),
        ],
        [[c.asset, c.check, c.passed, c.severity, c.evaluated_at, c.run_id, c.description] for c in checks],
        "Failed checks first. A failed WARN check does not stop the pipeline; an ERROR one stops what "
        "depends on it.",
    )


# --- the API --------------------------------------------------------------------------------------


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def api_table(scrape: api_metrics.Scrape) -> Table:
    routes = sorted(scrape.routes, key=lambda s: (-s.requests, s.route, s.method))
    return table(
        "api_routes",
        "API requests per route",
        [
            Column("endpoint", "Endpoint"),
            Column("method", "Method"),
            Column("route", "Route"),
            Column("requests", "Requests", Format.integer),
            Column("client_errors", "4xx", Format.integer),
            Column("server_errors", "5xx", Format.integer),
            Column("error_rate", "Error rate (5xx)", Format.ratio),
            Column("p50_ms", "p50 (ms)", Format.number),
            Column("p95_ms", "p95 (ms)", Format.number),
            Column("p99_ms", "p99 (ms)", Format.number),
            Column("mean_ms", "Mean (ms)", Format.number),
        ],
        [
            [
                f"{s.method} {s.route}",
                s.method,
                s.route,
                s.requests,
                s.client_errors,
                s.server_errors,
                s.error_rate,
                _round(s.latency_ms(0.5)),
                _round(s.latency_ms(0.95)),
                _round(s.latency_ms(0.99)),
                _round(s.mean_ms),
            ]
            for s in routes
        ],
        "Since the API started (its counters, summed over workers), from its histogram buckets: a "
        "percentile is interpolated within its bucket."
        if scrape.ok
        else scrape.unreachable_note(),
    )


# --- the warehouse --------------------------------------------------------------------------------


def size_table(settings: Settings) -> tuple[Table, float | None]:
    try:
        size = marts.warehouse_size(settings)
    except WarehouseUnavailable:
        size = None
    rows: list[list[Cell]] = []
    if size is not None:
        rows.append(
            [
                "read snapshot" if size.target == marts.DUCKDB else "database",
                size.bytes / MEGABYTE,
                size.bytes,
            ]
        )
        if size.writer_bytes is not None:
            rows.append(["writer file", size.writer_bytes / MEGABYTE, size.writer_bytes])
    out = table(
        "warehouse_size",
        "Warehouse size" + (f" ({size.target})" if size else ""),
        [
            Column("part", "Part"),
            Column("megabytes", "MB", Format.number),
            Column("bytes", "Bytes", Format.integer),
        ],
        rows,
    )
    return out, None if size is None else size.bytes / MEGABYTE


# --- the report -----------------------------------------------------------------------------------


def build(ctx: BuildContext) -> Report:
    fresh = marts.freshness(ctx.reader, ctx.settings)
    streams, snapshots = loads_tables(ctx)
    history = dagster_history(ctx.settings)
    runs, checks = history if history is not None else ([], [])
    scrape = api_metrics.scrape(ctx.settings)
    sizes, megabytes = size_table(ctx.settings)
    overall = merge("*", "*", scrape.routes)
    lag = sum(int(v) for v in streams.values("lag") if isinstance(v, int))
    notes = ["The state now: the date range and the shop, category and product filters do not apply."]
    if history is None:
        notes.append(NO_INSTANCE_NOTE)
    if not scrape.ok:
        notes.append(scrape.unreachable_note())
    metrics = [
        Metric(
            "Minutes since the last load",
            _age_minutes(ctx.now, fresh.loaded_at),
            Format.number,
            help="The newest committed load of the events stream or of any table snapshot.",
        ),
        Metric("Events behind the store", lag, help="At the last load's read of the store."),
        Metric(
            "Failed runs",
            sum(1 for r in runs if r.status == "FAILURE"),
            help=f"Among the last {RUN_LIMIT} pipeline runs.",
        ),
        Metric("Failing checks", sum(1 for c in checks if not c.passed), help="At their latest evaluation."),
        Metric("API requests", overall.requests if scrape.ok else None, help="Since the API started."),
        Metric(
            "API error rate (5xx)",
            overall.error_rate if scrape.ok else None,
            Format.ratio,
            help="Since start.",
        ),
        Metric(
            "API p95 latency (ms)",
            _round(overall.latency_ms(0.95)) if scrape.ok else None,
            Format.number,
            help="Over every route, since the API started.",
        ),
        Metric("Warehouse size (MB)", None if megabytes is None else round(megabytes, 2), Format.number),
    ]
    return Report(
        section=SECTION.slug,
        title=SECTION.title,
        subtitle=f"As of {ctx.now:%Y-%m-%d %H:%M} UTC",
        generated_at=ctx.now,
        freshness=ctx.freshness_text(),
        metrics=tuple(metrics),
        tables=(streams, snapshots, runs_table(runs), checks_table(checks), api_table(scrape), sizes),
        charts=(
            Chart(
                "api_latency",
                "API latency per route",
                "api_routes",
                "endpoint",
                ("p50_ms", "p95_ms", "p99_ms"),
                ChartKind.bar,
                y_title="ms",
            ),
            Chart(
                "api_requests",
                "API requests per route",
                "api_routes",
                "endpoint",
                ("requests",),
                ChartKind.bar,
            ),
            Chart(
                "pipeline_runs",
                "Pipeline run durations",
                "pipeline_runs",
                "started_at",
                ("seconds",),
                ChartKind.bar,
                series="job",
                y_title="Seconds",
            ),
            Chart(
                "snapshot_rows",
                "Rows per table snapshot",
                "snapshots",
                "table_name",
                ("row_count",),
                ChartKind.bar,
            ),
        ),
        notes=tuple(notes),
    )


SECTION = SectionSpec(slug="system", title="System", build=build, platform_only=True)
