"""The ingest job and its schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import (
    AssetSelection,
    Backoff,
    DefaultScheduleStatus,
    RetryPolicy,
    ScheduleDefinition,
    define_asset_job,
)

from pipelines.ingest.assets import GROUP
from pipelines.publish.assets import warehouse_snapshot

if TYPE_CHECKING:  # not exported by dagster's top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

INGEST_JOB = "ingest"
SCHEDULE = "ingest_every_15_minutes"
# A locked store or warehouse (a long write, another run past the lock wait) usually clears in seconds.
RETRY = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL)


def ingest_job(retry_policy: RetryPolicy | None = RETRY) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.groups(GROUP) | AssetSelection.assets(warehouse_snapshot),
        op_retry_policy=retry_policy,
        description="Load the store's events and entity tables into the warehouse, then publish the "
        "read snapshot.",
    )


def ingest_schedule(job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=SCHEDULE,
        job=job,
        cron_schedule="*/15 * * * *",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
    )
