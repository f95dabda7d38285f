from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.conversations import service
from api.conversations.schemas import BlockOut, ConversationCreate, ConversationOut, MessageCreate, MessageOut
from api.core.deps import CurrentUser, ReadDb, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize

router = APIRouter(prefix="/api/conversations", tags=["conversations"])

SearchText = Annotated[str, Query(min_length=1, max_length=100)]
MessageCursor = Annotated[int, Query(ge=1)]


@router.post("", status_code=201, response_model=Envelope[ConversationOut])
def open_conversation(body: ConversationCreate, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    conv, created = service.open_conversation(uow, principal, body)
    out = service.summary(uow.session, principal, conv.id)
    uow.commit()
    return ok(out, status_code=201 if created else 200)


@router.get("", response_model=Envelope[list[ConversationOut]])
def list_conversations(
    principal: CurrentUser,
    db: ReadDb,
    archived: Annotated[bool, Query()] = False,
    q: SearchText | None = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    rows, total = service.list_conversations(
        db, principal, archived=archived, q=q.strip() if q else None, page=page, page_size=page_size
    )
    return paginated(rows, page=page, page_size=page_size, total=total)


@router.get("/{conversation_id}", response_model=Envelope[ConversationOut])
def get_conversation(conversation_id: int, principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    return ok(service.get_conversation(db, principal, conversation_id))


@router.get("/{conversation_id}/messages", response_model=Envelope[list[MessageOut]])
def list_messages(
    conversation_id: int,
    principal: CurrentUser,
    db: ReadDb,
    before: MessageCursor | None = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 50,
) -> EnvelopeResponse:
    rows, total = service.list_messages(
        db, principal, conversation_id, before=before, page=page, page_size=page_size
    )
    return paginated(
        [MessageOut.model_validate(m) for m in rows], page=page, page_size=page_size, total=total
    )


@router.post("/{conversation_id}/messages", status_code=201, response_model=Envelope[MessageOut])
def send_message(
    conversation_id: int, body: MessageCreate, principal: CurrentUser, uow: UowDep
) -> EnvelopeResponse:
    msg = service.send_message(uow, principal, conversation_id, body)
    uow.commit()
    return ok(MessageOut.model_validate(msg), status_code=201)


@router.put("/{conversation_id}/read", response_model=Envelope[ConversationOut])
def mark_read(conversation_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    service.mark_read(uow, principal, conversation_id)
    out = service.summary(uow.session, principal, conversation_id)
    uow.commit()
    return ok(out)


@router.put("/{conversation_id}/archive", response_model=Envelope[ConversationOut])
def archive(conversation_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    service.set_archived(uow, principal, conversation_id, True)
    out = service.summary(uow.session, principal, conversation_id)
    uow.commit()
    return ok(out)


@router.put("/{conversation_id}/unarchive", response_model=Envelope[ConversationOut])
def unarchive(conversation_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    service.set_archived(uow, principal, conversation_id, False)
    out = service.summary(uow.session, principal, conversation_id)
    uow.commit()
    return ok(out)


@router.post("/{conversation_id}/block", response_model=Envelope[BlockOut])
def block(conversation_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    out = service.block(uow, principal, conversation_id)
    uow.commit()
    return ok(out)


@router.delete("/{conversation_id}/block", response_model=Envelope[BlockOut])
def unblock(conversation_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    out = service.unblock(uow, principal, conversation_id)
    uow.commit()
    return ok(out)
