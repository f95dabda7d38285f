"""Calls (seed 001 §1): the REST moves of the status machine and the caller's call history.

Only the two participants ever see a call: anyone else gets a 404, as if it did not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.calls import service
from api.calls.models import CallStatus
from api.calls.schemas import CallInitiate, CallOut, CallStatusIn
from api.core.deps import CurrentUser, ReadDb, SettingsDep, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize

router = APIRouter(prefix="/api/calls", tags=["calls"])


@router.post("/initiate", status_code=201, response_model=Envelope[CallOut])
def initiate(
    body: CallInitiate, principal: CurrentUser, uow: UowDep, settings: SettingsDep
) -> EnvelopeResponse:
    """Rings the receiver: the call is returned `ringing`, and both sides get a `call_incoming` push."""
    call = service.initiate(uow, settings, principal, body)
    out = service.call_out(uow.session, call)
    uow.commit()
    return ok(out, status_code=201)


@router.get("/history", response_model=Envelope[list[CallOut]])
def history(
    principal: CurrentUser,
    db: ReadDb,
    status: Annotated[CallStatusIn | None, Query()] = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    """The caller's calls, made and received, newest first."""
    calls, total = service.list_history(
        db, principal, status=CallStatus(status) if status else None, page=page, page_size=page_size
    )
    return paginated(calls, page=page, page_size=page_size, total=total)


@router.get("/{call_id}", response_model=Envelope[CallOut])
def get_call(call_id: int, principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    return ok(service.call_out(db, service.visible_call(db, principal, call_id)))


@router.put("/{call_id}/accept", response_model=Envelope[CallOut])
def accept(call_id: int, principal: CurrentUser, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    """The receiver answers a ringing call: it becomes `active` and its duration starts."""
    out = service.call_out(uow.session, service.accept(uow, settings, principal, call_id))
    uow.commit()
    return ok(out)


@router.put("/{call_id}/reject", response_model=Envelope[CallOut])
def reject(call_id: int, principal: CurrentUser, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    """The receiver declines a ringing call."""
    out = service.call_out(uow.session, service.reject(uow, settings, principal, call_id))
    uow.commit()
    return ok(out)


@router.put("/{call_id}/end", response_model=Envelope[CallOut])
def end(call_id: int, principal: CurrentUser, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    """Either side hangs up. A call not yet answered is cancelled instead: missed when the caller
    hangs up, rejected when the receiver does."""
    out = service.call_out(uow.session, service.end(uow, settings, principal, call_id))
    uow.commit()
    return ok(out)
