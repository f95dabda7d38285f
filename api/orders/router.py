from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query

from api.core.deps import CurrentUser, ReadDb, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize
from api.orders import service
from api.orders.models import OrderStatus
from api.orders.schemas import CancelIn, OrderCreate, OrderOut, OrderRole, PayIn, ShipIn

router = APIRouter(prefix="/api/orders", tags=["orders"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Retry-safe placement: the same key and body replay the first response",
    ),
]


@router.post("", status_code=201, response_model=Envelope[OrderOut])
def place_order(
    body: OrderCreate, principal: CurrentUser, uow: UowDep, idempotency_key: IdempotencyKeyHeader = None
) -> EnvelopeResponse:
    """Places one shop's cart (one currency). With an `Idempotency-Key`, a retry replays the first answer."""
    result = service.place_order(uow, principal, body, idempotency_key)
    uow.commit()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return ok(result.body, status_code=result.status_code, headers=headers)


@router.get("", response_model=Envelope[list[OrderOut]])
def list_orders(
    principal: CurrentUser,
    db: ReadDb,
    role: Annotated[OrderRole, Query()] = OrderRole.buyer,
    all_orders: Annotated[bool, Query(alias="all")] = False,
    status: Annotated[OrderStatus | None, Query()] = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    orders, total = service.list_orders(
        db, principal, role=role, all_orders=all_orders, status=status, page=page, page_size=page_size
    )
    return paginated(orders, page=page, page_size=page_size, total=total)


@router.get("/{order_id}", response_model=Envelope[OrderOut])
def get_order(order_id: int, principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    return ok(service.order_out(db, service.visible_order(db, principal, order_id)))


@router.put("/{order_id}/pay", response_model=Envelope[OrderOut])
def pay(
    order_id: int, principal: CurrentUser, uow: UowDep, body: Annotated[PayIn | None, Body()] = None
) -> EnvelopeResponse:
    out = service.order_out(uow.session, service.pay(uow, principal, order_id, body))
    uow.commit()
    return ok(out)


@router.put("/{order_id}/cancel", response_model=Envelope[OrderOut])
def cancel(
    order_id: int, principal: CurrentUser, uow: UowDep, body: Annotated[CancelIn | None, Body()] = None
) -> EnvelopeResponse:
    out = service.order_out(uow.session, service.cancel(uow, principal, order_id, body))
    uow.commit()
    return ok(out)


@router.put("/{order_id}/ship", response_model=Envelope[OrderOut])
def ship(
    order_id: int, principal: CurrentUser, uow: UowDep, body: Annotated[ShipIn | None, Body()] = None
) -> EnvelopeResponse:
    out = service.order_out(uow.session, service.ship(uow, principal, order_id, body))
    uow.commit()
    return ok(out)


@router.put("/{order_id}/deliver", response_model=Envelope[OrderOut])
def deliver(order_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    out = service.order_out(uow.session, service.deliver(uow, principal, order_id))
    uow.commit()
    return ok(out)
