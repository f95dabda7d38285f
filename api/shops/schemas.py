from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, model_validator

from api.core.schemas import RequestModel, ResponseModel

Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class ShopCreate(RequestModel):
    name: Annotated[str, Field(min_length=2, max_length=120)]
    description: Annotated[str, Field(max_length=5000)] = ""
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    address: Annotated[str, Field(max_length=255)] | None = None
    delivery_available: bool = False

    @model_validator(mode="after")
    def _both_or_neither(self) -> ShopCreate:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together")
        return self


class ShopUpdate(RequestModel):
    name: Annotated[str, Field(min_length=2, max_length=120)] | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    address: Annotated[str, Field(max_length=255)] | None = None
    delivery_available: bool | None = None
    is_active: bool | None = None


class ShopOut(ResponseModel):
    id: int
    owner_id: int
    name: str
    description: str
    latitude: float | None
    longitude: float | None
    address: str | None
    delivery_available: bool
    follower_count: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class FollowOut(ResponseModel):
    following: bool
    follower_count: int


class FollowerOut(ResponseModel):
    user_id: int
    username: str
    followed_at: datetime
