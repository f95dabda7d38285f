"""Chat over /ws: sending, typing indicators and read receipts.

Sending and reading go through the same service functions as REST, in their own transaction, so a
message sent over the socket is stored with its outbox event and pushed only after its commit.
Typing is ephemeral: it changes nothing, so it writes nothing, but it is still only relayed to the
other participant of a conversation the sender belongs to."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlalchemy.orm import Session

from api.conversations import service
from api.conversations.schemas import MessageCreate, MessageOut
from api.core.deps import Principal
from api.core.errors import Forbidden
from api.core.schemas import RequestModel
from api.outbox.service import Uow
from api.realtime.dispatch import WsContext, WsHandler, run_read, run_write, run_write_grouped
from api.realtime.relay import LivePush


class _Frame(RequestModel):
    type: str
    id: Annotated[str | int | None, Field(default=None)] = None


class SendFrame(_Frame):
    conversation_id: int
    body: Annotated[str, Field(min_length=1, max_length=4000)]


class TypingFrame(_Frame):
    conversation_id: int
    is_typing: bool = True


class ReadFrame(_Frame):
    conversation_id: int


def _send(uow: Uow, principal: Principal, conversation_id: int, body: str) -> dict[str, Any]:
    msg = service.send_message(uow, principal, conversation_id, MessageCreate(body=body))
    out: dict[str, Any] = MessageOut.model_validate(msg).model_dump(mode="json", by_alias=True)
    return out


async def send_message(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    f = SendFrame.model_validate(frame)
    message: dict[str, Any] = await run_write_grouped(ctx, _send, f.conversation_id, f.body)
    return {"message": message}


def _counterpart(db: Session, principal: Principal, conversation_id: int) -> int:
    other = service.counterpart(db, principal, conversation_id)
    if service.is_blocked(db, other, principal.user_id):
        raise Forbidden("The recipient does not accept your messages", code="BLOCKED")
    return other


async def typing(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    f = TypingFrame.model_validate(frame)
    other: int = await run_read(ctx, _counterpart, f.conversation_id)
    await ctx.bus.publish(
        [
            LivePush(
                "typing",
                {
                    "conversationId": f.conversation_id,
                    "userId": ctx.principal.user_id,
                    "isTyping": f.is_typing,
                },
                user_ids=(other,),
            )
        ]
    )
    return {"relayed": True}


async def mark_read(ctx: WsContext, frame: dict[str, Any]) -> dict[str, Any]:
    f = ReadFrame.model_validate(frame)
    count: int = await run_write(ctx, service.mark_read, f.conversation_id)
    return {"conversationId": f.conversation_id, "messagesRead": count}


WS_HANDLERS: dict[str, WsHandler] = {
    "send_message": send_message,
    "typing": typing,
    "mark_read": mark_read,
}
