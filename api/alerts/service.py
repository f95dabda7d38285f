"""Price alerts (seed 001 §4): a price at or below a target notifies the user once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from api.alerts.models import PriceAlert
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow
from api.outbox.types import EventType


def trigger_alert(uow: Uow, alert: PriceAlert, price: Decimal, currency: str, product_name: str) -> None:
    alert.notified = True
    alert.is_active = False
    alert.triggered_price = price
    alert.triggered_at = uow.now
    uow.emit(EventType.alert_triggered, "price_alert", alert.id,
             {"userId": alert.user_id, "targetPrice": alert.target_price, "price": price, "currency": currency},
             product_id=alert.product_id)
    notify(uow, alert.user_id, NotificationType.price_alert, f"Price drop: {product_name}",
           f"{product_name} is now {price} {currency} (your target: {alert.target_price})",
           {"productId": alert.product_id, "alertId": alert.id, "price": str(price),
            "targetPrice": str(alert.target_price)})


def check_price_alerts(uow: Uow, product_id: int, price: Decimal, currency: str, product_name: str) -> int:
    """Fires every active alert on the product whose target the new price meets. Returns how many."""
    alerts = list(uow.session.execute(
        select(PriceAlert).where(PriceAlert.product_id == product_id, PriceAlert.is_active.is_(True),
                                 PriceAlert.notified.is_(False), PriceAlert.target_price >= price)
        .with_for_update()
    ).scalars())
    for alert in alerts:
        trigger_alert(uow, alert, price, currency, product_name)
    return len(alerts)
