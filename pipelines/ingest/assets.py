"""Extract-load assets: the outbox events (incremental) and the entity tables (snapshots)."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

from datetime import UTC, datetime, timedelta

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    FreshnessPolicy,
    MaterializeResult,
    asset,
)

from pipelines.ingest.resources import StoreResource, WarehouseResource
from pipelines.ingest.tables import SNAPSHOT_TABLES

GROUP = "ingest"
LOG_EVERY_ROWS = 500_000
# The new-events sensor loads within a minute of any activity: a quiet quarter of an hour is worth a
# look (a quiet store, or the sensor stopped), an hour means the loads stopped or keep failing.
RAW_EVENTS_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(hours=1), warn_window=timedelta(minutes=15)
)


@asset(
    group_name=GROUP,
    kinds={"duckdb", "postgres"},
    freshness_policy=RAW_EVENTS_FRESHNESS,
    description="The store's outbox `events`, appended incrementally to raw.events (deduplicated on "
    "event_id; the high-water mark advances in the same transaction as the rows).",
)
def raw_events(
    context: AssetExecutionContext, store: StoreResource, warehouse: WarehouseResource
) -> MaterializeResult[None]:
    logged = [0]

    def on_batch(rows_read: int) -> None:
        if rows_read - logged[0] >= LOG_EVERY_ROWS:
            logged[0] = rows_read
            context.log.info(f"read {rows_read:,} events")

    with warehouse.target(store.database_url) as target:
        result = target.load_events(
            now=datetime.now(UTC),
            batch_rows=store.batch_rows,
            lookback_ids=store.lookback_ids,
            on_batch=on_batch,
        )
    context.log.info(
        f"loaded {result.rows_loaded:,} new events (read {result.rows_read:,}) in {result.seconds:.2f}s"
    )
    return MaterializeResult(
        metadata={
            "rows_loaded": result.rows_loaded,
            "rows_read": result.rows_read,
            "rows_total": result.rows_total,
            "source_count": result.source_count,
            "previous_high_water_mark": result.previous_mark,
            "high_water_mark": result.high_water_mark,
            "seconds": round(result.seconds, 3),
            "rows_per_second": round(result.rows_per_second),
        }
    )


def snapshot_asset(table: str) -> AssetsDefinition:
    @asset(
        name=f"raw_{table}",
        group_name=GROUP,
        kinds={"duckdb", "postgres"},
        description=f"Snapshot of the store's `{table}` table in raw.{table}, replaced atomically.",
    )
    def _snapshot(
        context: AssetExecutionContext, store: StoreResource, warehouse: WarehouseResource
    ) -> MaterializeResult[None]:
        with warehouse.target(store.database_url) as target:
            result = target.load_snapshot(table, now=datetime.now(UTC), batch_rows=store.batch_rows)
        context.log.info(f"raw.{table}: {result.rows:,} rows in {result.seconds:.2f}s")
        return MaterializeResult(metadata={"rows": result.rows, "seconds": round(result.seconds, 3)})

    return _snapshot


snapshot_assets = [snapshot_asset(table) for table in SNAPSHOT_TABLES]
assets = [raw_events, *snapshot_assets]
