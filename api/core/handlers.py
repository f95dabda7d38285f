"""Exception handlers that turn every error into the seed's error envelope."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.core.errors import ApiError
from api.core.responses import EnvelopeResponse, error_body

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[0]) if loc else ""


def _validation_details(errors: Any) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        item = {
            "field": _field(tuple(err.get("loc", ()))),
            "message": err.get("msg", "invalid"),
            "type": err.get("type", "value_error"),
        }
        if err.get("loc") and err["loc"][0] in ("query", "path", "header"):
            item["in"] = err["loc"][0]
        out.append(item)
    return out


async def api_error(_: Request, exc: Exception) -> EnvelopeResponse:
    assert isinstance(exc, ApiError)
    return EnvelopeResponse(
        error_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers
    )


async def validation_error(_: Request, exc: Exception) -> EnvelopeResponse:
    assert isinstance(exc, RequestValidationError)
    details = _validation_details(exc.errors())
    message = (
        "Invalid request"
        if not details
        else f"Invalid request: {details[0]['field']}: {details[0]['message']}"
    )
    return EnvelopeResponse(error_body("VALIDATION_ERROR", message, details), status_code=422)


async def http_error(_: Request, exc: Exception) -> EnvelopeResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").capitalize()
    return EnvelopeResponse(
        error_body(code, message, None), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def integrity_error(_: Request, exc: Exception) -> EnvelopeResponse:
    # A constraint caught what a check before it missed (usually a concurrent request).
    return EnvelopeResponse(
        error_body("CONFLICT", "The request conflicts with the current state", None), status_code=409
    )


async def operational_error(_: Request, exc: Exception) -> EnvelopeResponse:
    return EnvelopeResponse(
        error_body("SERVICE_UNAVAILABLE", "The database is unavailable, retry later", None),
        status_code=503,
        headers={"Retry-After": "1"},
    )


def register_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(IntegrityError, integrity_error)
    app.add_exception_handler(OperationalError, operational_error)
