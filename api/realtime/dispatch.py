"""What a WebSocket handler sees: the caller, the app, and ways to reply and to publish.

Each domain that accepts client messages over `/ws` exposes a `WS_HANDLERS` mapping of message type
to handler; `api/main.py` merges them. A handler raises an `ApiError` to answer with an error frame
(the seed's error format); whatever dict it returns is sent back as the `ack` of the client's `id`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import FastAPI

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
