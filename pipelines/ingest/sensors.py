"""Every minute: new events in the store (its newest event id past the warehouse's high-water mark)
start a refresh run, which loads them and rebuilds what they feed."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from pipelines.ingest.resources import StoreResource, WarehouseResource
from pipelines.ingest.schedules import REFRESH_JOB

SENSOR = "refresh_on_new_events"
INTERVAL_SECONDS = 60
# A run not yet finished will load whatever arrived meanwhile, or the next tick will.
_IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@sensor(
    name=SENSOR,
    job_name=REFRESH_JOB,
    minimum_interval_seconds=INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests a refresh run when the store holds events past the warehouse's high-water mark "
    "and no refresh is already queued or running.",
)
def refresh_on_new_events(
    context: SensorEvaluationContext, store: StoreResource, warehouse: WarehouseResource
) -> RunRequest | SkipReason:
    newest = store.max_event_id()
    mark = warehouse.high_water_mark() or 0
    if newest <= mark:
        return SkipReason(f"no new events (store {newest}, warehouse {mark})")
    running = context.instance.get_run_ids(RunsFilter(job_name=REFRESH_JOB, statuses=_IN_FLIGHT), limit=1)
    if running:
        return SkipReason(f"refresh run {running[0]} is in flight; it or the next tick loads the rest")
    # The key makes a second request for the same newest event a no-op (a tick retried, a run failed
    # and nothing new arrived: the failure sensor reported it, a rerun is a person's call).
    return RunRequest(
        run_key=f"events-up-to-{newest}",
        tags={"store/newest_event_id": str(newest), "warehouse/high_water_mark": str(mark)},
    )


sensors: list[SensorDefinition] = [refresh_on_new_events]
