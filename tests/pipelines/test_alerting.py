"""A failed pipeline run reaches the store's admins as a notification, through the store's own hub."""

from __future__ import annotations

from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context

from api.core.settings import Environment, Settings
from pipelines.alerting.resources import AdminNotifier
from pipelines.alerting.sensors import SENSOR, notify_admins_of_failed_runs
from pipelines.run import run_pipeline
from tests.conftest import TEST_SECRET
from tests.helpers import Api, data


def _failing_settings(tmp_path: Path) -> Settings:
    """A pipeline pointed at a store that was never migrated: every load fails."""
    return Settings(
        environment=Environment.test,
        data_dir=tmp_path / "broken",
        database_url=f"sqlite:///{tmp_path / 'not_migrated.db'}",
        warehouse_path=tmp_path / "broken" / "warehouse.duckdb",
        jwt_secret=TEST_SECRET,
        _env_file=None,
    )


def test_a_failed_run_notifies_every_active_admin_in_the_store(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    admin, other_admin, buyer = api.user("admin"), api.user("admin"), api.user("buyer")

    with DagsterInstance.ephemeral() as instance:
        summary = run_pipeline(_failing_settings(tmp_path), instance=instance, job="ingest")
        assert not summary.success
        run = instance.get_run_by_id(summary.run_id)
        assert run is not None
        (failure,) = [
            r.get_dagster_event()
            for r in instance.all_logs(summary.run_id, of_type=DagsterEventType.RUN_FAILURE)
        ]
        with build_run_status_sensor_context(
            sensor_name=SENSOR,
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=run,
            # The store the admins use, not the one the failed run could not read.
            resources={"admin_notifier": AdminNotifier(database_url=settings.database_url)},
        ) as context:
            notify_admins_of_failed_runs(context.for_run_failure())

    failed_steps = {f.split(":")[0] for f in summary.failures}
    assert "raw_events" in failed_steps

    for who in (admin, other_admin):
        notes = data(api.client.get("/api/notifications", headers=who.headers))
        (note,) = [n for n in notes if n["type"] == "system"]
        assert note["title"] == "Pipeline run failed: ingest"
        # Each failed step with its error, as the run's own summary has them.
        assert set(note["body"].splitlines()) == set(summary.failures)
        assert note["data"]["runId"] == summary.run_id
        assert note["isRead"] is False
    assert [
        n for n in data(api.client.get("/api/notifications", headers=buyer.headers)) if n["type"] == "system"
    ] == []
    # Committed through the store's service: the outbox holds the matching events.
    created = [e for e in api.events("notification.created") if e.payload["type"] == "system"]
    assert sorted(e.payload["userId"] for e in created) == sorted([admin.id, other_admin.id])
