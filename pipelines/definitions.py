"""The composition root: `dagster dev -m pipelines.definitions` loads `defs`."""

from __future__ import annotations

from dagster import (
    AssetKey,
    Definitions,
    RetryPolicy,
    definitions,
    in_process_executor,
)

from api.core.settings import Settings, get_settings
from pipelines.alerting import sensors as alerting_sensors
from pipelines.alerting.resources import AdminNotifier
from pipelines.ingest import assets as ingest_assets
from pipelines.ingest import checks as ingest_checks
from pipelines.ingest import schedules as ingest_schedules
from pipelines.ingest import sensors as ingest_sensors
from pipelines.ingest.resources import build_resources as ingest_resources
from pipelines.ml import assets as ml_assets
from pipelines.ml import schedules as ml_schedules
from pipelines.ml.resources import build_resources as ml_resources
from pipelines.publish.assets import build_warehouse_snapshot
from pipelines.quality.checks import suite_checks
from pipelines.quality.rules import Suite
from pipelines.quality.suites import MART_SUITES, RAW_SUITES
from pipelines.reports import definitions as report_definitions
from pipelines.reports import jobs as report_jobs
from pipelines.reports import schedules as report_schedules
from pipelines.reports.resources import build_resources as report_resources
from pipelines.transform.assets import build_dbt_assets
from pipelines.transform.checks import with_mart_freshness
from pipelines.transform.project import dbt_target, prepare_manifest, settings_dbt_env
from pipelines.transform.resources import build_resources as transform_resources

# dbt fails at once on a DuckDB file another process is writing: one retry after the other run's
# step, not three with backoff (a failing dbt test fails again, and the ingest already waited).
DBT_RETRY = RetryPolicy(max_retries=1, delay=30)


def _present(suites: tuple[Suite, ...], keys: set[AssetKey]) -> list[Suite]:
    """The suites whose assets (and the assets they read) this project defines."""
    return [s for s in suites if all(AssetKey.from_user_string(k) in keys for k in (s.asset, *s.reads))]


def build_definitions(settings: Settings, *, retries: bool = True, echo_dbt_logs: bool = True) -> Definitions:
    """Everything Dagster shows, with resources from `settings`. Without `retries` a failed step fails
    the run at once, and without `echo_dbt_logs` dbt's log lines go to a file instead of stdout (both
    for a person watching the run from the command line).

    Parses the dbt project (once per change of its files) to know its models."""
    manifest = prepare_manifest(dbt_target(settings), settings_dbt_env(settings))
    dbt = with_mart_freshness(
        build_dbt_assets(manifest, retry_policy=DBT_RETRY if retries else RetryPolicy(max_retries=0))
    )
    # The ML assets write the ml schema: the snapshot follows them in the train job (the refresh job
    # leaves them out, and a dependency outside a job's selection does not hold its steps back).
    snapshot = build_warehouse_snapshot([*ingest_assets.assets, dbt, *ml_assets.assets])
    keys = {*(k for a in ingest_assets.assets for k in a.keys), *dbt.keys}

    retry = ingest_schedules.RETRY if retries else None
    ingest_job = ingest_schedules.ingest_job(retry)
    refresh_job = ingest_schedules.refresh_job(retry)
    train_job = ml_schedules.train_job()
    # The scheduled reports (reports.yml): a bad file fails loading here, naming the report and field.
    reports = report_definitions.load(settings.reports_file)
    report_job = report_jobs.send_report_job(reports.retry.policy() if retries else None)
    return Definitions(
        assets=[*ingest_assets.assets, dbt, *ml_assets.assets, snapshot],
        asset_checks=[
            *ingest_checks.checks,
            *suite_checks(_present(RAW_SUITES, keys)),
            *suite_checks(_present(MART_SUITES, keys)),
        ],
        jobs=[ingest_job, refresh_job, train_job, report_job],
        schedules=[
            ingest_schedules.refresh_schedule(refresh_job),
            ml_schedules.train_schedule(train_job),
            *report_schedules.report_schedules(reports.reports, report_job),
        ],
        sensors=[
            *ingest_sensors.sensors,
            *alerting_sensors.sensors,
        ],
        resources={
            **ingest_resources(settings),
            **transform_resources(settings, echo_logs=echo_dbt_logs),
            **ml_resources(settings),
            **report_resources(settings),
            "admin_notifier": AdminNotifier(database_url=settings.database_url),
        },
        # DuckDB takes one writing process at a time (dbt included): steps in separate processes would
        # only queue on the file lock.
        executor=in_process_executor,
    )


# Built when Dagster loads the module, not at import: importing (tests, `pipelines.run`) must not read
# the environment, or create data/ under whatever the working directory is.
@definitions
def defs() -> Definitions:
    return build_definitions(get_settings())
