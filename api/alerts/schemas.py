from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from api.core.schemas import MoneyIn, RequestModel, ResponseModel


class AlertCreate(RequestModel):
    product_id: Annotated[int, Field(ge=1)]
    target_price: MoneyIn


class AlertOut(ResponseModel):
    id: int
    product_id: int
    product_name: str
    current_price: Decimal
    currency: str
    target_price: Decimal
    is_active: bool
    notified: bool
    triggered_price: Decimal | None
    triggered_at: datetime | None
    created_at: datetime
