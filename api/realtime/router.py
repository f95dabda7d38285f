"""The `/ws` endpoint: authenticate, then read frames, dispatch them and write pushed events.

Authentication happens before the socket reads anything: a missing, invalid or expired token, or a
browser Origin we do not serve, gets the handshake completed only to close it with 1008 (policy
violation), which every client (browsers included) can see, unlike an HTTP 403 on the handshake.
The token comes as `?token=` or as the subprotocol pair `bearer, <token>` (browsers cannot set
headers on a WebSocket). The socket closes with 1008 when its token expires unless the client sends
a fresh one (`{"type": "auth", "token": ...}`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson
import structlog
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketState

from api.auth.service import authenticate
from api.core.deps import Principal
from api.core.errors import ApiError, Forbidden, Unauthorized, ValidationFailed
from api.core.security import decode_access_token
from api.core.settings import Settings
from api.realtime.dispatch import WsContext, WsHandlers
from api.realtime.hub import Connection, Hub
from api.shops.models import Shop

log = structlog.get_logger("realtime")
router = APIRouter(tags=["realtime"])

WS_POLICY = 1008
WS_TOO_BIG = 1009
STAFF_TOPICS = {"activity", "metrics"}


class TokenBucket:
    """Per-socket message budget: `rate` per second with bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    origin = websocket.headers.get("origin")
    if not origin:
        return True  # not a browser: Origin protects browsers from cross-site sockets only
    allowed = settings.ws_origins or settings.cors_origins
    if origin in allowed or "*" in allowed:
        return True
    # Same-origin pages (the API's own docs or a dashboard behind the same host) are fine.
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


def _token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The token and the subprotocol to echo when the token came as one."""
    token = websocket.query_params.get("token")
    if token:
        return token, None
    protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if len(protocols) >= 2 and protocols[0].lower() == "bearer" and protocols[1]:
        return protocols[1], protocols[0]
    return None, None


def _check_token(websocket: WebSocket, token: str) -> tuple[Principal, int]:
    app = websocket.app
    settings: Settings = app.state.settings
    now = app.state.clock.now()
    claims = decode_access_token(token, secret=settings.secret, algorithm=settings.jwt_algorithm, now=now)
    principal = authenticate(app.state.store, settings, now, token)
    return principal, claims.expires_at


async def _refuse(websocket: WebSocket, reason: str, subprotocol: str | None = None) -> None:
    await websocket.accept(subprotocol=subprotocol)
    await websocket.close(code=WS_POLICY, reason=reason[:120])


def _error_frame(exc: ApiError, frame_id: Any) -> dict[str, Any]:
    return {
        "type": "error",
        "id": frame_id,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }


def _can_subscribe(db: Session, principal: Principal, topic: str) -> bool:
    if topic in STAFF_TOPICS:
        return principal.is_staff
    parts = topic.split(":")
    if len(parts) == 3 and parts[0] == "shop" and parts[2] == "activity" and parts[1].isdigit():
        if principal.is_staff:
            return True
        owner = db.execute(select(Shop.owner_id).where(Shop.id == int(parts[1]))).scalar_one_or_none()
        return owner == principal.user_id
    return False


async def _writer(conn: Connection) -> None:
    ws = conn.ws
    while True:
        frame = await conn.queue.get()
        await ws.send_text(frame)


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    hub: Hub = app.state.hub
    if not origin_allowed(websocket, settings):
        await _refuse(websocket, "origin not allowed")
        return
    token, subprotocol = _token(websocket)
    if token is None:
        await _refuse(websocket, "missing token")
        return
    try:
        principal, expires_at = await run_in_threadpool(_check_token, websocket, token)
    except Unauthorized as exc:
        await _refuse(websocket, exc.code.lower(), subprotocol)
        return
    await websocket.accept(subprotocol=subprotocol)

    conn = Connection(
        id=uuid.uuid4().hex[:16],
        principal=principal,
        ws=websocket,
        queue=asyncio.Queue(maxsize=settings.ws_send_queue),
        expires_at=expires_at,
    )

    async def reply(event: str, data: dict[str, Any]) -> None:
        conn.offer(orjson.dumps({"type": event, "data": data}, default=str).decode())

    ctx = WsContext(principal=principal, app=app, connection_id=conn.id, bus=hub, reply=reply)
    hub.add(conn)
    writer = asyncio.create_task(_writer(conn))
    await reply("welcome", {"userId": principal.user_id, "connectionId": conn.id, "role": principal.role})
    try:
        await _read_loop(websocket, conn, ctx, settings)
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(conn)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()


async def _read_loop(websocket: WebSocket, conn: Connection, ctx: WsContext, settings: Settings) -> None:
    app = websocket.app
    handlers: WsHandlers = app.state.ws_handlers
    bucket = TokenBucket(settings.ws_rate_per_second, settings.ws_rate_burst)
    hub: Hub = app.state.hub
    while True:
        remaining = conn.expires_at - app.state.clock.now().timestamp()
        if remaining <= 0:
            await websocket.close(code=WS_POLICY, reason="token expired")
            return
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=remaining)
        except TimeoutError:
            continue  # the loop's head closes the socket if the token has run out by now
        if message["type"] == "websocket.disconnect":
            return
        if conn.expires_at <= app.state.clock.now().timestamp():
            await websocket.close(code=WS_POLICY, reason="token expired")
            return
        raw = message.get("text")
        if raw is None:
            raw_bytes = message.get("bytes") or b""
            size = len(raw_bytes)
        else:
            size = len(raw)  # characters: at least a quarter of the bytes, checked again below
        if size > settings.ws_max_message_bytes or (
            raw is not None and len(raw.encode()) > settings.ws_max_message_bytes
        ):
            await websocket.close(code=WS_TOO_BIG, reason="message too big")
            return
        if conn.closing:
            return
        if not bucket.take():
            hub.stats.flood_closed += 1
            await websocket.close(code=WS_POLICY, reason="rate limit exceeded")
            return
        try:
            frame = orjson.loads(raw if raw is not None else raw_bytes)
        except orjson.JSONDecodeError:
            conn.offer(
                orjson.dumps(_error_frame(ValidationFailed("Frames must be JSON objects"), None)).decode()
            )
            continue
        await _dispatch(conn, ctx, handlers, frame)


async def _dispatch(conn: Connection, ctx: WsContext, handlers: WsHandlers, frame: Any) -> None:
    frame_id = frame.get("id") if isinstance(frame, dict) else None
    try:
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ValidationFailed("A frame is a JSON object with a string 'type'")
        kind = frame["type"]
        builtin = _BUILTINS.get(kind)
        result: dict[str, Any] | None
        if builtin is not None:
            result = await builtin(conn, ctx, frame)
        else:
            handler = handlers.get(kind)
            if handler is None:
                raise ValidationFailed(f"Unknown frame type '{kind}'", details={"type": kind})
            result = await handler(ctx, frame)
    except ApiError as exc:
        conn.offer(orjson.dumps(_error_frame(exc, frame_id), default=str).decode())
        return
    except ValidationError as exc:
        details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        invalid = ValidationFailed("Invalid frame", details=details)
        conn.offer(orjson.dumps(_error_frame(invalid, frame_id), default=str).decode())
        return
    except Exception:
        log.exception("ws_handler_failed", frame_type=frame.get("type") if isinstance(frame, dict) else None)
        err = ApiError("Internal error", code="INTERNAL_ERROR", status_code=500)
        conn.offer(orjson.dumps(_error_frame(err, frame_id), default=str).decode())
        return
    if frame_id is not None:
        conn.offer(orjson.dumps({"type": "ack", "id": frame_id, "data": result or {}}, default=str).decode())


# --- frames every socket understands --------------------------------------------------------------


async def _ping(conn: Connection, ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    return {"pong": True}


def _topic(frame: dict[str, Any]) -> str:
    topic = frame.get("topic")
    if not isinstance(topic, str) or not 1 <= len(topic) <= 64:
        raise ValidationFailed("'topic' must be a string of 1 to 64 characters")
    return topic


def _may_subscribe(db: Session, principal: Principal, topic: str) -> None:
    if not _can_subscribe(db, principal, topic):
        raise Forbidden(f"Not allowed to subscribe to '{topic}'", details={"topic": topic})


async def _subscribe(conn: Connection, ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    topic = _topic(frame)
    await run_in_threadpool(_read_may_subscribe, ctx, topic)
    ctx.app.state.hub.subscribe(conn, topic)
    return {"topic": topic, "subscribed": True}


def _read_may_subscribe(ctx: WsContext, topic: str) -> None:
    with ctx.app.state.store.read() as db:
        _may_subscribe(db, ctx.principal, topic)


async def _unsubscribe(conn: Connection, ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    topic = _topic(frame)
    ctx.app.state.hub.unsubscribe(conn, topic)
    return {"topic": topic, "subscribed": False}


async def _auth(conn: Connection, ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    token = frame.get("token")
    if not isinstance(token, str) or not token:
        raise ValidationFailed("'token' is required")
    principal, expires_at = await run_in_threadpool(_check_token, conn.ws, token)
    if principal.user_id != conn.user_id:
        raise Forbidden("A socket stays with the user who opened it")
    conn.expires_at = expires_at
    return {"expiresAt": expires_at}


_BUILTINS = {
    "ping": _ping,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "auth": _auth,
}
