"""The read snapshot: what the API and the dashboard open, swapped in atomically after the loads."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

import time

from dagster import AssetExecutionContext, MaterializeResult, asset

from pipelines.ingest.assets import assets as ingest_assets
from pipelines.ingest.resources import WarehouseResource


@asset(
    group_name="publish",
    kinds={"duckdb"},
    deps=ingest_assets,
    description="Copy of the warehouse published for readers (<name>.read.duckdb), so that they never "
    "meet the writer's file lock.",
)
def warehouse_snapshot(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult[None]:
    started = time.perf_counter()
    with warehouse.connect() as wh:
        path = warehouse.publish(wh)
    seconds = time.perf_counter() - started
    context.log.info(f"published {path} in {seconds:.2f}s")
    return MaterializeResult(
        metadata={"path": str(path), "bytes": path.stat().st_size, "seconds": round(seconds, 3)}
    )
