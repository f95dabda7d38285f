"""Audio/video calls (seed 001 §1): the status machine, call history, the ring timeout, and the checks
behind WebRTC signaling.

    initiated -> ringing -> active -> ended
          \\          \\-> rejected   (the receiver declines; or ends a call still ringing)
           \\-------> missed          (no answer within call_ring_timeout_seconds; or the caller hangs up
                                       before an answer)

Initiate writes the call, notifies the receiver and moves it to `ringing` in one transaction, with one
event per state (`call.initiated`, then `call.ringing`): a consumer replaying the outbox sees every
state of the machine, while no client ever sees a call stuck in `initiated`.

Every move is a conditional `UPDATE ... WHERE status = <the status the caller saw>`, so of two
concurrent moves (double accept, accept against the ring timeout) exactly one wins and the other is a
409. Each move writes its outbox event, an in-app notification (type `call`) and a live `call_*` push
to both participants.

Unanswered calls are found by time, not by an in-memory timer: `expire_unanswered` marks them missed
from the database alone, so a restart loses nothing; a move on an overdue call also expires it first,
so an answer after the timeout is refused even between two sweeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, cast

from sqlalchemy import ColumnElement, CursorResult, and_, func, or_, select, update
from sqlalchemy.orm import Session

from api.auth.models import User
from api.calls.models import CallStatus, VideoCall
from api.calls.schemas import CallInitiate, CallOut, UserRef
from api.conversations.models import Conversation
from api.conversations.service import is_blocked
from api.core.deps import Principal
from api.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from api.core.settings import Settings
from api.db.engine import Store
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow
from api.outbox.types import EventType

UNANSWERED = frozenset({CallStatus.initiated, CallStatus.ringing})
LIVE = UNANSWERED | {CallStatus.active}  # a user in one of these calls is busy
SWEEP_BATCH = 200

CALLER, RECEIVER = "caller", "receiver"


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _values(statuses: frozenset[CallStatus]) -> list[str]:
    return sorted(s.value for s in statuses)


def ring_timeout(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.call_ring_timeout_seconds)


# --- reading -------------------------------------------------------------------------------------


def _usernames(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.execute(select(User.id, User.username).where(User.id.in_(ids))).all()
    return {int(uid): str(name) for uid, name in rows}


def _out(call: VideoCall, names: dict[int, str]) -> CallOut:
    return CallOut(
        id=call.id,
        caller=UserRef(id=call.caller_id, username=names.get(call.caller_id, "")),
        receiver=UserRef(id=call.receiver_id, username=names.get(call.receiver_id, "")),
        conversation_id=call.conversation_id,
        call_type=call.call_type,
        status=call.status,
        duration=call.duration,
        started_at=call.started_at,
        ended_at=call.ended_at,
        created_at=call.created_at,
    )


def call_out(db: Session, call: VideoCall) -> CallOut:
    return _out(call, _usernames(db, {call.caller_id, call.receiver_id}))


def visible_call(db: Session, principal: Principal, call_id: int) -> VideoCall:
    """The call, if the caller of the request is one of its two participants; 404 for anyone else."""
    call = db.get(VideoCall, call_id)
    if call is None or principal.user_id not in (call.caller_id, call.receiver_id):
        raise NotFound("Call", call_id)
    return call


def list_history(
    db: Session, principal: Principal, *, status: CallStatus | None, page: int, page_size: int
) -> tuple[list[CallOut], int]:
    """The caller's own calls, made or received, newest first."""
    me = principal.user_id
    q = select(VideoCall).where(or_(VideoCall.caller_id == me, VideoCall.receiver_id == me))
    if status is not None:
        q = q.where(VideoCall.status == status.value)
    total = db.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    calls = list(
        db.execute(
            q.order_by(VideoCall.created_at.desc(), VideoCall.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).scalars()
    )
    names = _usernames(db, {c.caller_id for c in calls} | {c.receiver_id for c in calls})
    return [_out(c, names) for c in calls], int(total)


# --- announcing a move: event, notification, live push --------------------------------------------


@dataclass(frozen=True)
class Note:
    user_id: int
    title: str
    body: str


def _label(call: VideoCall) -> str:
    return "video call" if call.call_type == "video" else "audio call"


def _clock(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _announce(
    uow: Uow,
    call: VideoCall,
    event: EventType,
    previous: CallStatus | None,
    *,
    by: int | None,
    push: str | None,
    note: Note | None,
    extra: dict[str, Any] | None = None,
) -> None:
    s = uow.session
    conv = s.get(Conversation, call.conversation_id) if call.conversation_id is not None else None
    uow.emit(
        event,
        "call",
        call.id,
        {
            "callerId": call.caller_id,
            "receiverId": call.receiver_id,
            "conversationId": call.conversation_id,
            "callType": call.call_type,
            "from": previous.value if previous is not None else None,
            "to": call.status,
            "byUserId": by,
            "duration": call.duration,
            **(extra or {}),
        },
        shop_id=conv.shop_id if conv is not None else None,
        product_id=conv.product_id if conv is not None else None,
    )
    if note is not None:
        notify(
            uow,
            note.user_id,
            NotificationType.call,
            note.title,
            note.body,
            {
                "callId": call.id,
                "callerId": call.caller_id,
                "receiverId": call.receiver_id,
                "callType": call.call_type,
                "status": call.status,
            },
        )
    if push is not None:
        data = call_out(s, call).model_dump(mode="json", by_alias=True)
        if extra:
            data |= extra
        uow.push(push, data, user_ids=[call.caller_id, call.receiver_id])


def _transition(
    uow: Uow, call: VideoCall, sources: frozenset[CallStatus], target: CallStatus, **values: Any
) -> bool:
    """Moves the call from one of `sources` to `target`; False if a concurrent move got there first."""
    result = uow.session.execute(
        update(VideoCall)
        .where(VideoCall.id == call.id, VideoCall.status.in_(_values(sources)))
        .values(status=target.value, **values)
        .execution_options(synchronize_session=False)
    )
    uow.session.refresh(call)
    return _rowcount(result) == 1


def _mark_missed(uow: Uow, call: VideoCall, *, reason: str, by: int | None = None) -> bool:
    """Unanswered -> missed: the receiver gets a missed-call notification. False if it had moved on."""
    previous = CallStatus(call.status)
    if previous not in UNANSWERED:
        return False
    if not _transition(uow, call, UNANSWERED, CallStatus.missed, ended_at=uow.now, duration=0):
        return False
    names = _usernames(uow.session, {call.caller_id})
    caller = names.get(call.caller_id, "someone")
    _announce(
        uow,
        call,
        EventType.call_missed,
        previous,
        by=by,
        push="call_missed",
        note=Note(
            call.receiver_id, f"Missed {_label(call)} from {caller}", f"You missed a call from {caller}"
        ),
        extra={"reason": reason},
    )
    return True


def _expire_due(
    uow: Uow, settings: Settings, *, user_ids: list[int] | None = None, call_ids: list[int] | None = None
) -> tuple[int, int]:
    """Marks missed the unanswered calls (of these users, or these calls) older than the ring timeout.
    Returns (marked, looked at): at most SWEEP_BATCH are looked at per call."""
    q = select(VideoCall).where(_due(uow.now, settings))
    if user_ids is not None:
        q = q.where(or_(VideoCall.caller_id.in_(user_ids), VideoCall.receiver_id.in_(user_ids)))
    if call_ids is not None:
        q = q.where(VideoCall.id.in_(call_ids))
    calls = list(uow.session.execute(q.order_by(VideoCall.id).limit(SWEEP_BATCH)).scalars())
    return sum(_mark_missed(uow, c, reason="no_answer") for c in calls), len(calls)


def _due(now: datetime, settings: Settings) -> ColumnElement[bool]:
    return and_(
        VideoCall.status.in_(_values(UNANSWERED)), VideoCall.created_at <= now - ring_timeout(settings)
    )


def expire_unanswered(store: Store, settings: Settings, now: datetime) -> int:
    """The ring timeout's sweep: every call still unanswered `call_ring_timeout_seconds` after it was
    made becomes missed, with its event, missed-call notification and push. Returns how many."""
    total = 0
    while True:
        # A lock-free look first: on SQLite a write session takes the database's write lock at once.
        with store.read() as db:
            if db.execute(select(VideoCall.id).where(_due(now, settings)).limit(1)).first() is None:
                return total
        with store.write() as session:
            uow = Uow(session=session, now=now)
            marked, seen = _expire_due(uow, settings)
            uow.commit()
        total += marked
        if seen < SWEEP_BATCH:
            return total


# --- the moves -----------------------------------------------------------------------------------


def _lock_users(s: Session, ids: list[int]) -> None:
    """Serialises call set-up per user on PostgreSQL (SQLite writers are serial already), so two
    concurrent calls to or from the same person cannot both pass the busy check. FOR NO KEY UPDATE
    does not block inserts elsewhere that merely reference these users."""
    s.execute(select(User.id).where(User.id.in_(ids)).order_by(User.id).with_for_update(key_share=True)).all()


def initiate(uow: Uow, settings: Settings, principal: Principal, body: CallInitiate) -> VideoCall:
    s = uow.session
    me = principal.user_id
    if body.receiver_id == me:
        raise ValidationFailed(
            "You cannot call yourself",
            code="CANNOT_CALL_SELF",
            details=[{"field": "receiverId", "message": "this is you"}],
        )
    receiver = s.get(User, body.receiver_id)
    if receiver is None or not receiver.is_active:
        raise NotFound("User", body.receiver_id)
    if body.conversation_id is not None:
        conv = s.get(Conversation, body.conversation_id)
        if conv is None or me not in (conv.buyer_id, conv.seller_id):
            raise NotFound("Conversation", body.conversation_id)
        if receiver.id not in (conv.buyer_id, conv.seller_id):
            raise ValidationFailed(
                "The receiver is not a participant of this conversation",
                code="NOT_A_PARTICIPANT",
                details=[{"field": "receiverId", "message": "not a participant of the conversation"}],
            )
    if is_blocked(s, receiver.id, me):
        raise Forbidden("This user does not accept your calls", code="BLOCKED")

    _lock_users(s, [me, receiver.id])
    _expire_due(uow, settings, user_ids=[me, receiver.id])  # a call past its timeout no longer busies anyone
    busy = s.execute(
        select(VideoCall.id, VideoCall.caller_id, VideoCall.receiver_id)
        .where(
            VideoCall.status.in_(_values(LIVE)),
            or_(VideoCall.caller_id.in_([me, receiver.id]), VideoCall.receiver_id.in_([me, receiver.id])),
        )
        .order_by(VideoCall.id)
    ).all()
    if any(me in (row.caller_id, row.receiver_id) for row in busy):
        raise Conflict("You are already in a call", code="BUSY", details={"userId": me})
    if busy:
        raise Conflict("The user is in another call", code="BUSY", details={"userId": receiver.id})

    call = VideoCall(
        caller_id=me,
        receiver_id=receiver.id,
        conversation_id=body.conversation_id,
        call_type=body.call_type.value,
        status=CallStatus.initiated.value,
        duration=None,
        started_at=None,
        ended_at=None,
        created_at=uow.now,
    )
    s.add(call)
    s.flush()
    _announce(uow, call, EventType.call_initiated, None, by=me, push=None, note=None)
    caller = _usernames(s, {me}).get(me, "someone")
    # The receiver is told (notification now, live push on commit), which is what makes it ring.
    _transition(uow, call, frozenset({CallStatus.initiated}), CallStatus.ringing)
    _announce(
        uow,
        call,
        EventType.call_ringing,
        CallStatus.initiated,
        by=me,
        push="call_incoming",
        note=Note(receiver.id, f"Incoming {_label(call)} from {caller}", f"{caller} is calling you"),
    )
    return call


def _side(call: VideoCall, user_id: int) -> str:
    return CALLER if call.caller_id == user_id else RECEIVER


def _load(uow: Uow, settings: Settings, principal: Principal, call_id: int, action: str) -> VideoCall:
    """The call for a move by a participant. An unanswered call past its timeout is marked missed
    first (committed on its own), and the move is refused as a move on a missed call."""
    call = visible_call(uow.session, principal, call_id)
    if CallStatus(call.status) in UNANSWERED and _expire_due(uow, settings, call_ids=[call.id])[0]:
        uow.commit()
        raise InvalidTransition("call", CallStatus.missed.value, action)
    return call


def _refuse(call: VideoCall, action: str) -> NoReturn:
    raise InvalidTransition("call", call.status, action)


def accept(uow: Uow, settings: Settings, principal: Principal, call_id: int) -> VideoCall:
    call = _load(uow, settings, principal, call_id, "accept")
    if _side(call, principal.user_id) != RECEIVER:
        raise Forbidden("Only the receiver can accept this call")
    previous = CallStatus(call.status)
    if previous not in UNANSWERED or not _transition(
        uow, call, frozenset({previous}), CallStatus.active, started_at=uow.now
    ):
        _refuse(call, "accept")
    receiver = _usernames(uow.session, {call.receiver_id}).get(call.receiver_id, "someone")
    _announce(
        uow,
        call,
        EventType.call_accepted,
        previous,
        by=principal.user_id,
        push="call_accepted",
        note=Note(call.caller_id, f"{receiver} answered your {_label(call)}", "The call is connected"),
    )
    return call


def _reject(uow: Uow, call: VideoCall, previous: CallStatus, by: int) -> VideoCall:
    if previous not in UNANSWERED or not _transition(
        uow, call, frozenset({previous}), CallStatus.rejected, ended_at=uow.now, duration=0
    ):
        _refuse(call, "reject")
    receiver = _usernames(uow.session, {call.receiver_id}).get(call.receiver_id, "someone")
    _announce(
        uow,
        call,
        EventType.call_rejected,
        previous,
        by=by,
        push="call_rejected",
        note=Note(call.caller_id, f"{receiver} declined your {_label(call)}", "The call was declined"),
    )
    return call


def reject(uow: Uow, settings: Settings, principal: Principal, call_id: int) -> VideoCall:
    call = _load(uow, settings, principal, call_id, "reject")
    if _side(call, principal.user_id) != RECEIVER:
        raise Forbidden("Only the receiver can reject this call")
    return _reject(uow, call, CallStatus(call.status), principal.user_id)


def end(uow: Uow, settings: Settings, principal: Principal, call_id: int) -> VideoCall:
    """Hangs up. An active call ends with its duration; a call not yet answered is cancelled: by the
    caller it becomes missed (the receiver gets a missed-call notification), by the receiver it is a
    rejection."""
    me = principal.user_id
    call = _load(uow, settings, principal, call_id, "end")
    previous = CallStatus(call.status)
    side = _side(call, me)
    if previous in UNANSWERED:
        if side == RECEIVER:
            return _reject(uow, call, previous, me)
        if not _mark_missed(uow, call, reason="cancelled", by=me):
            _refuse(call, "end")
        return call
    if previous is not CallStatus.active or call.started_at is None:
        _refuse(call, "end")
    assert call.started_at is not None
    duration = max(0, int((uow.now - call.started_at).total_seconds()))
    if not _transition(
        uow, call, frozenset({CallStatus.active}), CallStatus.ended, ended_at=uow.now, duration=duration
    ):
        _refuse(call, "end")
    other = call.receiver_id if side == CALLER else call.caller_id
    name = _usernames(uow.session, {me}).get(me, "someone")
    _announce(
        uow,
        call,
        EventType.call_ended,
        previous,
        by=me,
        push="call_ended",
        note=Note(other, f"{name} ended the {_label(call)}", f"Duration {_clock(duration)}"),
    )
    return call


# --- signaling -----------------------------------------------------------------------------------


def relay_target(
    store: Store, user_id: int, call_id: int, allowed: frozenset[CallStatus], action: str
) -> int:
    """For a signaling frame: the other participant, if `user_id` is in the call and it is in one of
    the `allowed` states. Outsiders get a 404 (calls are not revealed), a wrong state a 409."""
    with store.read() as db:
        row = db.execute(
            select(VideoCall.caller_id, VideoCall.receiver_id, VideoCall.status).where(
                VideoCall.id == call_id
            )
        ).first()
    if row is None or user_id not in (row.caller_id, row.receiver_id):
        raise NotFound("Call", call_id)
    if CallStatus(row.status) not in allowed:
        raise InvalidTransition("call", row.status, action)
    return int(row.receiver_id if row.caller_id == user_id else row.caller_id)
