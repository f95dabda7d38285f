"""Price alerts (seed 001 §4): a price at or below a target notifies the user once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.alerts.models import PriceAlert
from api.alerts.schemas import AlertCreate, AlertOut
from api.catalog.models import Product
from api.core.deps import Principal
from api.core.errors import Conflict, NotFound
from api.db.types import MONEY_SCALE
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow
from api.outbox.types import EventType

_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def trigger_alert(uow: Uow, alert: PriceAlert, price: Decimal, currency: str, product_name: str) -> None:
    alert.notified = True
    alert.is_active = False
    alert.triggered_price = price
    alert.triggered_at = uow.now
    # Money goes into the JSON payload as strings: exact, and JSON columns cannot hold a Decimal.
    uow.emit(
        EventType.alert_triggered,
        "price_alert",
        alert.id,
        {
            "userId": alert.user_id,
            "targetPrice": str(alert.target_price),
            "price": str(price),
            "currency": currency,
        },
        product_id=alert.product_id,
    )
    notify(
        uow,
        alert.user_id,
        NotificationType.price_alert,
        f"Price drop: {product_name}",
        f"{product_name} is now {price} {currency} (your target: {alert.target_price})",
        {
            "productId": alert.product_id,
            "alertId": alert.id,
            "price": str(price),
            "targetPrice": str(alert.target_price),
        },
    )


def check_price_alerts(uow: Uow, product_id: int, price: Decimal, currency: str, product_name: str) -> int:
    """Fires every active alert on the product whose target the new price meets. Returns how many."""
    alerts = list(
        uow.session.execute(
            select(PriceAlert)
            .where(
                PriceAlert.product_id == product_id,
                PriceAlert.is_active.is_(True),
                PriceAlert.notified.is_(False),
                PriceAlert.target_price >= price,
            )
            .order_by(PriceAlert.id)
            .with_for_update()
        ).scalars()
    )
    for alert in alerts:
        trigger_alert(uow, alert, price, currency, product_name)
    return len(alerts)


# --- the alert owner's side ------------------------------------------------------------------------


def to_out(alert: PriceAlert, product: Product) -> AlertOut:
    return AlertOut(
        id=alert.id,
        product_id=alert.product_id,
        product_name=product.name,
        current_price=product.price,
        currency=product.currency,
        target_price=alert.target_price,
        is_active=alert.is_active,
        notified=alert.notified,
        triggered_price=alert.triggered_price,
        triggered_at=alert.triggered_at,
        created_at=alert.created_at,
    )


def create_alert(uow: Uow, principal: Principal, body: AlertCreate) -> AlertOut:
    s = uow.session
    product = s.get(Product, body.product_id)
    if product is None or not product.is_active:
        raise NotFound("Product", body.product_id)
    if _active_alert(s, principal.user_id, product.id) is not None:
        raise Conflict(
            "You already have an active alert on this product",
            code="ALERT_EXISTS",
            details={"productId": product.id},
        )
    alert = PriceAlert(
        user_id=principal.user_id,
        product_id=product.id,
        target_price=body.target_price.quantize(_QUANTUM),  # as stored and shown: 8 places
        is_active=True,
        notified=False,
        created_at=uow.now,
    )
    try:
        # A savepoint: the partial unique index settles a race with a concurrent create. Its release
        # runs the outbox guard, so the event goes in with the row.
        with s.begin_nested():
            s.add(alert)
            s.flush()
            uow.emit(
                EventType.alert_created,
                "price_alert",
                alert.id,
                {
                    "userId": principal.user_id,
                    "targetPrice": str(alert.target_price),
                    "currentPrice": str(product.price),
                    "currency": product.currency,
                },
                shop_id=product.shop_id,
                product_id=product.id,
            )
    except IntegrityError:
        raise Conflict(
            "You already have an active alert on this product",
            code="ALERT_EXISTS",
            details={"productId": product.id},
        ) from None
    if product.price <= alert.target_price:  # already there: the alert fires at once
        trigger_alert(uow, alert, product.price, product.currency, product.name)
    return to_out(alert, product)


def _active_alert(db: Session, user_id: int, product_id: int) -> PriceAlert | None:
    return db.execute(
        select(PriceAlert).where(
            PriceAlert.user_id == user_id, PriceAlert.product_id == product_id, PriceAlert.is_active.is_(True)
        )
    ).scalar_one_or_none()


def list_alerts(
    db: Session, principal: Principal, *, active: bool | None, page: int, page_size: int
) -> tuple[list[AlertOut], int]:
    conds = [PriceAlert.user_id == principal.user_id]
    if active is not None:
        conds.append(PriceAlert.is_active.is_(active))
    total = db.execute(select(func.count()).select_from(PriceAlert).where(*conds)).scalar_one()
    rows = db.execute(
        select(PriceAlert, Product)
        .join(Product, Product.id == PriceAlert.product_id)
        .where(*conds)
        .order_by(PriceAlert.created_at.desc(), PriceAlert.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [to_out(alert, product) for alert, product in rows], total


def delete_alert(uow: Uow, principal: Principal, alert_id: int) -> AlertOut:
    """Deactivates the alert (kept for history). Idempotent: an inactive alert stays as it is."""
    s = uow.session
    alert = s.get(PriceAlert, alert_id)
    if alert is None or alert.user_id != principal.user_id:  # someone else's: not revealed
        raise NotFound("Price alert", alert_id)
    product = s.get(Product, alert.product_id)
    assert product is not None  # the foreign key cascades
    if alert.is_active:
        alert.is_active = False
        uow.emit(
            EventType.alert_deleted,
            "price_alert",
            alert.id,
            {"userId": principal.user_id, "targetPrice": str(alert.target_price)},
            shop_id=product.shop_id,
            product_id=product.id,
        )
    return to_out(alert, product)
