"""The jobs (ingest alone; the whole refresh: ingest, dbt build, checks, publish) and the schedule."""

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
from pipelines.publish.assets import SNAPSHOT_ASSET

if TYPE_CHECKING:  # not exported by dagster's top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

INGEST_JOB = "ingest"
# Both jobs write the warehouse; the instance (dagster.yaml) runs one run with this tag at a time.
WRITER_TAGS = {"warehouse/writer": "true"}
REFRESH_JOB = "refresh"
# The ML assets' group (pipelines.ml.assets.GROUP), which the refresh leaves out.
ML_GROUP = "ml"
SCHEDULE = "refresh_every_15_minutes"
# A locked store or warehouse (a long write, another run past the lock wait) usually clears in seconds.
RETRY = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL)


def ingest_job(retry_policy: RetryPolicy | None = RETRY) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        INGEST_JOB,
        selection=AssetSelection.groups(GROUP) | AssetSelection.assets(SNAPSHOT_ASSET),
        op_retry_policy=retry_policy,
        tags=WRITER_TAGS,
        description="Load the store's events and entity tables into the warehouse's raw layer, check "
        "them, then publish the read snapshot (no dbt build).",
    )


def refresh_job(retry_policy: RetryPolicy | None = RETRY) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        REFRESH_JOB,
        # Everything but model training (pipelines/ml: the train_models job, hourly at most).
        selection=AssetSelection.all() - AssetSelection.groups(ML_GROUP),
        op_retry_policy=retry_policy,
        tags=WRITER_TAGS,
        description="Load the store into raw, check it (bad data stops here), build the dbt models and "
        "run their tests and the marts' checks, then publish the read snapshot.",
    )


def refresh_schedule(job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=SCHEDULE,
        job=job,
        cron_schedule="*/15 * * * *",
        execution_timezone="UTC",
        # Every change of the store writes an event, so the new-events sensor already refreshes within a
        # minute of any change: this is a fallback to turn on where sensors cannot run.
        default_status=DefaultScheduleStatus.STOPPED,
    )
