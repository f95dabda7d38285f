"""Staff review of the orders the fraud model held (api/orders/fraud.py).

Release: `review_status` held → released with `order.released`, and the order can be paid again.
Reject: the order is cancelled by the ordinary cancel path (stock back, `order.cancelled`) and its
`review_status` becomes rejected in the same UPDATE. Both are conditional on the order still being held
and pending, so of two reviewers deciding at once only one decision lands.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from api.core.deps import Principal
from api.core.errors import Conflict, NotFound
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.orders import service
from api.orders.models import Order, OrderStatus, ReviewStatus
from api.orders.schemas import OrderOut, ReviewDecision, ReviewIn
from api.outbox.service import Uow
from api.outbox.types import EventType

# What the queue shows and what a decision requires (index ix_orders_review_status: held orders are few).
HELD: tuple[ColumnElement[bool], ...] = (
    Order.review_status == ReviewStatus.held.value,
    Order.status == OrderStatus.pending.value,
)


def review_queue(db: Session, *, page: int, page_size: int) -> tuple[list[OrderOut], int]:
    """Held orders still pending, oldest first (a buyer may cancel a held order: it leaves the queue)."""
    total = db.execute(select(func.count()).select_from(Order).where(*HELD)).scalar_one()
    orders = list(
        db.execute(
            select(Order)
            .where(*HELD)
            .order_by(Order.created_at, Order.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).scalars()
    )
    items = service._items_by_order(db, [o.id for o in orders])
    return [service._out(o, items[o.id], staff=True) for o in orders], int(total)


def review(uow: Uow, principal: Principal, order_id: int, body: ReviewIn) -> Order:
    if body.decision is ReviewDecision.reject:
        return service.reject_held(uow, principal, order_id, body.note)
    return release(uow, principal, order_id, body.note)


def release(uow: Uow, principal: Principal, order_id: int, note: str | None) -> Order:
    s = uow.session
    order = s.get(Order, order_id)
    if order is None:
        raise NotFound("Order", order_id)
    if order.review_status != ReviewStatus.held.value or order.status != OrderStatus.pending.value:
        raise Conflict(
            f"Order {order.id} is not held for review",
            code="ORDER_NOT_HELD",
            details={"orderId": order.id, "reviewStatus": order.review_status, "status": order.status},
        )
    changes = {
        "review_status": ReviewStatus.released.value,
        "reviewed_by": principal.user_id,
        "reviewed_at": uow.now,
        "updated_at": uow.now,
    }
    result = s.execute(
        update(Order)
        .where(Order.id == order.id, *HELD)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if service._rowcount(result) == 0:  # another reviewer (or the buyer's cancel) got there first
        s.refresh(order)
        raise Conflict(
            f"Order {order.id} is no longer held for review",
            code="ORDER_NOT_HELD",
            details={"orderId": order.id, "reviewStatus": order.review_status, "status": order.status},
        )
    for name, value in changes.items():
        set_committed_value(order, name, value)
    uow.emit(
        EventType.order_released,
        "order",
        order.id,
        {"buyerId": order.buyer_id, "note": note},
        shop_id=order.shop_id,
        order_id=order.id,
    )
    notify(
        uow,
        order.buyer_id,
        NotificationType.order_update,
        f"Order #{order.id} released",
        "The order passed review: it can be paid now",
        {"orderId": order.id, "shopId": order.shop_id, "status": order.status},
    )
    return order
