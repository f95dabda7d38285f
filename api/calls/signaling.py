"""WebRTC signaling over /ws between the two participants of a call.

Client frames (each may carry an `id`, answered with an `ack` or an `error` frame):

    call_offer     {callId, sdp}                     relayed as `call_offer`     to the other side
    call_answer    {callId, sdp}                     relayed as `call_answer`
    ice_candidate  {callId, candidate: {candidate, sdpMid?, sdpMLineIndex?, usernameFragment?}}
                                                      relayed as `ice_candidate` (an empty candidate
                                                      string means end of candidates)
    call_state     {callId, muted?, audio?, video?}  relayed as `call_state`

Every frame is checked against the database, not against anything the socket remembers: the sender
must be a participant of the call (else 404, as over REST) and the call must be ringing or active
(active for `call_state`; else 409). Relayed data carries `callId` and `fromUserId` and goes to the
other participant only, on whichever process holds their sockets. Nothing here is stored: SDP and
candidates only pass through.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

from pydantic import ValidationError

from api.calls import service
from api.calls.models import CallStatus
from api.calls.schemas import CallStateIn, IceIn, SdpIn
from api.core.errors import ValidationFailed
from api.core.schemas import RequestModel
from api.realtime.dispatch import WsContext, WsHandler
from api.realtime.relay import LivePush

NEGOTIATING = frozenset({CallStatus.ringing, CallStatus.active})
IN_CALL = frozenset({CallStatus.active})

M = TypeVar("M", bound=RequestModel)


def _parse(model: type[M], frame: dict[str, Any]) -> M:
    fields = {k: v for k, v in frame.items() if k not in ("type", "id")}
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "frame", "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise ValidationFailed(f"Invalid {frame.get('type')} frame", details=details) from None


async def _relay(
    ctx: WsContext, event: str, call_id: int, allowed: frozenset[CallStatus], data: dict[str, Any]
) -> dict[str, Any]:
    me = ctx.principal.user_id
    other = await asyncio.to_thread(service.relay_target, ctx.app.state.store, me, call_id, allowed, event)
    await ctx.bus.publish([LivePush(event, {"callId": call_id, "fromUserId": me, **data}, user_ids=(other,))])
    return {"callId": call_id, "relayed": True}


async def call_offer(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    body = _parse(SdpIn, frame)
    return await _relay(ctx, "call_offer", body.call_id, NEGOTIATING, {"sdp": body.sdp})


async def call_answer(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    body = _parse(SdpIn, frame)
    return await _relay(ctx, "call_answer", body.call_id, NEGOTIATING, {"sdp": body.sdp})


async def ice_candidate(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    body = _parse(IceIn, frame)
    candidate = body.candidate.model_dump(by_alias=True, exclude_none=True)
    return await _relay(ctx, "ice_candidate", body.call_id, NEGOTIATING, {"candidate": candidate})


async def call_state(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    body = _parse(CallStateIn, frame)
    state = body.model_dump(by_alias=True, exclude_none=True, include={"muted", "audio", "video"})
    return await _relay(ctx, "call_state", body.call_id, IN_CALL, state)


WS_HANDLERS: dict[str, WsHandler] = {
    "call_offer": call_offer,
    "call_answer": call_answer,
    "ice_candidate": ice_candidate,
    "call_state": call_state,
}
