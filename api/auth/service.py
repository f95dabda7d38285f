"""Sign-up, login, token refresh, logout and the session lifecycle of seed 001 §6."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth.models import Role, User, UserSession
from api.auth.schemas import LoginIn, RefreshIn, RegisterIn, TokenOut
from api.core.deps import Principal
from api.core.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from api.core.security import (
    create_access_token,
    decode_access_token,
    dummy_hash,
    hash_password,
    new_opaque_token,
    token_digest,
    verify_password,
)
from api.core.settings import Settings
from api.db.engine import Store
from api.outbox.service import Uow
from api.outbox.types import EventType


def _hash_cost(settings: Settings) -> dict[str, int]:
    return {"time_cost": settings.password_hash_time_cost, "memory_kib": settings.password_hash_memory_kib}


def register(uow: Uow, settings: Settings, body: RegisterIn) -> User:
    s = uow.session
    email = body.email.lower()
    taken = s.execute(
        select(User.email, User.username).where((User.email == email) | (User.username == body.username))
    ).first()
    if taken:
        field = "email" if taken.email == email else "username"
        raise Conflict(f"That {field} is already registered", code="ALREADY_EXISTS", details={"field": field})
    user = User(
        email=email,
        username=body.username,
        password_hash=hash_password(body.password, **_hash_cost(settings)),
        role=body.role,
        is_active=True,
        failed_login_count=0,
        created_at=uow.now,
        updated_at=uow.now,
    )
    s.add(user)
    try:
        s.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
        raise Conflict("That email or username is already registered", code="ALREADY_EXISTS") from exc
    uow.emit(
        EventType.user_registered,
        "user",
        user.id,
        {"role": user.role, "username": user.username},
        actor_user_id=user.id,
    )
    return user


def _device_info(body_info: dict[str, Any] | None, user_agent: str | None) -> dict[str, Any]:
    info: dict[str, Any] = {
        str(k)[:40]: (v if isinstance(v, int | float | bool) or v is None else str(v)[:200])
        for k, v in (body_info or {}).items()
    }
    if user_agent:
        info.setdefault("userAgent", user_agent)
    return info


def _issue_tokens(
    settings: Settings, user_id: int, role: str, session_id: int, now: datetime, refresh_token: str
) -> TokenOut:
    lifetime = timedelta(minutes=settings.access_token_minutes)
    access = create_access_token(
        user_id=user_id,
        session_id=session_id,
        role=role,
        now=now,
        lifetime=lifetime,
        secret=settings.secret,
        algorithm=settings.jwt_algorithm,
    )
    return TokenOut(
        access_token=access,
        refresh_token=refresh_token,
        token_type="bearer",
        expires_in=int(lifetime.total_seconds()),
        session_id=session_id,
    )


def login(uow: Uow, settings: Settings, body: LoginIn) -> TokenOut:
    # Prebuilt Core statements (below): every visit of a web or app user starts here.
    s = uow.session
    user = s.execute(_LOGIN, {"email": body.email.lower()}).first()
    if user is None:
        verify_password(dummy_hash(**_hash_cost(settings)), body.password)
        uow.emit(EventType.user_login_failed, "user", None, {"reason": "unknown_email"})
        uow.commit()
        raise Unauthorized("Invalid email or password", code="INVALID_CREDENTIALS")
    if not verify_password(user.password_hash, body.password) or not user.is_active:
        failed: int = s.execute(_FAILED, {"uid": user.id}).scalar_one()
        reason = "inactive" if user.is_active is False else "bad_password"
        uow.emit(
            EventType.user_login_failed,
            "user",
            user.id,
            {"reason": reason, "failedLoginCount": failed, "ip": uow.ip_address},
            actor_user_id=user.id,
        )
        uow.commit()
        raise Unauthorized("Invalid email or password", code="INVALID_CREDENTIALS")
    refresh = new_opaque_token()
    device_info = _device_info(body.device_info, uow.user_agent)
    session_id: int = s.execute(
        _NEW_SESSION,
        {
            "user_id": user.id,
            "session_token": new_opaque_token()[:64],
            "refresh_token_hash": token_digest(refresh),
            "device_info": device_info,
            "ip_address": uow.ip_address,
            "is_online": True,
            "last_activity": uow.now,
            "created_at": uow.now,
            "expires_at": uow.now + timedelta(days=settings.refresh_token_days),
        },
    ).scalar_one()
    s.execute(_LOGGED_IN, {"uid": user.id, "at": uow.now})
    uow.emit(
        EventType.user_logged_in,
        "session",
        session_id,
        {"userId": user.id, "ip": uow.ip_address, "deviceInfo": device_info},
        actor_user_id=user.id,
    )
    tokens = _issue_tokens(settings, user.id, user.role, session_id, uow.now, refresh)
    uow.commit()
    return tokens


def _end(uow: Uow, session: UserSession, reason: str, event: EventType) -> None:
    session.is_online = False
    session.ended_at = uow.now
    session.end_reason = reason
    uow.emit(
        event,
        "session",
        session.id,
        {"userId": session.user_id, "reason": reason},
        actor_user_id=session.user_id,
    )


def _idle_cutoff(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(minutes=settings.session_idle_minutes)


def refresh(uow: Uow, settings: Settings, body: RefreshIn) -> TokenOut:
    s = uow.session
    digest = token_digest(body.refresh_token)
    session = s.execute(
        select(UserSession).where(UserSession.refresh_token_hash == digest)
    ).scalar_one_or_none()
    if session is None or session.ended_at is not None:
        raise Unauthorized("Invalid refresh token", code="INVALID_TOKEN")
    if session.last_activity < _idle_cutoff(settings, uow.now):
        _end(uow, session, "expired", EventType.session_expired)
        uow.commit()
        raise Unauthorized("Session expired after inactivity", code="SESSION_EXPIRED")
    if session.expires_at <= uow.now:
        _end(uow, session, "refresh_expired", EventType.session_expired)
        uow.commit()
        raise Unauthorized("Refresh token expired", code="SESSION_EXPIRED")
    user = s.get(User, session.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("Invalid refresh token", code="INVALID_TOKEN")
    new_refresh = new_opaque_token()
    session.refresh_token_hash = token_digest(new_refresh)  # rotation: the old token is now useless
    session.last_activity = uow.now
    session.is_online = True
    uow.emit(EventType.token_refreshed, "session", session.id, {"userId": user.id}, actor_user_id=user.id)
    tokens = _issue_tokens(settings, user.id, user.role, session.id, uow.now, new_refresh)
    uow.commit()
    return tokens


def logout(uow: Uow, principal: Principal) -> None:
    session = uow.session.get(UserSession, principal.session_id)
    if session is None or session.ended_at is not None:
        raise Unauthorized("Session already ended", code="SESSION_ENDED")
    _end(uow, session, "logout", EventType.user_logged_out)
    uow.commit()


def revoke(uow: Uow, principal: Principal, session_id: int) -> UserSession:
    session = uow.session.get(UserSession, session_id)
    if session is None or (session.user_id != principal.user_id and not principal.is_admin):
        raise NotFound("Session", session_id)
    if session.ended_at is None:
        _end(uow, session, "revoked", EventType.session_revoked)
        uow.commit()
    return session


def list_sessions(db: Session, principal: Principal, *, include_ended: bool) -> list[UserSession]:
    q = select(UserSession).where(UserSession.user_id == principal.user_id)
    if not include_ended:
        q = q.where(UserSession.ended_at.is_(None))
    return list(db.execute(q.order_by(UserSession.last_activity.desc()).limit(100)).scalars())


_users: Table = User.__table__  # type: ignore[assignment]
_sessions: Table = UserSession.__table__  # type: ignore[assignment]
# Built once: every authenticated request runs these, and building a statement costs more than running it.
_PRINCIPAL = (
    select(_sessions.c.ended_at, _sessions.c.last_activity, _users.c.role, _users.c.is_active)
    .join(_users, _users.c.id == _sessions.c.user_id)
    .where(_sessions.c.id == bindparam("sid"), _sessions.c.user_id == bindparam("uid"))
)
_LOGIN = select(_users.c.id, _users.c.password_hash, _users.c.is_active, _users.c.role).where(
    _users.c.email == bindparam("email")
)
_FAILED = (
    update(_users)
    .where(_users.c.id == bindparam("uid"))
    .values(failed_login_count=_users.c.failed_login_count + 1)
    .returning(_users.c.failed_login_count)
)
_NEW_SESSION = _sessions.insert().returning(_sessions.c.id)
_LOGGED_IN = (
    update(_users)
    .where(_users.c.id == bindparam("uid"))
    .values(failed_login_count=0, last_login_at=bindparam("at"))
)
_TOUCH = (
    update(_sessions)
    .where(_sessions.c.id == bindparam("sid"), _sessions.c.last_activity < bindparam("now"))
    .values(last_activity=bindparam("now"), is_online=True)
)


FRESH, TOUCH, IDLE = "fresh", "touch", "idle"


def check_session(store: Store, settings: Settings, now: datetime, token: str) -> tuple[Principal, str]:
    """The caller of a bearer token and its session's state: FRESH, TOUCH (`last_activity` is due a
    write) or IDLE (past the idle limit: `settle_session` expires it). One indexed read, no write."""
    claims = decode_access_token(token, secret=settings.secret, algorithm=settings.jwt_algorithm, now=now)
    with store.reader.connect() as conn:
        row = conn.execute(_PRINCIPAL, {"sid": claims.session_id, "uid": claims.user_id}).first()
    if row is None or row.ended_at is not None or not row.is_active:
        raise Unauthorized("Session has ended", code="SESSION_ENDED")
    principal = Principal(user_id=claims.user_id, role=row.role, session_id=claims.session_id)
    if row.last_activity < _idle_cutoff(settings, now):
        return principal, IDLE
    if (now - row.last_activity).total_seconds() >= settings.session_touch_seconds:
        return principal, TOUCH
    return principal, FRESH


def settle_session(store: Store, now: datetime, principal: Principal, state: str) -> Principal:
    """The writes `check_session` asked for: a heartbeat touch, or the idle session's expiry."""
    if state == IDLE:
        _expire_one(store, now, principal.session_id)
        raise Unauthorized("Session expired after inactivity", code="SESSION_EXPIRED")
    if state == TOUCH:
        # A heartbeat, not a domain event (the activity itself emits its own), so no unit of work.
        with store.writer.begin() as conn:
            conn.execute(_TOUCH, {"sid": principal.session_id, "now": now})
    return principal


def authenticate(store: Store, settings: Settings, now: datetime, token: str) -> Principal:
    """Check a bearer token against its live session; keep `last_activity` current; expire idle sessions."""
    principal, state = check_session(store, settings, now, token)
    return settle_session(store, now, principal, state)


def _expire_one(store: Store, now: datetime, session_id: int) -> None:
    with store.write() as db:
        session = db.get(UserSession, session_id)
        if session is not None and session.ended_at is None:
            _end(Uow(session=db, now=now), session, "expired", EventType.session_expired)
            db.commit()


def expire_idle_sessions(store: Store, settings: Settings, now: datetime, *, batch: int = 500) -> int:
    """Ends every session idle past the limit, one event each. Run periodically by the app."""
    ended = 0
    while True:
        with store.write() as db:
            rows = list(
                db.execute(
                    select(UserSession)
                    .where(
                        UserSession.ended_at.is_(None),
                        UserSession.last_activity < _idle_cutoff(settings, now),
                    )
                    .limit(batch)
                ).scalars()
            )
            if not rows:
                return ended
            uow = Uow(session=db, now=now)
            for session in rows:
                _end(uow, session, "expired", EventType.session_expired)
            db.commit()
            ended += len(rows)


def set_role(uow: Uow, user_id: int, role: str) -> User:
    """Admins (and the CLI's bootstrap) grant roles; sign-up only makes buyers and sellers."""
    if role not in {r.value for r in Role}:
        raise ValidationFailed(
            f"Unknown role {role!r}", details=[{"field": "role", "message": "unknown role"}]
        )
    user = uow.session.get(User, user_id)
    if user is None:
        raise NotFound("User", user_id)
    if user.role != role:
        old, user.role, user.updated_at = user.role, role, uow.now
        uow.emit(EventType.user_role_changed, "user", user.id, {"old": old, "new": role})
    return user
