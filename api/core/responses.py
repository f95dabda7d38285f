"""The seed's response envelope: `{success, data, meta: {timestamp, version, requestId}}`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import orjson
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from api import __version__
from api.core.context import current_request_id

T = TypeVar("T")


def _default(obj: Any) -> Any:
    # Money leaves as a string so no client parses it into a float.
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(content: Any) -> bytes:
    return orjson.dumps(content, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


class EnvelopeResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def meta(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    m: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "version": __version__,
        "requestId": current_request_id(),
    }
    if extra:
        m.update(extra)
    return m


def ok(
    data: Any,
    *,
    status_code: int = 200,
    extra_meta: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> EnvelopeResponse:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    elif isinstance(data, list):
        data = [d.model_dump(mode="json", by_alias=True) if isinstance(d, BaseModel) else d for d in data]
    return EnvelopeResponse(
        {"success": True, "data": data, "meta": meta(extra_meta)}, status_code=status_code, headers=headers
    )


def paginated(items: list[Any], *, page: int, page_size: int, total: int) -> EnvelopeResponse:
    pages = (total + page_size - 1) // page_size if page_size else 0
    return ok(
        items,
        extra_meta={"pagination": {"page": page, "pageSize": page_size, "total": total, "pages": pages}},
    )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"success": False, "error": {"code": code, "message": message, "details": details}, "meta": meta()}


# --- OpenAPI shapes (documentation of the envelope; handlers return EnvelopeResponse directly) ---


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class Pagination(CamelModel):
    page: int
    page_size: int
    total: int
    pages: int


class Meta(CamelModel):
    timestamp: datetime
    version: str
    request_id: str | None = None
    pagination: Pagination | None = None


class Envelope(CamelModel, Generic[T]):
    success: bool = True
    data: T
    meta: Meta


class ErrorInfo(CamelModel):
    code: str
    message: str
    details: Any = None


class ErrorEnvelope(CamelModel):
    success: bool = Field(default=False)
    error: ErrorInfo
    meta: Meta
