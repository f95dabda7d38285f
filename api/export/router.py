"""GET /api/export/{type} (seed 000): the report of a dashboard section as a file. The handler is sync:
the warehouse read and the rendering block, so they run in the thread pool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.core.deps import CurrentUser, ReadDb
from api.core.query import query_docs, query_model
from api.core.responses import ErrorEnvelope
from api.export import service
from api.export.service import ExportQuery, ExportType

router = APIRouter(prefix="/api/export", tags=["export"])

Query = Annotated[ExportQuery, Depends(query_model(ExportQuery))]
Kind = Annotated[ExportType, Path(alias="type", description="csv, excel (or xlsx) or pdf")]

_FILES: dict[str, dict[str, Any]] = {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}
    },
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
}
_FRESHNESS = {"description": "How fresh the warehouse the report read is", "schema": {"type": "string"}}


@router.get(
    "/{type}",
    response_class=Response,
    openapi_extra=query_docs(ExportQuery),
    responses={
        200: {
            "description": "The file, as an attachment",
            "content": _FILES,
            "headers": {service.FRESHNESS_HEADER: _FRESHNESS},
        },
        403: {"model": ErrorEnvelope, "description": "Not staff, or a shop or section not yours"},
        422: {"model": ErrorEnvelope, "description": "An unknown type or section, or a bad filter"},
        503: {"model": ErrorEnvelope, "description": "The warehouse is not built yet: run the pipeline"},
    },
)
def export_report(kind: Kind, principal: CurrentUser, db: ReadDb, query: Query, request: Request) -> Response:
    """A section's report (its headline numbers, tables and charts) over the filters, as CSV, Excel or
    PDF: every section for analysts and admins; for a seller, the shops they own, without the
    platform-only sections (security, system)."""
    state = request.app.state
    filters = service.filters_of(query, state.clock.now().date())
    try:
        scope = service.scope_of(db, principal, filters)
    finally:
        db.close()  # back to the pool before the warehouse read and the rendering
    # Wall time, as the analytics answers: loads are stamped with it, so the freshness's age is too.
    out = service.render(state.settings, query.section, filters, scope, kind, datetime.now(UTC))
    return Response(
        out.file.content,
        media_type=out.file.media_type,
        headers={
            "Content-Disposition": service.attachment(out.file.filename),
            service.FRESHNESS_HEADER: service.header_text(out.freshness),
            "Cache-Control": "private, no-store",
        },
    )
