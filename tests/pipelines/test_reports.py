"""Scheduled reports: a definition in a reports file becomes a Dagster schedule, and the `send_report`
job builds its report from the real warehouse (tests/pipelines/trained.py) and emails one message with
every format attached to a real SMTP server on loopback; the files hold the marts' numbers (checked
with SQL of its own). A dead SMTP server is retried, then the run fails and the admins hear of it; a
bad reports file fails loading with a message naming the report and the field."""

from __future__ import annotations

import csv
import io
import math
import shutil
import socket
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pytest
from aiosmtpd.controller import Controller
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    build_run_status_sensor_context,
    build_schedule_context,
)
from pypdf import PdfReader
from sqlalchemy import create_engine, text

from api.core.settings import Settings, get_settings
from dashboard import formatting
from pipelines.alerting.resources import AdminNotifier
from pipelines.alerting.sensors import SENSOR, notify_admins_of_failed_runs
from pipelines.definitions import build_definitions, defs
from pipelines.reports.definitions import ReportsFileError, load
from pipelines.reports.jobs import JOB, OP
from tests.api.test_notification_delivery import Inbox
from tests.pipelines.trained import START, TrainedMarket, trained_market
from warehouse.settings import warehouse_location

__all__ = ["trained_market"]

LAST = date(2026, 2, 1)  # the simulated four weeks end here
AS_OF = "2026-02-02"  # `days: 28` as of this day: START to LAST
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER_ROW = 3  # a table sheet: title, note, header, rows (dashboard/reports/render/xlsx.py)
RECIPIENTS = ["analyst@example.com", "cfo@example.com"]


def _reports_file(directory: Path, *, shop_id: int = 1, delay: float = 0.05) -> Path:
    path = directory / "reports.yml"
    path.write_text(
        f"""
retry: {{max_retries: 3, delay_seconds: {delay}, backoff: exponential}}
reports:
  - name: monthly_platform
    enabled: true
    section: overview
    filters: {{days: 28}}
    formats: [pdf, xlsx, csv]
    recipients: {RECIPIENTS}
    cron: "0 6 1 * *"
    subject: Platform, four weeks
  - name: shop_week
    section: analytics
    filters: {{start: 2026-01-26, end: 2026-02-01, shopId: {shop_id}}}
    formats: [csv]
    recipients: [owner@example.com]
    cron: "30 7 * * 1"
""",
        encoding="utf-8",
    )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    handler.port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


def _revenue_by_currency(settings: Settings, first: date, last: date) -> dict[str, Decimal]:
    conn = duckdb.connect(str(warehouse_location(settings).snapshot), read_only=True)
    try:
        rows = conn.execute(
            "SELECT currency, sum(revenue) FROM marts.mart_revenue_daily "
            "WHERE date BETWEEN ? AND ? GROUP BY currency HAVING sum(revenue) > 0",
            [first, last],
        ).fetchall()
    finally:
        conn.close()
    return {str(c): Decimal(v) for c, v in rows}


def _csv_tables(content: bytes, media_type: str) -> dict[str, list[dict[str, str]]]:
    if media_type == "application/zip":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return {
                Path(n).stem: list(csv.DictReader(io.StringIO(archive.read(n).decode("utf-8-sig"))))
                for n in archive.namelist()
            }
    return {"table": list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))}


def _attachments(msg: EmailMessage) -> dict[str, tuple[str, bytes]]:
    out = {}
    for part in msg.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[str(part.get_filename())] = (part.get_content_type(), payload)
    return out


def _run(definitions: Definitions, report: str, instance: DagsterInstance) -> Any:
    return definitions.get_job_def(JOB).execute_in_process(
        run_config={"ops": {OP: {"config": {"report": report, "as_of": AS_OF}}}},
        instance=instance,
        raise_on_error=False,
    )


def _a_shop(settings: Settings) -> int:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT min(id) FROM shops")).scalar_one())
    finally:
        engine.dispose()


def test_a_scheduled_report_arrives_with_every_format_holding_the_marts_numbers(
    trained_market: TrainedMarket, inbox: Inbox, tmp_path: Path
) -> None:
    shop = _a_shop(trained_market.settings)
    settings = trained_market.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_from": "Reports <reports@store.example.com>",
            "reports_file": _reports_file(tmp_path, shop_id=shop),
        }
    )
    revenue = _revenue_by_currency(settings, START, LAST)
    assert revenue
    loaded = build_definitions(settings)

    with DagsterInstance.ephemeral() as instance:
        result = _run(loaded, "monthly_platform", instance)
        assert result.success
        outputs = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_OUTPUT]
        meta = {k: getattr(v, "value", v) for k, v in outputs[0].step_output_data.metadata.items()}
    (envelope,) = inbox.envelopes
    assert sorted(envelope.rcpt_tos) == sorted(RECIPIENTS)
    (msg,) = inbox.messages()
    assert msg["Subject"] == "Platform, four weeks"
    assert msg["From"] == "Reports <reports@store.example.com>"
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    plain = body.get_content()
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None and "<table" in html_part.get_content()
    for currency, amount in revenue.items():
        assert f"Revenue ({currency}): {formatting.money(amount)}" in plain

    files = _attachments(msg)
    stem = "overview_2026-01-05_2026-02-01"
    # The CSV export is one .csv, or a .zip of one per table when the report has several.
    csv_name = next(n for n in files if n in (f"{stem}.csv", f"{stem}.zip"))
    assert set(files) == {f"{stem}.pdf", f"{stem}.xlsx", csv_name}

    media, pdf = files[f"{stem}.pdf"]
    assert media == "application/pdf"
    pdf_text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Overview" in pdf_text
    for amount in revenue.values():
        assert formatting.money(amount) in pdf_text

    media, xlsx = files[f"{stem}.xlsx"]
    assert media == XLSX
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    rows = list(book["daily_revenue"].iter_rows(min_row=HEADER_ROW, values_only=True))
    header = list(rows[0])
    at_currency, at_revenue = header.index("Currency"), header.index("Revenue")
    for currency, amount in revenue.items():
        got = sum(r[at_revenue] for r in rows[1:] if r[at_currency] == currency)
        assert math.isclose(got, float(amount), rel_tol=1e-9)
    book.close()

    media, content = files[csv_name]
    assert media == ("application/zip" if csv_name.endswith(".zip") else "text/csv")
    totals: dict[str, Decimal] = {}
    for row in _csv_tables(content, media)["daily_revenue"]:
        totals[row["currency"]] = totals.get(row["currency"], Decimal(0)) + Decimal(row["revenue"])
    assert {c: v for c, v in totals.items() if v} == revenue

    # The op's output says what went where.
    assert meta["recipients"] == ", ".join(RECIPIENTS)
    assert meta["section"] == "overview"
    assert meta["period"] == "2026-01-05 to 2026-02-01 (UTC)"
    assert meta["attachment_bytes"] == sum(len(c) for _, c in files.values())
    for filename in files:
        assert filename in meta["attachments"]

    # A shop's report is read as its owner would: that shop's numbers only.
    with DagsterInstance.ephemeral() as instance:
        assert _run(loaded, "shop_week", instance).success
    shop_msg = inbox.messages()[1]
    assert shop_msg["To"] == "owner@example.com"
    ((shop_file, (media, content)),) = _attachments(shop_msg).items()
    assert shop_file.startswith(f"analytics_2026-01-26_2026-02-01_shop{shop}.")
    ids = {int(r["shop_id"]) for t in _csv_tables(content, media).values() for r in t if r.get("shop_id")}
    assert ids == {shop}


def test_a_dead_smtp_server_is_retried_then_the_run_fails_and_the_admins_hear(
    trained_market: TrainedMarket, tmp_path: Path
) -> None:
    closed = _free_port()  # nothing listens there
    settings = trained_market.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": closed, "reports_file": _reports_file(tmp_path)}
    )
    loaded = build_definitions(settings)
    with DagsterInstance.ephemeral() as instance:
        result = _run(loaded, "shop_week", instance)
        assert not result.success
        kinds = [e.event_type for e in result.all_events]
        assert kinds.count(DagsterEventType.STEP_UP_FOR_RETRY) == 3
        assert kinds.count(DagsterEventType.STEP_RESTARTED) == 3
        assert kinds.count(DagsterEventType.STEP_FAILURE) == 1
        (failure,) = [
            r.get_dagster_event()
            for r in instance.all_logs(result.run_id, of_type=DagsterEventType.RUN_FAILURE)
        ]

        # The run-failure sensor watches every job of its code location, this one included: it names no
        # jobs to watch (Dagster keeps that list only in a private attribute).
        sensor = next(s for s in loaded.sensors or [] if s.name == SENSOR)
        assert sensor._monitored_jobs == []  # type: ignore[attr-defined]
        store = tmp_path / "store.db"
        shutil.copyfile(trained_market.settings.database_url.removeprefix("sqlite:///"), store)
        with build_run_status_sensor_context(
            sensor_name=SENSOR,
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"admin_notifier": AdminNotifier(database_url=f"sqlite:///{store}")},
        ) as context:
            notify_admins_of_failed_runs(context.for_run_failure())
    engine = create_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as conn:
            notes = conn.execute(
                text("SELECT title, body FROM notifications WHERE title = :t"),
                {"t": f"Pipeline run failed: {JOB}"},
            ).all()
    finally:
        engine.dispose()
    assert notes
    for _, body in notes:  # which step failed, and why
        assert str(body).startswith(f"{OP}: ") and "SMTP: ConnectionRefusedError" in str(body), body


def test_a_bad_reports_file_fails_loading_naming_the_report_and_field(
    trained_market: TrainedMarket, tmp_path: Path
) -> None:
    bad = tmp_path / "reports.yml"
    bad.write_text(
        """
reports:
  - name: weekly
    section: overview
    filters: {days: 7}
    formats: [pdf, docx]
    recipients: [not-an-address]
    cron: "0 6 * * *"
  - name: shops_security
    section: security
    filters: {days: 7, shopId: 3}
    formats: [pdf]
    recipients: [a@example.com]
    cron: "every monday"
""",
        encoding="utf-8",
    )
    settings = trained_market.settings.model_copy(update={"reports_file": bad})
    with pytest.raises(ReportsFileError) as raised:
        build_definitions(settings)
    message = str(raised.value)
    assert str(bad) in message
    assert "report 'weekly' (reports[0]): formats: unknown export format 'docx'" in message
    assert "report 'weekly' (reports[0]): recipients[0]: value is not a valid email address" in message
    assert "report 'shops_security' (reports[1]): cron: 'every monday' is not a cron string" in message

    bad.write_text("reports:\n  - name: twice\n    section: nowhere\n", encoding="utf-8")
    with pytest.raises(ReportsFileError, match=r"report 'twice' \(reports\[0\]\): section: unknown section"):
        load(bad)
    with pytest.raises(ReportsFileError, match="no such reports file"):
        load(tmp_path / "missing.yml")


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_each_definition_is_a_schedule_of_dagsters_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("STORE_ENVIRONMENT", "test")
    monkeypatch.setenv("STORE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STORE_DATABASE_URL", "sqlite:////srv/store.db")
    monkeypatch.setenv("STORE_WAREHOUSE_PATH", str(tmp_path / "wh" / "w.duckdb"))
    monkeypatch.setenv("STORE_REPORTS_FILE", str(_reports_file(tmp_path)))
    loaded = defs()
    Definitions.validate_loadable(loaded)
    # Failed sends retry as the file says (3 times, exponential backoff), then the run fails.
    policy = loaded.resolve_job_def(JOB).op_retry_policy
    assert policy is not None and (policy.max_retries, policy.delay) == (3, 0.05)
    monthly = loaded.resolve_schedule_def("report_monthly_platform")
    shop = loaded.resolve_schedule_def("report_shop_week")
    assert (monthly.cron_schedule, monthly.execution_timezone) == ("0 6 1 * *", "UTC")
    assert monthly.default_status == DefaultScheduleStatus.RUNNING  # enabled: true
    assert (shop.cron_schedule, shop.default_status) == ("30 7 * * 1", DefaultScheduleStatus.STOPPED)
    assert monthly.job_name == shop.job_name == JOB

    # A tick asks for the report of its own day (a late run still reports the period it was due for).
    tick = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    (request,) = (
        monthly.evaluate_tick(build_schedule_context(scheduled_execution_time=tick)).run_requests or []
    )
    assert request.run_config == {
        "ops": {OP: {"config": {"report": "monthly_platform", "as_of": "2026-03-01"}}}
    }

    # The repository's own reports.yml: its example report is there, and off until turned on.
    monkeypatch.delenv("STORE_REPORTS_FILE")
    get_settings.cache_clear()
    default = defs()
    example = load(get_settings().reports_file)
    assert example.reports
    for d in example.reports:
        schedule = default.resolve_schedule_def(f"report_{d.name}")
        assert schedule.cron_schedule == d.cron
        assert schedule.default_status == DefaultScheduleStatus.STOPPED
