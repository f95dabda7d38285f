"""The ML models' input frames, read with plain SQL from the store's tables (and the truth file).

Every frame here is a "fact" frame, one row per thing that happened or exists, with the columns the
`ml/` functions document. The Dagster side builds the same frames from the warehouse: each query below
names the mart (or `raw.*` snapshot) that holds the same rows; the column names and meanings are the
contract, the source does not matter. Money comes back as `Decimal`, times as timezone-aware UTC.

| frame | one row per | store tables | warehouse |
| --- | --- | --- | --- |
| `order_lines` | order line | orders, order_items, products | fct_orders x raw.order_items x dim products |
| `orders` | order | orders, order_items | fct_orders |
| `views` | signed-in view, price then | product_views, price_history | fct_product_views + price changes |
| `products` | product (now) | products, shops | raw.products x raw.shops |
| `users` | account | users | raw.users |
| `failed_logins` | refused login of a known account | events (user.login_failed) | raw.events |
| `messages` | message a buyer sent to a shop | messages, conversations | raw.messages x raw.conversations |
| `price_alerts` | price alert set | price_alerts | raw.events (price_alert.created) |
| `follows` | shop follow | shop_followers | raw.shop_followers |
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Float, Integer, String, text
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeEngine

from api.db.types import Money, UTCDateTime
from simulator.truth import fraud_labels, personas, promotions

_TIME = UTCDateTime()
_MONEY = Money()


def _read(engine: Engine, sql: str, types: dict[str, TypeEngine[Any]]) -> pd.DataFrame:
    """Runs `sql` with the store's column types attached, so SQLite and PostgreSQL give the same values:
    aware UTC datetimes and exact Decimals."""
    stmt = text(sql).columns(**types)
    with engine.connect() as conn:
        result = conn.execute(stmt)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for name, kind in types.items():
        if isinstance(kind, UTCDateTime):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif isinstance(kind, Money):
            frame[name] = frame[name].astype(object)
    return frame


# Orders placed, with each line's product category. `status` lets a reader drop cancelled orders.
ORDER_LINES = """
SELECT o.id AS order_id, o.buyer_id, o.shop_id, o.status, o.created_at, o.cancelled_at,
       i.product_id, p.category_id, i.quantity, i.unit_price
FROM orders o
JOIN order_items i ON i.order_id = o.id
JOIN products p ON p.id = i.product_id
ORDER BY o.id, i.product_id
"""

ORDERS = """
SELECT o.id AS order_id, o.buyer_id, o.shop_id, o.status, o.created_at, o.cancelled_at,
       o.total_amount, SUM(i.quantity) AS units
FROM orders o
JOIN order_items i ON i.order_id = o.id
GROUP BY o.id, o.buyer_id, o.shop_id, o.status, o.created_at, o.cancelled_at, o.total_amount
ORDER BY o.id
"""

# The price a product had when it was viewed: the newest change at or before the view, else the price
# before the first later change, else today's price (never changed).
VIEWS = """
SELECT v.user_id, v.product_id, p.category_id, p.shop_id, v.created_at AS viewed_at,
       COALESCE(
         (SELECT h.new_price FROM price_history h
           WHERE h.product_id = v.product_id AND h.changed_at <= v.created_at
           ORDER BY h.changed_at DESC, h.id DESC LIMIT 1),
         (SELECT h.old_price FROM price_history h
           WHERE h.product_id = v.product_id AND h.changed_at > v.created_at
           ORDER BY h.changed_at, h.id LIMIT 1),
         p.price) AS price
FROM product_views v
JOIN products p ON p.id = v.product_id
WHERE v.user_id IS NOT NULL
ORDER BY v.created_at, v.id
"""

PRODUCTS = """
SELECT p.id AS product_id, p.shop_id, s.owner_id, p.category_id, p.price, p.stock, p.views,
       p.sales_count, p.rating, p.is_active, p.created_at
FROM products p
JOIN shops s ON s.id = p.shop_id
ORDER BY p.id
"""

USERS = "SELECT id AS user_id, role, created_at FROM users ORDER BY id"

FAILED_LOGINS = """
SELECT entity_id AS user_id, occurred_at AS at
FROM events
WHERE event_type = 'user.login_failed' AND entity_id IS NOT NULL
ORDER BY id
"""

MESSAGES = """
SELECT m.sender_id AS user_id, c.shop_id, m.created_at AS at
FROM messages m
JOIN conversations c ON c.id = m.conversation_id
WHERE m.sender_id = c.buyer_id
ORDER BY m.id
"""

PRICE_ALERTS = "SELECT user_id, product_id, created_at AS at FROM price_alerts ORDER BY id"

FOLLOWS = "SELECT user_id, shop_id, created_at AS at FROM shop_followers ORDER BY id"


@dataclass
class StoreFrames:
    order_lines: pd.DataFrame
    orders: pd.DataFrame
    views: pd.DataFrame
    products: pd.DataFrame
    users: pd.DataFrame
    failed_logins: pd.DataFrame
    messages: pd.DataFrame
    price_alerts: pd.DataFrame
    follows: pd.DataFrame


def read_frames(engine: Engine) -> StoreFrames:
    """Every fact frame the models read, from one store."""
    return StoreFrames(
        order_lines=_read(
            engine,
            ORDER_LINES,
            {
                "order_id": Integer(),
                "buyer_id": Integer(),
                "shop_id": Integer(),
                "status": String(),
                "created_at": _TIME,
                "cancelled_at": _TIME,
                "product_id": Integer(),
                "category_id": Integer(),
                "quantity": Integer(),
                "unit_price": _MONEY,
            },
        ),
        orders=_read(
            engine,
            ORDERS,
            {
                "order_id": Integer(),
                "buyer_id": Integer(),
                "shop_id": Integer(),
                "status": String(),
                "created_at": _TIME,
                "cancelled_at": _TIME,
                "total_amount": _MONEY,
                "units": Integer(),
            },
        ),
        views=_read(
            engine,
            VIEWS,
            {
                "user_id": Integer(),
                "product_id": Integer(),
                "category_id": Integer(),
                "shop_id": Integer(),
                "viewed_at": _TIME,
                "price": _MONEY,
            },
        ),
        products=_read(
            engine,
            PRODUCTS,
            {
                "product_id": Integer(),
                "shop_id": Integer(),
                "owner_id": Integer(),
                "category_id": Integer(),
                "price": _MONEY,
                "stock": Integer(),
                "views": Integer(),
                "sales_count": Integer(),
                "rating": Float(),
                "is_active": Boolean(),
                "created_at": _TIME,
            },
        ),
        users=_read(engine, USERS, {"user_id": Integer(), "role": String(), "created_at": _TIME}),
        failed_logins=_read(engine, FAILED_LOGINS, {"user_id": Integer(), "at": _TIME}),
        messages=_read(engine, MESSAGES, {"user_id": Integer(), "shop_id": Integer(), "at": _TIME}),
        price_alerts=_read(
            engine, PRICE_ALERTS, {"user_id": Integer(), "product_id": Integer(), "at": _TIME}
        ),
        follows=_read(engine, FOLLOWS, {"user_id": Integer(), "shop_id": Integer(), "at": _TIME}),
    )


# --- the truth file ------------------------------------------------------------------------------
def reference_prices(truth: dict[str, Any]) -> dict[int, Decimal]:
    return {c["categoryId"]: Decimal(str(c["referencePrice"])) for c in truth["categories"]}


__all__ = ["StoreFrames", "fraud_labels", "personas", "promotions", "read_frames", "reference_prices"]
