"""What a WebSocket handler sees: the caller, the app, and ways to reply and to publish.

Each domain that accepts client messages over `/ws` exposes a `WS_HANDLERS` mapping of message type
to handler; `api/main.py` merges them. A handler raises an `ApiError` to answer with an error frame
(the seed's error format); whatever dict it returns is sent back as the `ack` of the client's `id`."""

from __future__ import annotations

import asyncio
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


_LIVE_KEYS = ("live_pushes", "live_events")


class GroupCommit:
    """Runs queued units of work from many sockets in one transaction, each in its own SAVEPOINT.

    Chat sends arrive hundreds a second; one transaction (and one thread-pool hop) each cost more than
    the statements themselves. Requests that arrive while a batch runs form the next batch. A failing
    request rolls back to its savepoint (its pushes and events are dropped with it) and gets its error;
    the others commit together, each still with its own events. If the commit itself fails, every
    request of the batch gets the error and nothing of the batch remains."""

    def __init__(self, app: FastAPI, max_batch: int = 100) -> None:
        self.app = app
        self.max_batch = max_batch
        self.pending: list[tuple[WsContext, Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self.running = False

    async def submit(self, ctx: WsContext, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((ctx, fn, args, future))
        if not self.running:
            self.running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                try:
                    outcomes = await run_in_threadpool(self._run, batch)
                except Exception as exc:  # the commit failed: the whole batch with it
                    outcomes = [(False, exc)] * len(batch)
                for (_, _, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self.running = False

    def _run(self, batch: list[Any]) -> list[tuple[bool, Any]]:
        from api.outbox.service import Uow

        store = self.app.state.store
        clock = self.app.state.clock
        outcomes: list[tuple[bool, Any]] = []
        with store.write() as session:
            for ctx, fn, args, _ in batch:
                info = session.info
                marks = {k: len(info.get(k, ())) for k in _LIVE_KEYS}
                events_before = info.get("events", 0)
                writes_before = info.get("writes", 0)
                types_before = set(info.get("event_types", ()))
                uow = Uow(
                    session=session,
                    now=clock.now(),
                    actor_user_id=ctx.principal.user_id,
                    request_id=f"ws-{ctx.connection_id}-{uuid.uuid4().hex[:8]}",
                )
                try:
                    with session.begin_nested():
                        outcomes.append((True, fn(uow, ctx.principal, *args)))
                except Exception as exc:
                    for key, mark in marks.items():
                        if key in info:
                            del info[key][mark:]
                    info["events"] = events_before
                    info["writes"] = writes_before
                    info["event_types"] = types_before
                    outcomes.append((False, exc))
            session.commit()
        return outcomes


async def run_write_grouped(ctx: WsContext, fn: Callable[..., Any], *args: Any) -> Any:
    """`run_write`, but sharing a transaction with other sockets' writes of the same moment."""
    group: GroupCommit | None = getattr(ctx.app.state, "group_commit", None)
    if group is None:
        group = ctx.app.state.group_commit = GroupCommit(ctx.app)
    return await group.submit(ctx, fn, args)
