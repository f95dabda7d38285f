from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import service
from api.auth.models import User
from api.auth.schemas import LoginIn, RefreshIn, RegisterIn, RoleIn, SessionOut, TokenOut, UserOut
from api.core.deps import AdminUser, CurrentUser, ReadDb, SettingsDep, UowDep
from api.core.errors import NotFound
from api.core.responses import Envelope, EnvelopeResponse, ok

router = APIRouter(prefix="/api/auth", tags=["auth"])
sessions_router = APIRouter(prefix="/api/sessions", tags=["sessions"])
admin_router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.post("/register", status_code=201, response_model=Envelope[UserOut])
def register(body: RegisterIn, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    user = service.register(uow, settings, body)
    uow.commit()
    return ok(UserOut.model_validate(user), status_code=201)


@router.post("/login", response_model=Envelope[TokenOut])
def login(body: LoginIn, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    return ok(service.login(uow, settings, body))


@router.post("/refresh", response_model=Envelope[TokenOut])
def refresh(body: RefreshIn, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    return ok(service.refresh(uow, settings, body))


@router.post("/logout", response_model=Envelope[dict[str, bool]])
def logout(principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    service.logout(uow, principal)
    return ok({"loggedOut": True})


@router.get("/me", response_model=Envelope[UserOut])
def me(principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    user = db.get(User, principal.user_id)
    if user is None:
        raise NotFound("User", principal.user_id)
    return ok(UserOut.model_validate(user))


@sessions_router.get("", response_model=Envelope[list[SessionOut]])
def list_sessions(
    principal: CurrentUser, db: ReadDb, include_ended: Annotated[bool, Query(alias="includeEnded")] = False
) -> EnvelopeResponse:
    rows = service.list_sessions(db, principal, include_ended=include_ended)
    out = [
        SessionOut.model_validate(r).model_copy(update={"current": r.id == principal.session_id})
        for r in rows
    ]
    return ok(out)


@sessions_router.delete("/{session_id}", response_model=Envelope[SessionOut])
def revoke_session(session_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    return ok(SessionOut.model_validate(service.revoke(uow, principal, session_id)))


@admin_router.put("/users/{user_id}/role", response_model=Envelope[UserOut])
def set_role(user_id: int, body: RoleIn, admin: AdminUser, uow: UowDep) -> EnvelopeResponse:
    """Admins grant roles (analysts and admins are never self-registered)."""
    user = service.set_role(uow, user_id, body.role)
    uow.commit()
    return ok(UserOut.model_validate(user))
