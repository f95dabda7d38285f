"""One schedule per report definition, `report_<name>`, running the `send_report` job with the
definition's name and the tick's day (so a late or retried run reports the period it was scheduled
for). STOPPED unless the definition says `enabled: true`."""
# No `from __future__ import annotations` here: Dagster reads the evaluation function's annotations.

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
)

from pipelines.reports.definitions import ReportDefinition
from pipelines.reports.jobs import OP


def run_request(definition: ReportDefinition, tick: datetime) -> RunRequest:
    day = tick.astimezone(UTC).date()
    return RunRequest(
        run_key=f"{definition.schedule_name}:{tick.astimezone(UTC):%Y-%m-%dT%H:%M}",
        run_config={"ops": {OP: {"config": {"report": definition.name, "as_of": day.isoformat()}}}},
        tags={"report": definition.name},
    )


def _evaluation(definition: ReportDefinition) -> Callable[[ScheduleEvaluationContext], RunRequest]:
    def evaluate(context: ScheduleEvaluationContext) -> RunRequest:
        return run_request(definition, context.scheduled_execution_time or datetime.now(UTC))

    return evaluate


def report_schedule(definition: ReportDefinition, job: JobDefinition) -> ScheduleDefinition:
    recipients, formats = ", ".join(definition.recipients), ", ".join(definition.formats)
    return ScheduleDefinition(
        name=definition.schedule_name,
        job=job,
        cron_schedule=definition.cron,
        execution_timezone=definition.timezone,
        execution_fn=_evaluation(definition),
        default_status=DefaultScheduleStatus.RUNNING if definition.enabled else DefaultScheduleStatus.STOPPED,
        description=f"Emails the {definition.section} report ({formats}) to {recipients}.",
    )


def report_schedules(definitions: Sequence[ReportDefinition], job: JobDefinition) -> list[ScheduleDefinition]:
    return [report_schedule(d, job) for d in definitions]
