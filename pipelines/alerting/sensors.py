"""A failed run of any job tells the store's admins which step failed and why."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# resources) at decoration time and needs them as real types.

from dagster import DefaultSensorStatus, RunFailureSensorContext, SensorDefinition, run_failure_sensor

from pipelines.alerting.resources import AdminNotifier

SENSOR = "notify_admins_of_failed_runs"
# The notification's body stays readable on a phone; the run's page holds the whole story.
_MAX_ERROR_CHARS = 500


def failure_lines(context: RunFailureSensorContext) -> list[str]:
    """`step: innermost error` for each failed step, or the run's own failure message."""
    lines = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        # Dagster wraps the step's exception; the innermost cause says what went wrong.
        while error is not None and error.cause is not None:
            error = error.cause
        message = error.message.strip() if error is not None else "failed"
        lines.append(f"{event.step_key}: {message[:_MAX_ERROR_CHARS]}")
    if not lines and context.failure_event.message:
        lines.append(context.failure_event.message[:_MAX_ERROR_CHARS])
    return lines


@run_failure_sensor(
    name=SENSOR,
    monitor_all_code_locations=False,
    # On from the start: a failure nobody hears of is the one this exists for.
    default_status=DefaultSensorStatus.RUNNING,
    description="Sends every active admin of the store a `system` notification when a run fails.",
)
def notify_admins_of_failed_runs(context: RunFailureSensorContext, admin_notifier: AdminNotifier) -> None:
    run = context.dagster_run
    lines = failure_lines(context)
    ids = admin_notifier.notify_admins(
        title=f"Pipeline run failed: {run.job_name}",
        body="\n".join(lines),
        data={"runId": run.run_id, "job": run.job_name, "failures": lines},
    )
    context.log.info(f"notified {len(ids)} admin(s) of failed run {run.run_id}")


sensors: list[SensorDefinition] = [notify_admins_of_failed_runs]
