from __future__ import annotations

from typing import Annotated

from pydantic import Field

from api.core.schemas import RequestModel, ResponseModel


class ViewIn(RequestModel):
    product_id: Annotated[int, Field(ge=1)]
    session_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    duration: Annotated[int, Field(ge=0, le=86_400)] | None = None  # seconds on the page
    referrer: Annotated[str, Field(max_length=512)] | None = None


class ViewOut(ResponseModel):
    view_id: int
    views: int
