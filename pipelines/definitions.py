"""The composition root: `dagster dev -m pipelines.definitions` loads `defs`."""

from __future__ import annotations

from dagster import Definitions, definitions, in_process_executor

from api.core.settings import Settings, get_settings
from pipelines.ingest import assets as ingest_assets
from pipelines.ingest import checks as ingest_checks
from pipelines.ingest import schedules as ingest_schedules
from pipelines.ingest.resources import build_resources
from pipelines.publish.assets import warehouse_snapshot


def build_definitions(settings: Settings, *, retries: bool = True) -> Definitions:
    """Everything Dagster shows, with resources from `settings`. Without `retries` a failed step fails
    the run at once (for a person watching it from the command line)."""
    ingest_job = ingest_schedules.ingest_job(ingest_schedules.RETRY if retries else None)
    return Definitions(
        assets=[*ingest_assets.assets, warehouse_snapshot],
        asset_checks=ingest_checks.checks,
        jobs=[ingest_job],
        schedules=[ingest_schedules.ingest_schedule(ingest_job)],
        resources=build_resources(settings),
        # DuckDB takes one writing process at a time: steps in separate processes would only queue on
        # the file lock.
        executor=in_process_executor,
    )


# Built when Dagster loads the module, not at import: importing (tests, `pipelines.run`) must not read
# the environment, or create data/ under whatever the working directory is.
@definitions
def defs() -> Definitions:
    return build_definitions(get_settings())
