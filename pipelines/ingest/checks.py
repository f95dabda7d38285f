"""Checks on the loaded events: no duplicates, nothing lost."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from pipelines.ingest.assets import raw_events
from pipelines.ingest.extract import read_snapshot, scalar
from pipelines.ingest.resources import StoreResource, WarehouseResource
from warehouse.schema import EVENTS_STREAM


# Blocking: a duplicate would be counted twice by everything downstream, so nothing downstream runs.
@asset_check(asset=raw_events, blocking=True, description="Every event_id appears once in raw.events.")
def raw_events_unique_event_id(warehouse: WarehouseResource) -> AssetCheckResult:
    total, distinct = warehouse.rows("SELECT count(*), count(DISTINCT event_id) FROM raw.events")[0]
    return AssetCheckResult(
        passed=total == distinct, metadata={"rows": total, "duplicates": total - distinct}
    )


@asset_check(
    asset=raw_events,
    description="raw.events holds exactly as many events as the store had when the last load read it, "
    "and no more than the store has now.",
)
def raw_events_match_store_count(store: StoreResource, warehouse: WarehouseResource) -> AssetCheckResult:
    (loaded,) = warehouse.rows("SELECT count(*) FROM raw.events")[0]
    state = warehouse.rows(
        # A constant of ours, not input: the SQL stays the same on DuckDB and PostgreSQL.
        f"SELECT source_count, high_water_mark FROM meta.load_state WHERE stream = '{EVENTS_STREAM}'"  # noqa: S608
    )
    at_load, mark = state[0] if state else (None, 0)
    with store.engine() as engine, read_snapshot(engine) as src:
        now = int(scalar(src, "SELECT count(*) FROM events"))
    passed = at_load is not None and loaded == at_load and loaded <= now
    return AssetCheckResult(
        passed=passed,
        # A shortfall means events were lost (e.g. a writer committed later than the re-read window).
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "warehouse_rows": loaded,
            "store_rows_at_load": at_load if at_load is not None else -1,
            "store_rows_now": now,
            "high_water_mark": mark,
        },
    )


checks = [raw_events_unique_event_id, raw_events_match_store_count]
