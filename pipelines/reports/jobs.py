"""The `send_report` job: one definition's report (`dashboard.reports.builder.build_report`, what the
dashboard and `GET /api/export/{type}` show), rendered in each of its formats and emailed as ONE message
with every file attached, through the notification hub's email channel.

A failed send (SMTP down, the warehouse being replaced) is retried with backoff (the reports file's
`retry:`); after the last retry the run fails and the run-failure sensor tells the admins. Mistakes a
retry cannot fix (an unknown report, SMTP not configured, a refused recipient) fail at once."""
# No `from __future__ import annotations` here: Dagster reads the parameter annotations (context,
# config, resources) at decoration time and needs them as real types.

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from dagster import (
    Config,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    RetryPolicy,
    job,
    op,
)
from pydantic import Field

from api.core.settings import Settings
from api.notifications.channels import DeliveryError
from api.notifications.channels.email import (
    Attachment,
    MetricLine,
    ReportEmail,
    build_report_message,
    send_blocking,
)
from dashboard.reports.builder import build_report
from dashboard.reports.filters import OutOfScope
from dashboard.reports.model import Metric, Report
from dashboard.reports.render import Export, export
from dashboard.reports.render.cells import change, display
from pipelines.reports.definitions import ReportDefinition, ReportsFileError
from pipelines.reports.resources import ReportsResource

JOB = "send_report"
OP = "build_and_email_report"  # not the job's name: Dagster wants op and graph names apart


@dataclass(frozen=True)
class SentReport:
    name: str
    section: str
    title: str
    start: date
    end: date
    recipients: tuple[str, ...]
    attachments: tuple[tuple[str, int], ...]  # (file name, bytes)
    message_id: str
    metrics: tuple[MetricLine, ...]


def _line(m: Metric) -> MetricLine:
    previous = None
    if m.previous is not None:
        delta = change(m)
        previous = display(m.previous, m.format) + (f" ({delta})" if delta else "")
    return MetricLine(m.label, display(m.value, m.format), previous)


def report_email(definition: ReportDefinition, report: Report, files: Sequence[Export]) -> ReportEmail:
    return ReportEmail(
        subject=definition.subject or f"{report.title}: {report.subtitle}",
        title=report.title,
        subtitle=report.subtitle,
        freshness=report.freshness,
        metrics=tuple(_line(m) for m in report.metrics),
        attachments=tuple(Attachment(f.filename, f.content, f.media_type) for f in files),
        notes=report.notes,
    )


def send_report_now(
    settings: Settings,
    definition: ReportDefinition,
    as_of: date,
    now: datetime | None = None,
    run_key: str | None = None,
) -> SentReport:
    """Builds, renders and sends `definition`'s report as of `as_of` (its `days` end the day before).
    `run_key` (a Dagster run's id) keeps the Message-ID the same across the run's retries, so a
    receiver can tell a resent message from a new one. Raises WarehouseUnavailable, OutOfScope and
    DeliveryError."""
    now = now or datetime.now(UTC)
    filters = definition.filters.filters(as_of)
    report = build_report(settings, definition.section, filters, definition.scope, now)
    files = [export(report, fmt) for fmt in definition.formats]
    mail = report_email(definition, report, files)
    key = f"{definition.name}-{filters.start:%Y%m%d}-{filters.end:%Y%m%d}-{run_key or f'{now:%Y%m%dT%H%M%S}'}"
    msg = build_report_message(settings, definition.recipients, mail, now, key)
    send_blocking(settings, msg)
    return SentReport(
        name=definition.name,
        section=definition.section,
        title=report.title,
        start=filters.start,
        end=filters.end,
        recipients=tuple(definition.recipients),
        attachments=tuple((f.filename, len(f.content)) for f in files),
        message_id=str(msg["Message-ID"]),
        metrics=tuple(mail.metrics),
    )


class SendReportConfig(Config):
    report: str = Field(description="The definition's name in the reports file.")
    as_of: str | None = Field(
        default=None,
        description="The day the report is for (YYYY-MM-DD, UTC): `days` end the day before. "
        "Default: today; a schedule passes its tick's day.",
    )


def _as_of(value: str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Failure(f"as_of {value!r} is not a date (YYYY-MM-DD)", allow_retries=False) from None


@op(
    name=OP,
    out=Out(dict, description="What was sent: the report, its period, the recipients and the files."),
    description="Build one report definition's report, render each format and email them in one message.",
)
def send_report(
    context: OpExecutionContext, config: SendReportConfig, reports: ReportsResource
) -> Output[dict[str, Any]]:
    try:
        definition = reports.definition(config.report)
    except (KeyError, ReportsFileError) as exc:
        raise Failure(str(exc).strip("'\""), allow_retries=False) from None
    try:
        sent = send_report_now(reports.settings(), definition, _as_of(config.as_of), run_key=context.run_id)
    except OutOfScope as exc:
        raise Failure(str(exc), allow_retries=False) from None
    except DeliveryError as exc:
        if exc.permanent:
            raise Failure(f"not sent: {exc}", allow_retries=False) from None
        raise  # SMTP down or slow: the retry policy tries again
    context.log.info(f"report {sent.name} sent to {len(sent.recipients)} recipient(s)")
    return Output(
        {
            "report": sent.name,
            "section": sent.section,
            "start": sent.start.isoformat(),
            "end": sent.end.isoformat(),
            "recipients": list(sent.recipients),
            "attachments": [{"name": n, "bytes": b} for n, b in sent.attachments],
        },
        metadata={
            "report": sent.name,
            "section": sent.section,
            "period": f"{sent.start:%Y-%m-%d} to {sent.end:%Y-%m-%d} (UTC)",
            "recipients": ", ".join(sent.recipients),
            "attachments": MetadataValue.md("\n".join(f"- `{n}`: {b:,} bytes" for n, b in sent.attachments)),
            "attachment_bytes": sum(b for _, b in sent.attachments),
            "message_id": sent.message_id,
        },
    )


def send_report_job(retry_policy: RetryPolicy | None) -> JobDefinition:
    """The job every report schedule runs, each with its definition's name in the op's config."""

    @job(
        name=JOB,
        op_retry_policy=retry_policy,
        description="Build a scheduled report (reports.yml) in each of its formats and email one message "
        "with the files attached to its recipients.",
    )
    def send_report_job() -> None:
        send_report()

    return send_report_job
