"""API errors: every failure leaves as `{success: false, error: {code, message, details}, meta}`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 400
    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        code: str | None = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class ValidationFailed(ApiError):
    status_code = 422
    code = "VALIDATION_ERROR"


class Unauthorized(ApiError):
    status_code = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str = "Authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(ApiError):
    status_code = 404
    code = "NOT_FOUND"

    def __init__(self, what: str, ident: object | None = None, **kw: Any) -> None:
        msg = f"{what} {ident} not found" if ident is not None else f"{what} not found"
        super().__init__(msg, **kw)


class Conflict(ApiError):
    status_code = 409
    code = "CONFLICT"


class InvalidTransition(Conflict):
    code = "INVALID_STATE_TRANSITION"

    def __init__(self, entity: str, current: str, action: str) -> None:
        super().__init__(
            f"Cannot {action} a {entity} that is {current}",
            details={"currentStatus": current, "action": action},
        )


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class RateLimited(ApiError):
    status_code = 429
    code = "RATE_LIMITED"
