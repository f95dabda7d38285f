"""The one report builder: a section's `Report` for some filters, read from the warehouse.

Every consumer goes through `build_report`: the dashboard's pages (cached on the published
warehouse's identity), the download buttons, `GET /api/export/{type}` and the scheduled reports. Each
section module in `dashboard.reports.sections` has a `SECTION: SectionSpec`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from api.core.settings import Settings
from dashboard.reports.filters import Filters, OutOfScope, Scope, scoped
from dashboard.reports.model import Report
from warehouse import marts
from warehouse.marts import MartReader


@dataclass(frozen=True)
class BuildContext:
    reader: MartReader
    settings: Settings
    filters: Filters  # already scoped: a shop owner's shop filter is one of theirs
    scope: Scope
    now: datetime  # UTC

    def freshness_text(self) -> str:
        """How fresh the warehouse the report reads is, in words (every report says it)."""
        fresh = marts.freshness(self.reader, self.settings)
        if fresh.loaded_at is None:
            return "The warehouse has never been loaded."
        age = fresh.age_seconds(self.now) or 0.0
        through = f"; data through {fresh.data_through:%Y-%m-%d}" if fresh.data_through else ""
        return f"Data loaded {fresh.loaded_at:%Y-%m-%d %H:%M} UTC ({_age(age)} ago){through}."


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


@dataclass(frozen=True)
class SectionSpec:
    slug: str
    title: str
    build: Callable[[BuildContext], Report]
    platform_only: bool = False  # security and system: analysts and admins only


def sections() -> dict[str, SectionSpec]:
    """Every section with a report, by slug, in the dashboard's order."""
    # Imported here: section modules import this one for BuildContext.
    from dashboard.reports.sections import SECTIONS

    return {s.slug: s for s in SECTIONS}


class UnknownSection(KeyError):
    pass


def section(slug: str) -> SectionSpec:
    try:
        return sections()[slug]
    except KeyError:
        raise UnknownSection(slug) from None


def allowed(spec: SectionSpec, scope: Scope) -> bool:
    return scope is None or not spec.platform_only


def build_report(
    settings: Settings, slug: str, filters: Filters, scope: Scope, now: datetime | None = None
) -> Report:
    """The report of section `slug` for `filters`, as a reader of `scope` may see it.

    Raises UnknownSection, OutOfScope (a shop or section the reader may not see) and
    WarehouseUnavailable (no warehouse yet: run the pipeline)."""
    spec = section(slug)
    if not allowed(spec, scope):
        raise OutOfScope(f"the {spec.title} section is for analysts and admins")
    filters = scoped(filters, scope)
    with marts.open_marts(settings) as reader:
        report = spec.build(BuildContext(reader, settings, filters, scope, (now or datetime.now(UTC))))
    stamp = f"{filters.start:%Y-%m-%d}_{filters.end:%Y-%m-%d}"
    if filters.shop_id is not None:
        stamp += f"_shop{filters.shop_id}"
    return replace(report, extra={"filename_stamp": stamp, **report.extra})
