"""The scheduled reports' definitions: the YAML file at `Settings.reports_file` (STORE_REPORTS_FILE,
default the repository's reports.yml), validated when Dagster loads the code location so that a bad
file fails there, with a message naming the report and the field.

    retry: {max_retries: 3, delay_seconds: 10}   # optional: a failed send is retried with backoff
    reports:
      - name: daily_platform                      # the schedule is report_<name>
        enabled: false                            # the schedule starts STOPPED unless true
        section: overview                         # a dashboard section (dashboard.reports.sections)
        filters: {days: 7}                        # the 7 days up to yesterday; or {start:, end:}
        formats: [pdf, excel, csv]
        recipients: [analyst@example.com]
        cron: "0 6 * * *"                         # Dagster cron, UTC
        subject: Daily platform report            # optional
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from dagster import Backoff, RetryPolicy
from dagster._utils.schedules import is_valid_cron_string
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, field_validator, model_validator

from api.core.settings import REPORTS_FILE
from dashboard.reports.builder import UnknownSection, section
from dashboard.reports.filters import MAX_DAYS, Filters
from dashboard.reports.render import ExportFormat, parse_format

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,59}$"  # a Dagster name once prefixed with report_


class ReportsFileError(ValueError):
    """The reports file cannot be read or does not validate; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ReportFilters(_Strict):
    """`days`: the N days up to yesterday (of the day the report is sent, UTC); or a fixed `start` and
    `end` (both included). `shopId` makes it that shop's report, read as its owner would."""

    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    start: date | None = None
    end: date | None = None
    shop_id: int | None = Field(default=None, alias="shopId", ge=1)
    category_id: int | None = Field(default=None, alias="categoryId", ge=1)
    product_id: int | None = Field(default=None, alias="productId", ge=1)

    @model_validator(mode="after")
    def _one_period(self) -> ReportFilters:
        fixed = self.start is not None or self.end is not None
        if self.days is not None and fixed:
            raise ValueError("give either days, or start and end, not both")
        if self.days is None and not fixed:
            raise ValueError("give days (the N days up to yesterday), or start and end")
        if fixed:
            if self.start is None or self.end is None:
                raise ValueError("a fixed period needs both start and end")
            if self.start > self.end:
                raise ValueError("start is after end")
            if (self.end - self.start).days + 1 > MAX_DAYS:
                raise ValueError(f"a period may cover at most {MAX_DAYS} days")
        return self

    def filters(self, as_of: date) -> Filters:
        """The report's filters when it is sent on `as_of` (UTC)."""
        if self.days is not None:
            end = as_of - timedelta(days=1)
            start = end - timedelta(days=self.days - 1)
        else:
            assert self.start is not None and self.end is not None
            start, end = self.start, self.end
        return Filters(start, end, self.shop_id, self.category_id, self.product_id)


class ReportDefinition(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    enabled: bool = False
    section: str
    filters: ReportFilters
    formats: tuple[ExportFormat, ...] = Field(min_length=1)
    recipients: tuple[EmailStr, ...]
    cron: str
    timezone: Literal["UTC"] = "UTC"  # periods are UTC days: the schedule runs on UTC too
    subject: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("section")
    @classmethod
    def _known_section(cls, value: str) -> str:
        try:
            section(value)
        except UnknownSection:
            from dashboard.reports.builder import sections

            raise ValueError(f"unknown section {value!r}: one of {', '.join(sections())}") from None
        return value

    @field_validator("formats", mode="before")
    @classmethod
    def _formats(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        parsed: list[ExportFormat] = []
        for item in items:
            fmt = parse_format(str(item))  # ValueError: pydantic reports it with the item's place
            if fmt not in parsed:
                parsed.append(fmt)
        return tuple(parsed)

    @field_validator("recipients")
    @classmethod
    def _someone(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Checked after the items, so one bad address is one error (Field(min_length) adds a second).
        if not value:
            raise ValueError("give at least one email address")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not is_valid_cron_string(value):
            raise ValueError(f"{value!r} is not a cron string (e.g. '0 6 * * *': 06:00 UTC every day)")
        return value

    @model_validator(mode="after")
    def _shop_sections(self) -> ReportDefinition:
        if self.filters.shop_id is not None and section(self.section).platform_only:
            raise ValueError(f"the {self.section} section is platform-only: it has no shop report")
        return self

    @property
    def scope(self) -> tuple[int, ...] | None:
        """Whose numbers: the whole platform, or the one shop's as its owner sees them."""
        return None if self.filters.shop_id is None else (self.filters.shop_id,)

    @property
    def schedule_name(self) -> str:
        return f"report_{self.name}"


class RetrySpec(_Strict):
    """How a failed send (SMTP down, the warehouse being published) is retried before the run fails."""

    max_retries: int = Field(default=3, ge=0, le=10)
    delay_seconds: float = Field(default=10.0, ge=0, le=3600)
    backoff: Literal["exponential", "linear"] = "exponential"

    def policy(self) -> RetryPolicy:
        backoff = Backoff.EXPONENTIAL if self.backoff == "exponential" else Backoff.LINEAR
        return RetryPolicy(max_retries=self.max_retries, delay=self.delay_seconds, backoff=backoff)


class ReportsConfig(_Strict):
    retry: RetrySpec = RetrySpec()
    reports: tuple[ReportDefinition, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> ReportsConfig:
        seen: set[str] = set()
        for d in self.reports:
            if d.name in seen:
                raise ValueError(f"two reports are named {d.name!r}")
            seen.add(d.name)
        return self

    def get(self, name: str) -> ReportDefinition:
        for d in self.reports:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.reports) or "none"
        raise KeyError(f"no report named {name!r} (defined: {known})")


def _where(raw: Any, loc: tuple[int | str, ...]) -> str:
    """`report 'daily' (reports[0]): formats[1]` for an error's location."""
    if len(loc) >= 2 and loc[0] == "reports" and isinstance(loc[1], int):
        items = raw.get("reports") if isinstance(raw, dict) else None
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        head = f"report {name!r} (reports[{loc[1]}])" if name else f"reports[{loc[1]}]"
        rest = loc[2:]
    else:
        head, rest = "", loc
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in rest).lstrip(".")
    return ": ".join(part for part in (head, field) if part)


def parse(text: str, source: str = "reports file") -> ReportsConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ReportsFileError(f"{source}: not valid YAML: {exc}") from None
    if raw is None:
        return ReportsConfig()
    if not isinstance(raw, dict):
        raise ReportsFileError(f"{source}: expected a mapping with `reports:`, not {type(raw).__name__}")
    try:
        return ReportsConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = _where(raw, tuple(err["loc"]))
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ReportsFileError(
            f"{source} is not valid:\n" + "\n".join(f"  - {p}" for p in problems)
        ) from None


def load(path: Path) -> ReportsConfig:
    """The definitions in `path`. The default file may be missing (no reports); another may not: a
    STORE_REPORTS_FILE that names no file is a mistake to report, not an empty schedule."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path.resolve() == REPORTS_FILE.resolve():
            return ReportsConfig()
        raise ReportsFileError(f"{path}: no such reports file (STORE_REPORTS_FILE)") from None
    except OSError as exc:
        raise ReportsFileError(f"{path}: cannot be read: {exc}") from None
    return parse(text, str(path))
