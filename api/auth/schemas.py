from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import EmailStr, Field

from api.core.schemas import RequestModel, ResponseModel

Password = Annotated[str, Field(min_length=8, max_length=128)]
Username = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]


class RegisterIn(RequestModel):
    email: EmailStr = Field(max_length=254)
    password: Password
    username: Username
    # Only buyers and sellers sign up themselves; analysts and admins are made by an admin.
    role: Annotated[str, Field(pattern=r"^(buyer|seller)$")] = "buyer"


class LoginIn(RequestModel):
    email: EmailStr = Field(max_length=254)
    password: Annotated[str, Field(min_length=1, max_length=128)]
    device_info: dict[str, Any] | None = Field(default=None, max_length=20)


class RefreshIn(RequestModel):
    refresh_token: Annotated[str, Field(min_length=16, max_length=256)]


class UserOut(ResponseModel):
    id: int
    email: str
    username: str
    role: str
    created_at: datetime


class TokenOut(ResponseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    session_id: int


class SessionOut(ResponseModel):
    id: int
    device_info: dict[str, Any]
    ip_address: str | None
    is_online: bool
    last_activity: datetime
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    current: bool = False


class RoleIn(RequestModel):
    role: Annotated[str, Field(pattern=r"^(buyer|seller|analyst|admin)$")]
