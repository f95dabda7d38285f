"""Pure ASGI middleware: request id, body size limit, the last-resort 500 in the envelope, and the
request's timing handed to an observer (the request metrics, see api/metrics/recorder.py)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.context import request_id_var
from api.core.errors import PayloadTooLarge
from api.core.responses import dumps, error_body

log = structlog.get_logger("api")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# The one route that takes bodies above max_body_bytes: a conversation attachment. It may carry
# settings.attachment_max_bytes of file plus the multipart framing and a caption; the route itself
# enforces the exact file limit while it streams.
_UPLOAD_PATH = re.compile(r"^/api/conversations/\d+/attachments/?$")
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Called once per HTTP request with its scope (holding the matched route), status and seconds taken.
Observer = Callable[[Scope, int, float], None]


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, observe: Observer | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _VALID_ID.match(incoming) else str(uuid.uuid4())
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": 500, "sent": False, "overflow": False}
        raw_id = request_id.encode()
        limit = self._limit(scope)

        async def send_with_id(message: Message) -> None:
            if status["overflow"]:
                # The framework turned the aborted body read into its own error: answer 413 instead.
                if message["type"] == "http.response.start":
                    status["overflow"] = False
                    await _send_error(
                        send_with_id,
                        413,
                        "PAYLOAD_TOO_LARGE",
                        f"Request body exceeds {limit} bytes",
                        {"limitBytes": limit},
                    )
                    status["overflow"] = "sent"
                return
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", raw_id)]
            await send(message)

        declared = _header(scope, b"content-length")
        try:
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _send_error(
                    send_with_id,
                    413,
                    "PAYLOAD_TOO_LARGE",
                    f"Request body exceeds {limit} bytes",
                    {"limitBytes": limit},
                )
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        status["overflow"] = True
                        raise PayloadTooLarge(
                            f"Request body exceeds {limit} bytes", details={"limitBytes": limit}
                        )
                return message

            await self.app(scope, limited_receive, send_with_id)
        except Exception:
            log.exception("unhandled_error", path=scope.get("path"), method=scope.get("method"))
            if not status["sent"]:
                await _send_error(send_with_id, 500, "INTERNAL_ERROR", "Internal server error", None)
        finally:
            request_id_var.reset(token)
            elapsed = time.perf_counter() - started
            if self.observe is not None:
                try:
                    self.observe(scope, status["code"], elapsed)
                except Exception:  # metrics must never cost a request its answer
                    log.exception("request_metrics_failed", path=scope.get("path"))
            elapsed_ms = elapsed * 1000
            if status["code"] >= 500:
                log.warning(
                    "request",
                    method=scope.get("method"),
                    path=scope.get("path"),
                    status=status["code"],
                    ms=round(elapsed_ms, 2),
                    request_id=request_id,
                )

    def _limit(self, scope: Scope) -> int:
        if scope.get("method") == "POST" and _UPLOAD_PATH.match(scope.get("path", "")):
            # Starlette puts the application in the scope; its settings hold the upload limit.
            settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
            if settings is not None:
                return max(self.max_body_bytes, int(settings.attachment_max_bytes) + MULTIPART_OVERHEAD_BYTES)
        return self.max_body_bytes


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _send_error(send: Send, status: int, code: str, message: str, details: Any) -> None:
    body = dumps(error_body(code, message, details))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
