"""WebRTC signaling over /ws between the two participants of a call. Stub for wiring."""

from __future__ import annotations

from api.realtime.dispatch import WsHandler

WS_HANDLERS: dict[str, WsHandler] = {}
