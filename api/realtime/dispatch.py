"""What a WebSocket handler sees: the caller, the app, and ways to reply and to publish.

Each domain that accepts client messages over `/ws` exposes a `WS_HANDLERS` mapping of message type
to handler; `api/main.py` merges them. A handler raises an `ApiError` to answer with an error frame
(the seed's error format); whatever dict it returns is sent back as the `ack` of the client's `id`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.core.deps import Principal
from api.realtime.relay import LivePush


class Publisher(Protocol):
    async def publish(self, pushes: list[LivePush]) -> None:
        """Delivers to local sockets at once and fans out to the other processes."""


@dataclass
class WsContext:
    principal: Principal
    app: FastAPI
    connection_id: str
    bus: Publisher
    # Sends one frame to this socket only: {"type": ..., "data": ...}.
    reply: Callable[[str, dict[str, Any]], Awaitable[None]]


WsHandler = Callable[[WsContext, dict[str, Any]], Awaitable[dict[str, Any] | None]]
WsHandlers = Mapping[str, WsHandler]


def _uow_call(ctx: WsContext, fn: Callable[..., Any], args: tuple[Any, ...], request_id: str) -> Any:
    from api.outbox.service import Uow

    store = ctx.app.state.store
    with store.write() as session:
        uow = Uow(
            session=session,
            now=ctx.app.state.clock.now(),
            actor_user_id=ctx.principal.user_id,
            request_id=request_id,
        )
        result = fn(uow, ctx.principal, *args)
        uow.commit()
        return result


async def run_write(ctx: WsContext, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs `fn(uow, principal, *args)` in its own transaction in the thread pool and commits it:
    the same unit of work a REST write gets, so events and live pushes behave the same."""
    request_id = f"ws-{ctx.connection_id}-{uuid.uuid4().hex[:8]}"
    return await run_in_threadpool(_uow_call, ctx, fn, args, request_id)


def _read_call(ctx: WsContext, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    with ctx.app.state.store.read() as db:
        return fn(db, ctx.principal, *args)


async def run_read(ctx: WsContext, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs `fn(db, principal, *args)` on a read session in the thread pool."""
    return await run_in_threadpool(_read_call, ctx, fn, args)
