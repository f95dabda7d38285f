"""The ML models' input frames, read from the warehouse (raw snapshots and marts) on either target.

The same frames, columns and meanings as tests/ml/frames.py builds from the store (that file's table
names each frame's warehouse source): money as `Decimal`, times as timezone-aware UTC. Every query is
plain SQL both DuckDB and PostgreSQL run; JSON payloads travel as text and are parsed here, so no
dialect's JSON operators are needed. The price a product had when it was viewed is joined in pandas
(`merge_asof` on the price changes), not with a correlated subquery per view.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from warehouse.marts import MartReader

MONEY = "money"
TIME = "time"
INT = "int"


def _frame(reader: MartReader, sql: str, columns: dict[str, str | None]) -> pd.DataFrame:
    """The rows of `sql` (selecting `columns`, in order) with money as Decimal and times as UTC."""
    rows = reader.fetch(sql)
    frame = pd.DataFrame(rows, columns=list(columns))
    for name, kind in columns.items():
        if kind == TIME:
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif kind == MONEY:
            frame[name] = pd.Series(
                [None if v is None else Decimal(v) for v in frame[name]], index=frame.index, dtype=object
            )
        elif kind == INT and not frame[name].isna().any():
            frame[name] = frame[name].astype("int64")
    return frame


ORDER_LINES_SQL = """
SELECT o.order_id, o.buyer_id, o.shop_id, o.status, o.created_at, o.cancelled_at,
       i.product_id, p.category_id, i.quantity, i.unit_price
FROM marts.fct_order_items i
JOIN marts.fct_orders o ON o.order_id = i.order_id
JOIN marts.dim_products p ON p.product_id = i.product_id
ORDER BY o.order_id, i.product_id
"""
ORDER_LINES_COLUMNS: dict[str, str | None] = {
    "order_id": INT,
    "buyer_id": INT,
    "shop_id": INT,
    "status": None,
    "created_at": TIME,
    "cancelled_at": TIME,
    "product_id": INT,
    "category_id": INT,
    "quantity": INT,
    "unit_price": MONEY,
}

# Orders without any line are left out, as the store-side query's inner join does.
ORDERS_SQL = """
SELECT order_id, buyer_id, shop_id, status, created_at, cancelled_at, total_amount, units
FROM marts.fct_orders
WHERE line_count > 0
ORDER BY order_id
"""
ORDERS_COLUMNS: dict[str, str | None] = {
    "order_id": INT,
    "buyer_id": INT,
    "shop_id": INT,
    "status": None,
    "created_at": TIME,
    "cancelled_at": TIME,
    "total_amount": MONEY,
    "units": INT,
}

PRODUCTS_SQL = """
SELECT p.id, p.shop_id, s.owner_id, p.category_id, p.price, p.stock, p.views, p.sales_count,
       p.rating, p.is_active, p.created_at
FROM raw.products p
JOIN raw.shops s ON s.id = p.shop_id
ORDER BY p.id
"""
PRODUCTS_COLUMNS: dict[str, str | None] = {
    "product_id": INT,
    "shop_id": INT,
    "owner_id": INT,
    "category_id": INT,
    "price": MONEY,
    "stock": INT,
    "views": INT,
    "sales_count": INT,
    "rating": None,
    "is_active": None,
    "created_at": TIME,
}

SIGNED_IN_VIEWS_SQL = """
SELECT v.user_id, v.product_id, v.occurred_at, v.view_id
FROM marts.fct_product_views v
WHERE v.user_id IS NOT NULL
ORDER BY v.occurred_at, v.view_id
"""
PRICE_CHANGES_SQL = """
SELECT product_id, occurred_at, id, CAST(payload AS VARCHAR)
FROM raw.events
WHERE event_type = 'product.price_changed' AND product_id IS NOT NULL
ORDER BY occurred_at, id
"""
USERS_SQL = "SELECT id, role, created_at FROM raw.users ORDER BY id"
FAILED_LOGINS_SQL = """
SELECT entity_id, occurred_at FROM raw.events
WHERE event_type = 'user.login_failed' AND entity_id IS NOT NULL
ORDER BY id
"""
MESSAGES_SQL = """
SELECT m.sender_id, c.shop_id, m.created_at
FROM raw.messages m
JOIN raw.conversations c ON c.id = m.conversation_id
WHERE m.sender_id = c.buyer_id
ORDER BY m.id
"""
PRICE_ALERTS_SQL = """
SELECT CAST(payload AS VARCHAR), product_id, occurred_at FROM raw.events
WHERE event_type = 'price_alert.created'
ORDER BY id
"""
FOLLOWS_SQL = "SELECT user_id, shop_id, created_at FROM raw.shop_followers ORDER BY id"
HIGH_WATER_SQL = "SELECT high_water_mark FROM meta.load_state WHERE stream = 'events'"


def order_lines(reader: MartReader) -> pd.DataFrame:
    return _frame(reader, ORDER_LINES_SQL, ORDER_LINES_COLUMNS)


def orders(reader: MartReader) -> pd.DataFrame:
    return _frame(reader, ORDERS_SQL, ORDERS_COLUMNS)


def products(reader: MartReader) -> pd.DataFrame:
    frame = _frame(reader, PRODUCTS_SQL, PRODUCTS_COLUMNS)
    frame["rating"] = frame["rating"].astype(float)
    frame["is_active"] = frame["is_active"].astype(bool)
    return frame


def users(reader: MartReader) -> pd.DataFrame:
    return _frame(reader, USERS_SQL, {"user_id": INT, "role": None, "created_at": TIME})


def failed_logins(reader: MartReader) -> pd.DataFrame:
    return _frame(reader, FAILED_LOGINS_SQL, {"user_id": INT, "at": TIME})


def messages(reader: MartReader) -> pd.DataFrame:
    return _frame(reader, MESSAGES_SQL, {"user_id": INT, "shop_id": INT, "at": TIME})


def follows(reader: MartReader) -> pd.DataFrame:
    return _frame(reader, FOLLOWS_SQL, {"user_id": INT, "shop_id": INT, "at": TIME})


def price_alerts(reader: MartReader) -> pd.DataFrame:
    raw = _frame(reader, PRICE_ALERTS_SQL, {"payload": None, "product_id": INT, "at": TIME})
    user_ids = [_payload(p).get("userId") for p in raw["payload"]]
    frame = pd.DataFrame({"user_id": user_ids, "product_id": raw["product_id"], "at": raw["at"]})
    frame = frame.dropna(subset=["user_id"]).reset_index(drop=True)
    frame["user_id"] = frame["user_id"].astype("int64")
    return frame


def views(reader: MartReader, catalogue: pd.DataFrame | None = None) -> pd.DataFrame:
    """Signed-in views with the price then: the newest change at or before the view, else the old price
    of the first later change, else today's price (never changed). `catalogue`: `products(reader)`, if
    already read."""
    catalogue = products(reader) if catalogue is None else catalogue
    v = _frame(
        reader,
        SIGNED_IN_VIEWS_SQL,
        {"user_id": INT, "product_id": INT, "viewed_at": TIME, "view_id": INT},
    )
    changes = _frame(reader, PRICE_CHANGES_SQL, {"product_id": INT, "at": TIME, "id": INT, "payload": None})
    parsed = [_payload(p) for p in changes["payload"]]
    changes["old_price"] = pd.Series([_money(p.get("oldPrice")) for p in parsed], dtype=object)
    changes["new_price"] = pd.Series([_money(p.get("newPrice")) for p in parsed], dtype=object)
    meta = catalogue.set_index("product_id")
    v = v[v["product_id"].isin(meta.index)].reset_index(drop=True)
    v["_row"] = np.arange(len(v))
    ordered = v.sort_values("viewed_at", kind="stable")
    price: pd.Series = pd.Series([None] * len(v), index=v["_row"].to_numpy(), dtype=object)
    if len(changes) and len(v):
        ch = changes.sort_values(["at", "id"], kind="stable")
        # Ties on time: the change with the highest id wins, as ORDER BY changed_at DESC, id DESC.
        before = pd.merge_asof(
            ordered[["_row", "product_id", "viewed_at"]],
            ch[["product_id", "at", "new_price"]],
            left_on="viewed_at",
            right_on="at",
            by="product_id",
            direction="backward",
            allow_exact_matches=True,
        )
        after = pd.merge_asof(
            ordered[["_row", "product_id", "viewed_at"]],
            ch.drop_duplicates(["product_id", "at"], keep="first")[["product_id", "at", "old_price"]],
            left_on="viewed_at",
            right_on="at",
            by="product_id",
            direction="forward",
            allow_exact_matches=False,
        )
        price = pd.Series(before["new_price"].to_numpy(), index=before["_row"].to_numpy(), dtype=object)
        later = pd.Series(after["old_price"].to_numpy(), index=after["_row"].to_numpy(), dtype=object)
        price = price.where(price.notna(), later)
    now = v["product_id"].map(meta["price"])
    price = price.reindex(v["_row"].to_numpy())
    v["price"] = [p if p is not None and p == p else n for p, n in zip(price, now, strict=True)]
    v["category_id"] = v["product_id"].map(meta["category_id"])
    v["shop_id"] = v["product_id"].map(meta["shop_id"]).astype("int64")
    if not v["category_id"].isna().any():
        v["category_id"] = v["category_id"].astype("int64")
    cols = ["user_id", "product_id", "category_id", "shop_id", "viewed_at", "price"]
    return v[cols].reset_index(drop=True)


def events_high_water_mark(reader: MartReader) -> int:
    """The highest store event id the warehouse has loaded: the data version of a model."""
    rows = reader.fetch(HIGH_WATER_SQL)
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _payload(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass
class WarehouseFrames:
    """Every fact frame, as tests/ml/frames.py's StoreFrames."""

    order_lines: pd.DataFrame
    orders: pd.DataFrame
    views: pd.DataFrame
    products: pd.DataFrame
    users: pd.DataFrame
    failed_logins: pd.DataFrame
    messages: pd.DataFrame
    price_alerts: pd.DataFrame
    follows: pd.DataFrame


FRAME_READERS: dict[str, Callable[[MartReader], pd.DataFrame]] = {
    "order_lines": order_lines,
    "orders": orders,
    "products": products,
    "users": users,
    "failed_logins": failed_logins,
    "messages": messages,
    "price_alerts": price_alerts,
    "follows": follows,
}


def read_frames(reader: MartReader) -> WarehouseFrames:
    catalogue = products(reader)
    return WarehouseFrames(
        order_lines=order_lines(reader),
        orders=orders(reader),
        views=views(reader, catalogue),
        products=catalogue,
        users=users(reader),
        failed_logins=failed_logins(reader),
        messages=messages(reader),
        price_alerts=price_alerts(reader),
        follows=follows(reader),
    )
