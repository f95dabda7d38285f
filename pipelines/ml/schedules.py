"""The training job (every ML asset, then the publish so readers see the new ml tables) and its hourly
schedule. The refresh job leaves the ML group out: training every minute would cost more than it
tells."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dagster import AssetSelection, DefaultScheduleStatus, ScheduleDefinition, define_asset_job

from pipelines.ingest.schedules import WRITER_TAGS
from pipelines.ml.assets import GROUP
from pipelines.publish.assets import SNAPSHOT_ASSET

if TYPE_CHECKING:  # not exported by dagster's top level
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

TRAIN_JOB = "train_models"
SCHEDULE = "train_models_hourly"
# Seed 000: `updateInterval: '1h'`.
CRON = "0 * * * *"


def ml_selection() -> AssetSelection:
    return AssetSelection.groups(GROUP)


def train_job() -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        TRAIN_JOB,
        selection=ml_selection() | AssetSelection.assets(SNAPSHOT_ASSET),
        # It writes the warehouse (the ml schema): one writer run at a time, as the refresh.
        tags=WRITER_TAGS,
        description="Train every model on the warehouse (forecast, prices, segments, recommender, fraud), "
        "check each against its baseline, save it to the registry, write the ml tables and the store's "
        "recommendations, compute the insights, then publish the read snapshot.",
    )


def train_schedule(job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    return ScheduleDefinition(
        name=SCHEDULE,
        job=job,
        cron_schedule=CRON,
        execution_timezone="UTC",
        # Off until turned on: a fresh install has no warehouse to train on.
        default_status=DefaultScheduleStatus.STOPPED,
    )
