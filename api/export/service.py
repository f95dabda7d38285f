"""Who may export what, the request's filters, and the file: `dashboard.reports.builder.build_report`
then `dashboard.reports.render.export`. Nothing is written to the store: an export changes nothing.

Staff (analysts, admins) read the whole platform; a seller reads the shops they own (their scope) and
not the platform-only sections; buyers read nothing here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.analytics.service import WarehouseNotReady
from api.auth.models import Role
from api.core.deps import Principal
from api.core.errors import Forbidden, NotFound, ValidationFailed
from api.core.query import QueryModel
from api.core.settings import Settings
from api.shops.models import Shop
from dashboard.reports.builder import UnknownSection, build_report
from dashboard.reports.filters import Filters, InvalidFilter, OutOfScope, Scope, from_params
from dashboard.reports.render import Export, export, parse_format
from warehouse.duckdb import WarehouseUnavailable

FRESHNESS_HEADER = "X-Data-Freshness"


class ExportType(StrEnum):
    """The path's `{type}`: `excel` and `xlsx` are the same Excel workbook."""

    csv = "csv"
    excel = "excel"
    xlsx = "xlsx"
    pdf = "pdf"


class ReportSection(StrEnum):
    """The dashboard's sections (`dashboard.reports.sections`)."""

    overview = "overview"
    analytics = "analytics"
    blockchain = "blockchain"
    ai = "ai"
    security = "security"
    system = "system"


class ExportQuery(QueryModel):
    """`section` (default overview); `startDate`, `endDate` (inclusive UTC days, YYYY-MM-DD; default the
    last 30 days); `shopId`, `categoryId`, `productId`. The filters are read by the report builder's own
    parser (`dashboard.reports.filters.from_params`), the one the dashboard's URLs go through."""

    section: ReportSection = ReportSection.overview
    start_date: str | None = Field(default=None, description="First day, YYYY-MM-DD (UTC)")
    end_date: str | None = Field(default=None, description="Last day, YYYY-MM-DD (UTC), included")
    shop_id: str | None = Field(default=None, description="Only this shop (a seller's own)")
    category_id: str | None = Field(default=None, description="Only this category")
    product_id: str | None = Field(default=None, description="Only this product")


def filters_of(query: ExportQuery, today: date) -> Filters:
    """The query's filters, or the API's 422 naming the bad parameter."""
    params = {
        "startDate": query.start_date or "",
        "endDate": query.end_date or "",
        "shopId": query.shop_id or "",
        "categoryId": query.category_id or "",
        "productId": query.product_id or "",
    }
    try:
        return from_params(params, today, strict=True)
    except InvalidFilter as exc:
        raise ValidationFailed(
            f"Invalid request: {exc.field}: {exc.message}",
            details=[{"field": exc.field, "message": exc.message, "type": "value_error", "in": "query"}],
        ) from None


def scope_of(db: Session, principal: Principal, filters: Filters) -> Scope:
    """None (the whole platform) for staff, the ids of the shops a seller owns; a 403 for anyone else
    and for a seller's shop filter naming a shop not theirs, a 404 for a staff one naming no shop."""
    if principal.is_staff:
        if filters.shop_id is not None and db.get(Shop, filters.shop_id) is None:
            raise NotFound("Shop", filters.shop_id)
        return None
    if principal.role != Role.seller.value:
        raise Forbidden("Exports are for analysts, admins and shop owners")
    owned = tuple(
        db.execute(select(Shop.id).where(Shop.owner_id == principal.user_id).order_by(Shop.id)).scalars()
    )
    if not owned:
        raise Forbidden("You own no shop to export the numbers of")
    if filters.shop_id is not None and filters.shop_id not in owned:
        raise Forbidden(f"Shop {filters.shop_id} is not one of yours")
    return owned


@dataclass(frozen=True)
class ExportFile:
    file: Export
    freshness: str


def render(
    settings: Settings,
    section: ReportSection,
    filters: Filters,
    scope: Scope,
    kind: ExportType,
    now: datetime,
) -> ExportFile:
    """The report as a file (blocking: the warehouse read and the rendering)."""
    try:
        report = build_report(settings, section.value, filters, scope, now)
    except WarehouseUnavailable as exc:
        raise WarehouseNotReady(str(exc)) from exc
    except OutOfScope as exc:
        raise Forbidden(str(exc)) from None
    except UnknownSection:  # the query's enum and the builder's sections disagree: a deploy bug
        raise NotFound("Report section", section.value) from None
    return ExportFile(export(report, parse_format(kind.value)), report.freshness)


def header_text(value: str) -> str:
    """A header value HTTP can carry (latin-1, one line)."""
    flat = " ".join(value.split())
    return flat.encode("latin-1", "replace").decode("latin-1")


def attachment(filename: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)
    return f'attachment; filename="{safe}"'
