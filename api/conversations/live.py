"""Chat over /ws: send, typing and read receipts. Stub for wiring."""

from __future__ import annotations

from api.realtime.dispatch import WsHandler

WS_HANDLERS: dict[str, WsHandler] = {}
