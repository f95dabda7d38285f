"""Orders: placement (stock reserved atomically, idempotent on request) and the order status machine.

One order is one shop's cart in one currency: a client with a multi-shop cart places one order per shop.

Stock is reserved with a conditional `UPDATE ... WHERE stock >= :q`, so two buyers can never both take
the last unit; a shortage raises before anything commits, so the transaction leaves neither the order,
its items, the reserved stock nor the event behind. Status moves are conditional updates on the
status the caller saw (`WHERE status = :expected`), so of two concurrent moves only one can succeed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from api.catalog.models import Product
from api.core.deps import Principal
from api.core.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from api.core.schemas import MAX_PRICE
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.orders import fraud
from api.orders.models import IdempotencyKey, Order, OrderItem, OrderStatus, ReviewStatus
from api.orders.schemas import CancelIn, OrderCreate, OrderItemOut, OrderOut, OrderRole, PayIn, ShipIn
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.shops.models import Shop
from ml.registry import LoadedModel, ModelHolder

# An order's total stays within what a price may be: exact on SQLite's 15 significant digits too.
MAX_ORDER_TOTAL = MAX_PRICE


@dataclass(frozen=True)
class PlaceResult:
    """The response of `POST /api/orders`: freshly made, or replayed from its Idempotency-Key."""

    status_code: int
    body: dict[str, Any]
    replayed: bool


# --- reading -------------------------------------------------------------------------------------


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _visible(db: Session, principal: Principal, order_id: int) -> tuple[Order, int]:
    """The order and its shop's owner, if the caller is its buyer, that owner or an admin; else 404."""
    row = db.execute(
        select(Order, Shop.owner_id).join(Shop, Shop.id == Order.shop_id).where(Order.id == order_id)
    ).first()
    if row is None:
        raise NotFound("Order", order_id)
    order, owner_id = row
    if principal.is_admin or principal.user_id in (order.buyer_id, owner_id):
        return order, int(owner_id)
    raise NotFound("Order", order_id)


def visible_order(db: Session, principal: Principal, order_id: int) -> Order:
    """The order, if the caller is its buyer, the owner of its shop or an admin; 404 for anyone else."""
    return _visible(db, principal, order_id)[0]


def _items_by_order(db: Session, order_ids: list[int]) -> dict[int, list[OrderItemOut]]:
    out: dict[int, list[OrderItemOut]] = {oid: [] for oid in order_ids}
    if not order_ids:
        return out
    rows = db.execute(
        select(OrderItem, Product.name)
        .join(Product, Product.id == OrderItem.product_id)
        .where(OrderItem.order_id.in_(order_ids))
        .order_by(OrderItem.order_id, OrderItem.id)
    ).all()
    for item, name in rows:
        out[item.order_id].append(
            OrderItemOut(
                id=item.id,
                product_id=item.product_id,
                product_name=name,
                quantity=item.quantity,
                unit_price=item.unit_price,
                line_total=item.line_total,
            )
        )
    return out


def _out(order: Order, items: list[OrderItemOut], staff: bool = False) -> OrderOut:
    """`staff`: include the fraud score and model version (buyers and sellers see the review status)."""
    return OrderOut(
        id=order.id,
        buyer_id=order.buyer_id,
        shop_id=order.shop_id,
        status=order.status,
        total_amount=order.total_amount,
        currency=order.currency,
        payment_tx_hash=order.payment_tx_hash,
        payment_chain=order.payment_chain,
        shipping_address=order.shipping_address,
        tracking_number=order.tracking_number,
        cancel_reason=order.cancel_reason,
        created_at=order.created_at,
        updated_at=order.updated_at,
        paid_at=order.paid_at,
        shipped_at=order.shipped_at,
        delivered_at=order.delivered_at,
        cancelled_at=order.cancelled_at,
        review_status=order.review_status,
        fraud_score=order.fraud_score if staff else None,
        fraud_model_version=order.fraud_model_version if staff else None,
        items=items,
    )


def order_out(db: Session, order: Order, *, staff: bool = False) -> OrderOut:
    return _out(order, _items_by_order(db, [order.id])[order.id], staff)


def list_orders(
    db: Session,
    principal: Principal,
    *,
    role: OrderRole,
    all_orders: bool,
    status: OrderStatus | None,
    page: int,
    page_size: int,
) -> tuple[list[OrderOut], int]:
    """The caller's orders as buyer, or as seller (orders of the shops they own); admins may ask for all."""
    q = select(Order)
    if all_orders:
        if not principal.is_admin:
            raise Forbidden("Only admins can list every order")
    elif role is OrderRole.seller:
        q = q.where(Order.shop_id.in_(select(Shop.id).where(Shop.owner_id == principal.user_id)))
    else:
        q = q.where(Order.buyer_id == principal.user_id)
    if status is not None:
        q = q.where(Order.status == status.value)
    total = db.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    orders = list(
        db.execute(
            q.order_by(Order.created_at.desc(), Order.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).scalars()
    )
    items = _items_by_order(db, [o.id for o in orders])
    return [_out(o, items[o.id], principal.is_staff) for o in orders], int(total)


# --- placing an order ------------------------------------------------------------------------------


def request_hash(body: OrderCreate) -> str:
    """SHA-256 of the canonical request: keys sorted, items in product order, defaults filled in."""
    doc = body.model_dump(mode="json", by_alias=True)
    doc["items"] = sorted(doc["items"], key=lambda i: i["productId"])
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stored_key(db: Session, user_id: int, key: str) -> IdempotencyKey | None:
    return db.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar_one_or_none()


def _replay(stored: IdempotencyKey, digest: str) -> PlaceResult:
    if stored.request_hash != digest:
        raise ValidationFailed(
            "This Idempotency-Key was already used with a different request body",
            code="IDEMPOTENCY_KEY_REUSED",
            details={"key": stored.key},
        )
    return PlaceResult(stored.status_code, json.loads(stored.response_body), replayed=True)


def place_order(
    uow: Uow,
    principal: Principal,
    body: OrderCreate,
    idempotency_key: str | None,
    *,
    fraud_models: ModelHolder | None = None,
) -> PlaceResult:
    """Places the order, or replays the first response to the same (user, Idempotency-Key).

    The key is inserted first, in the order's transaction: a concurrent twin request blocks on the
    unique (user_id, key) index until the first commits, then fails with IntegrityError and replays
    the stored response, without ever touching stock. Failed requests store nothing (they roll back),
    so a retry after an error runs again."""
    s = uow.session
    # Before any write: a newly published model is loaded here, not while the order holds locks.
    model = fraud_models.get() if fraud_models is not None else None
    record: IdempotencyKey | None = None
    if idempotency_key is not None:
        digest = request_hash(body)
        stored = _stored_key(s, principal.user_id, idempotency_key)
        if stored is not None:
            return _replay(stored, digest)
        record = IdempotencyKey(
            user_id=principal.user_id,
            key=idempotency_key,
            request_hash=digest,
            status_code=0,
            response_body="",
            created_at=uow.now,
        )
        s.add(record)
        try:
            s.flush()
        except IntegrityError:
            s.rollback()  # the twin request committed first: answer as it did
            stored = _stored_key(s, principal.user_id, idempotency_key)
            if stored is None:  # pragma: no cover - the row that conflicted is committed
                raise Conflict(
                    "A request with this Idempotency-Key is in progress, retry",
                    code="IDEMPOTENCY_KEY_IN_PROGRESS",
                ) from None
            return _replay(stored, digest)

    order = _create_order(uow, principal, body, model)
    payload = order_out(s, order, staff=principal.is_staff).model_dump(mode="json", by_alias=True)
    if record is not None:
        record.status_code = 201
        record.response_body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return PlaceResult(201, payload, replayed=False)


def _create_order(
    uow: Uow, principal: Principal, body: OrderCreate, model: LoadedModel | None = None
) -> Order:
    s = uow.session
    wanted = {i.product_id: i.quantity for i in body.items}
    products = {p.id: p for p in s.execute(select(Product).where(Product.id.in_(wanted))).scalars()}
    for pid in wanted:
        product = products.get(pid)
        if product is None:
            raise NotFound("Product", pid, details={"productId": pid})
        if not product.is_active:
            raise ValidationFailed(
                f"Product {pid} is not for sale", code="PRODUCT_UNAVAILABLE", details={"productId": pid}
            )
    shop_ids = sorted({p.shop_id for p in products.values()})
    if len(shop_ids) > 1:
        raise ValidationFailed(
            "All items of an order must come from one shop: place one order per shop",
            code="MULTIPLE_SHOPS",
            details={"shopIds": shop_ids},
        )
    currencies = sorted({p.currency for p in products.values()})
    if len(currencies) > 1:
        raise ValidationFailed(
            "All items of an order must share one currency",
            code="MIXED_CURRENCIES",
            details={"currencies": currencies},
        )
    shop = s.get(Shop, shop_ids[0])
    assert shop is not None
    if shop.owner_id == principal.user_id:
        raise ValidationFailed("You cannot order from your own shop", code="CANNOT_ORDER_OWN_SHOP")
    if not shop.is_active:
        raise ValidationFailed(f"Shop {shop.id} is closed", code="SHOP_INACTIVE", details={"shopId": shop.id})

    lines = [
        (products[pid], qty, products[pid].price, products[pid].price * qty) for pid, qty in wanted.items()
    ]
    total = sum((line_total for *_, line_total in lines), Decimal(0))
    if total > MAX_ORDER_TOTAL:
        raise ValidationFailed(
            f"An order's total may not exceed {MAX_ORDER_TOTAL}",
            code="ORDER_TOO_LARGE",
            details={"total": str(total), "max": str(MAX_ORDER_TOTAL)},
        )

    # Reserve stock, in product-id order so concurrent orders lock rows in the same order (no deadlock).
    shortages: list[dict[str, Any]] = []
    for pid in sorted(wanted):
        qty = wanted[pid]
        result = s.execute(
            update(Product)
            .where(Product.id == pid, Product.is_active.is_(True), Product.stock >= qty)
            .values(stock=Product.stock - qty)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) == 0:
            available = s.execute(select(Product.stock).where(Product.id == pid)).scalar_one()
            shortages.append({"productId": pid, "requested": qty, "available": available})
    if shortages:
        # Raising rolls back the whole transaction: the stock already reserved above is released too.
        first = shortages[0]
        raise Conflict(
            f"Not enough stock for product {first['productId']}",
            code="INSUFFICIENT_STOCK",
            details={"items": shortages},
        )

    # Scored before the insert, so the features see only the buyer's earlier orders (as offline).
    verdict = fraud.check_order(model, s, principal.user_id, uow.now, total, sum(wanted.values()))
    order = Order(
        buyer_id=principal.user_id,
        shop_id=shop.id,
        status=OrderStatus.pending.value,
        total_amount=total,
        currency=currencies[0],
        shipping_address=body.shipping_address,
        created_at=uow.now,
        updated_at=uow.now,
        fraud_score=verdict.score if verdict else None,
        fraud_model_version=verdict.model_version if verdict else None,
        review_status=ReviewStatus.held.value if verdict and verdict.held else None,
    )
    s.add(order)
    s.flush()
    for product, qty, unit_price, line_total in lines:
        s.add(
            OrderItem(
                order_id=order.id,
                product_id=product.id,
                quantity=qty,
                unit_price=unit_price,
                line_total=line_total,
                created_at=uow.now,
            )
        )
    s.flush()
    uow.emit(
        EventType.order_placed,
        "order",
        order.id,
        {
            "buyerId": principal.user_id,
            "shopId": shop.id,
            "currency": order.currency,
            "total": str(total),
            "itemCount": len(lines),
            "items": [
                {"productId": p.id, "quantity": q, "unitPrice": str(u), "lineTotal": str(lt)}
                for p, q, u, lt in lines
            ],
        },
        shop_id=shop.id,
        order_id=order.id,
    )
    notify(
        uow,
        shop.owner_id,
        NotificationType.order_update,
        f"New order #{order.id}",
        f"{len(lines)} item(s), {total.normalize():f} {order.currency}, awaiting payment",
        {"orderId": order.id, "shopId": shop.id, "status": order.status},
    )
    if verdict is not None and verdict.held:
        fraud.hold(uow, order, verdict)
    return order


# --- the status machine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    action: str
    sources: frozenset[OrderStatus]
    target: OrderStatus
    actors: frozenset[str]  # "buyer" and/or "seller" (the shop's owner)
    event: EventType
    stamp: str  # the *_at column the move sets


PAY = Move(
    "pay",
    frozenset({OrderStatus.pending}),
    OrderStatus.paid,
    frozenset({"buyer"}),
    EventType.order_paid,
    "paid_at",
)
CANCEL = Move(
    "cancel",
    frozenset({OrderStatus.pending, OrderStatus.paid}),
    OrderStatus.cancelled,
    frozenset({"buyer", "seller"}),
    EventType.order_cancelled,
    "cancelled_at",
)
SHIP = Move(
    "ship",
    frozenset({OrderStatus.paid}),
    OrderStatus.shipped,
    frozenset({"seller"}),
    EventType.order_shipped,
    "shipped_at",
)
DELIVER = Move(
    "deliver",
    frozenset({OrderStatus.shipped}),
    OrderStatus.delivered,
    frozenset({"buyer", "seller"}),
    EventType.order_delivered,
    "delivered_at",
)


def _item_rows(db: Session, order_id: int) -> list[tuple[int, int]]:
    rows = db.execute(
        select(OrderItem.product_id, OrderItem.quantity)
        .where(OrderItem.order_id == order_id)
        .order_by(OrderItem.product_id)
    ).all()
    return [(r.product_id, r.quantity) for r in rows]


def _move(
    uow: Uow,
    principal: Principal,
    order_id: int,
    move: Move,
    values: dict[str, Any] | None = None,
    *,
    staff: bool = False,
    check: Callable[[Order], None] | None = None,
    conditions: tuple[ColumnElement[bool], ...] = (),
) -> tuple[Order, OrderStatus, str, int]:
    """Checks who may make the move and from which status, then makes it with a conditional UPDATE.

    `staff`: the caller is a reviewer the router already checked (side "staff", any order). `check`
    refuses the move for the loaded order; `conditions` are added to the UPDATE's WHERE so a
    concurrent change of what `check` looked at makes the move fail instead of overwriting it.

    Returns the refreshed order, the status it left, the caller's side and the other party's user id
    (the buyer, for staff)."""
    s = uow.session
    if staff:
        row = s.execute(
            select(Order, Shop.owner_id).join(Shop, Shop.id == Order.shop_id).where(Order.id == order_id)
        ).first()
        if row is None:
            raise NotFound("Order", order_id)
        order, owner_id = row[0], int(row[1])
        side = "staff"
    else:
        order, owner_id = _visible(s, principal, order_id)
        side = (
            "buyer"
            if order.buyer_id == principal.user_id
            else "seller"
            if owner_id == principal.user_id
            else ""
        )
        if side not in move.actors:
            who = " or ".join(
                sorted("the buyer" if a == "buyer" else "the shop's owner" for a in move.actors)
            )
            raise Forbidden(f"Only {who} can {move.action} this order")
    current = OrderStatus(order.status)
    if current not in move.sources:
        raise InvalidTransition("order", current.value, move.action)
    if check is not None:
        check(order)
    changes = {"status": move.target.value, "updated_at": uow.now, move.stamp: uow.now, **(values or {})}
    result = s.execute(
        update(Order)
        .where(Order.id == order.id, Order.status == current.value, *conditions)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(result) == 0:  # a concurrent request moved it first
        s.refresh(order)
        raise InvalidTransition("order", order.status, move.action)
    # The row now holds exactly these values: set them on the loaded order instead of reading it again.
    for name, value in changes.items():
        set_committed_value(order, name, value)
    other = owner_id if side == "buyer" else order.buyer_id
    return order, current, side, other


def _base_payload(order: Order, previous: OrderStatus, side: str) -> dict[str, Any]:
    return {
        "buyerId": order.buyer_id,
        "shopId": order.shop_id,
        "from": previous.value,
        "to": order.status,
        "by": side,
        "total": str(order.total_amount),
        "currency": order.currency,
    }


def _emit_and_notify(
    uow: Uow, order: Order, move: Move, payload: dict[str, Any], other: int, title: str, text: str
) -> None:
    uow.emit(move.event, "order", order.id, payload, shop_id=order.shop_id, order_id=order.id)
    notify(
        uow,
        other,
        NotificationType.order_update,
        title,
        text,
        {"orderId": order.id, "shopId": order.shop_id, "status": order.status},
    )


def _not_held(order: Order) -> None:
    if order.review_status == ReviewStatus.held.value:
        raise Conflict(
            f"Order {order.id} is held for fraud review and cannot be paid until it is released",
            code="ORDER_HELD",
            details={"orderId": order.id, "reviewStatus": order.review_status},
        )


def pay(uow: Uow, principal: Principal, order_id: int, body: PayIn | None) -> Order:
    body = body or PayIn()
    # No WHERE condition needed: an order is held only when placed, so a check that passed stays true.
    order, previous, side, other = _move(
        uow,
        principal,
        order_id,
        PAY,
        {"payment_tx_hash": body.tx_hash, "payment_chain": body.chain},
        check=_not_held,
    )
    items = _item_rows(uow.session, order.id)
    for pid, qty in items:
        uow.session.execute(
            update(Product)
            .where(Product.id == pid)
            .values(sales_count=Product.sales_count + qty)
            .execution_options(synchronize_session=False)
        )
    payload = _base_payload(order, previous, side) | {
        "txHash": body.tx_hash,
        "chain": body.chain,
        "items": [{"productId": pid, "quantity": qty} for pid, qty in items],
    }
    _emit_and_notify(
        uow,
        order,
        PAY,
        payload,
        other,
        f"Order #{order.id} paid",
        "The buyer paid: the order is ready to ship",
    )
    return order


def cancel(uow: Uow, principal: Principal, order_id: int, body: CancelIn | None) -> Order:
    reason = body.reason if body and body.reason else None
    return _cancel(uow, principal, order_id, reason)


def _must_be_held(order: Order) -> None:
    if order.review_status != ReviewStatus.held.value:
        raise Conflict(
            f"Order {order.id} is not held for review",
            code="ORDER_NOT_HELD",
            details={"orderId": order.id, "reviewStatus": order.review_status},
        )


def reject_held(uow: Uow, principal: Principal, order_id: int, note: str | None) -> Order:
    """Staff rejected a held order: cancelled by the cancel path (stock back, `order.cancelled` with
    `by: staff` and `review: rejected`), the buyer and the shop told."""
    return _cancel(uow, principal, order_id, note, review=True)


def _cancel(
    uow: Uow, principal: Principal, order_id: int, reason: str | None, *, review: bool = False
) -> Order:
    changes: dict[str, Any] = {"cancel_reason": reason}
    if review:
        changes |= {
            "review_status": ReviewStatus.rejected.value,
            "reviewed_by": principal.user_id,
            "reviewed_at": uow.now,
        }
    order, previous, side, other = _move(
        uow,
        principal,
        order_id,
        CANCEL,
        changes,
        staff=review,
        check=_must_be_held if review else None,
        conditions=(Order.review_status == ReviewStatus.held.value,) if review else (),
    )
    items = _item_rows(uow.session, order.id)
    for pid, qty in items:  # release the reserved stock; a paid order also gives its sales back
        values: dict[str, Any] = {"stock": Product.stock + qty}
        if previous is OrderStatus.paid:
            values["sales_count"] = Product.sales_count - qty
        uow.session.execute(
            update(Product)
            .where(Product.id == pid)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    payload = _base_payload(order, previous, side) | {
        "reason": reason,
        "wasPaid": previous is OrderStatus.paid,
        "stockReleased": [{"productId": pid, "quantity": qty} for pid, qty in items],
        "review": ReviewStatus.rejected.value if review else None,
    }
    by = {"buyer": "the buyer", "seller": "the shop", "staff": "the store's fraud review"}[side]
    title = f"Order #{order.id} cancelled"
    text = f"Cancelled by {by}" + (f": {reason}" if reason else "")
    _emit_and_notify(uow, order, CANCEL, payload, other, title, text)
    if review:  # the buyer was told above; the shop's reserved stock is back too
        owner_id = uow.session.execute(select(Shop.owner_id).where(Shop.id == order.shop_id)).scalar_one()
        notify(
            uow,
            int(owner_id),
            NotificationType.order_update,
            title,
            text,
            {"orderId": order.id, "shopId": order.shop_id, "status": order.status},
        )
    return order


def ship(uow: Uow, principal: Principal, order_id: int, body: ShipIn | None) -> Order:
    tracking = body.tracking_number if body else None
    order, previous, side, other = _move(uow, principal, order_id, SHIP, {"tracking_number": tracking})
    payload = _base_payload(order, previous, side) | {"trackingNumber": tracking}
    _emit_and_notify(
        uow,
        order,
        SHIP,
        payload,
        other,
        f"Order #{order.id} shipped",
        f"Tracking number: {tracking}" if tracking else "Your order is on its way",
    )
    return order


def deliver(uow: Uow, principal: Principal, order_id: int) -> Order:
    order, previous, side, other = _move(uow, principal, order_id, DELIVER)
    _emit_and_notify(
        uow,
        order,
        DELIVER,
        _base_payload(order, previous, side),
        other,
        f"Order #{order.id} delivered",
        "The order was delivered",
    )
    return order
