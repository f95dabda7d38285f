"""The read snapshot: what the API and the dashboard open, swapped in atomically after the loads and
the dbt build, so readers see new marts whole or not at all."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

import time
from collections.abc import Iterable

from dagster import AssetExecutionContext, AssetKey, AssetsDefinition, MaterializeResult, asset

from pipelines.ingest.resources import WarehouseResource

SNAPSHOT_ASSET = "warehouse_snapshot"


def build_warehouse_snapshot(deps: Iterable[AssetsDefinition | AssetKey]) -> AssetsDefinition:
    """The publish step, downstream of `deps` (every asset that writes the warehouse): it runs after
    all of them, and not at all when one of them failed or a blocking check on one failed."""

    @asset(
        name=SNAPSHOT_ASSET,
        group_name="publish",
        kinds={"duckdb"},
        deps=list(deps),
        description="Copy of the DuckDB warehouse published for readers (<name>.read.duckdb), so that "
        "they never meet the writer's file lock. Nothing to do on a PostgreSQL warehouse: readers "
        "read it directly, each query seeing committed data only.",
    )
    def warehouse_snapshot(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> MaterializeResult[None]:
        started = time.perf_counter()
        # The store is not read here: the target only needs a URL to be built.
        with warehouse.target(store_url="") as target:
            path = target.publish()
        seconds = time.perf_counter() - started
        if path is None:
            context.log.info("PostgreSQL warehouse: readers see each commit, nothing to publish")
            return MaterializeResult(metadata={"target": "postgres"})
        context.log.info(f"published {path} in {seconds:.2f}s")
        return MaterializeResult(
            metadata={
                "target": "duckdb",
                "path": str(path),
                "bytes": path.stat().st_size,
                "seconds": round(seconds, 3),
            }
        )

    return warehouse_snapshot
