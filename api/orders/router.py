from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request

from api.analytics.access import StaffUser
from api.core.deps import CurrentUser, ReadDb, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize
from api.orders import review, service
from api.orders.models import OrderStatus
from api.orders.schemas import CancelIn, OrderCreate, OrderOut, OrderRole, PayIn, ReviewIn, ShipIn

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
    request: Request,
    body: OrderCreate,
    principal: CurrentUser,
    uow: UowDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> EnvelopeResponse:
    """Places one shop's cart (one currency). With an `Idempotency-Key`, a retry replays the first answer.
    A fraud score at or above the serving model's threshold holds the order for staff review
    (`reviewStatus: held`): it is placed, but cannot be paid until released."""
    result = service.place_order(
        uow, principal, body, idempotency_key, fraud_models=request.app.state.fraud_models
    )
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


# Before /{order_id}: that path would match "review-queue" and answer 422.
@router.get("/review-queue", response_model=Envelope[list[OrderOut]])
def review_queue(
    principal: StaffUser,
    db: ReadDb,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    """Staff: the orders held by the fraud model and still pending, oldest first."""
    orders, total = review.review_queue(db, page=page, page_size=page_size)
    return paginated(orders, page=page, page_size=page_size, total=total)


@router.get("/{order_id}", response_model=Envelope[OrderOut])
def get_order(order_id: int, principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    order = service.visible_order(db, principal, order_id)
    return ok(service.order_out(db, order, staff=principal.is_staff))


@router.put("/{order_id}/review", response_model=Envelope[OrderOut])
def review_order(order_id: int, body: ReviewIn, principal: StaffUser, uow: UowDep) -> EnvelopeResponse:
    """Staff decide on a held order: `release` (it can be paid) or `reject` (cancelled, stock back)."""
    out = service.order_out(uow.session, review.review(uow, principal, order_id, body), staff=True)
    uow.commit()
    return ok(out)


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
