"""FastAPI dependencies: settings, store sessions, clock, the caller and the request's unit of work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.auth.models import Role
from api.core.clock import Clock
from api.core.context import current_request_id
from api.core.errors import Forbidden, Unauthorized
from api.core.settings import Settings
from api.db.engine import Store
from api.outbox.service import Uow

# Dependencies that do no I/O are `async def`: FastAPI runs sync ones in the thread pool, and each hop
# costs more than the work itself on hot read paths.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def _session(factory: sessionmaker[Session]) -> AsyncIterator[Session]:
    # Creating a session does no I/O (it connects on first use, in the handler's thread); closing one
    # that still holds a connection rolls back, which is I/O, so that part goes to the thread pool.
    session = factory()
    try:
        yield session
    finally:
        # SQLite's rollback is a local call of microseconds: cheaper inline than a thread hop.
        if session.in_transaction() and session.get_bind().dialect.name != "sqlite":
            # Not the request thread pool: when every one of its threads waits for a pooled connection,
            # a close queued behind them would never run and return its connection (seen under
            # overload on PostgreSQL until the pool timeout).
            await asyncio.to_thread(session.close)
        else:
            session.close()


# The hot dependencies read app.state directly rather than through the Settings/Store/Clock
# dependencies: FastAPI spends more resolving a sub-dependency than these attribute reads cost.


async def read_db(request: Request) -> AsyncIterator[Session]:
    store: Store = request.app.state.store
    async for session in _session(store.read):
        yield session


async def write_db(request: Request) -> AsyncIterator[Session]:
    store: Store = request.app.state.store
    async for session in _session(store.write):
        yield session


ReadDb = Annotated[Session, Depends(read_db)]
WriteDb = Annotated[Session, Depends(write_db)]


@dataclass(frozen=True)
class Principal:
    user_id: int
    role: str
    session_id: int

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin.value

    @property
    def is_staff(self) -> bool:
        return self.role in (Role.admin.value, Role.analyst.value)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'", code="INVALID_TOKEN")
    return token.strip()


async def optional_principal(request: Request) -> Principal | None:
    token = _bearer(request)
    if token is None:
        return None
    state = request.app.state
    settings: Settings = state.settings
    store: Store = state.store
    clock: Clock = state.clock
    # The auth domain depends on this module's types.
    from api.auth.service import FRESH, authenticate, check_session, settle_session

    now = clock.now()
    if not settings.is_sqlite:
        return await run_in_threadpool(authenticate, store, settings, now, token)
    # SQLite: the session read is a local call of tens of microseconds, cheaper inline than the thread
    # hop every authenticated request would otherwise pay. Writes (a touch, an expiry) may wait for the
    # write lock, so they go to the thread pool.
    principal, state = check_session(store, settings, now, token)
    if state == FRESH:
        return principal
    return await run_in_threadpool(settle_session, store, now, principal, state)


async def require_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized()
    return principal


async def require_admin(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    if not principal.is_admin:
        raise Forbidden("Admin role required")
    return principal


MaybeUser = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(require_principal)]
AdminUser = Annotated[Principal, Depends(require_admin)]


async def unit_of_work(request: Request, session: WriteDb, principal: MaybeUser) -> Uow:
    clock: Clock = request.app.state.clock
    return Uow(
        session=session,
        now=clock.now(),
        actor_user_id=principal.user_id if principal else None,
        request_id=current_request_id(),
        ip_address=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
    )


UowDep = Annotated[Uow, Depends(unit_of_work)]
