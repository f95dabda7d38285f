"""mart_shop_daily recomputed straight from the store's own tables, with SQL of its own (not the dbt
models'): the definitions of docs/contract, applied to product_views, messages, orders, shops, products
and the outbox's follow events. Money is summed as Decimal in Python (SQLite has no decimal type)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Engine, text

CENT_MILLIONTH = Decimal("0.00000001")
COLUMNS = (
    "currency",
    "views",
    "unique_visitors",
    "product_views",
    "messages_received",
    "orders",
    "paid_orders",
    "revenue",
    "new_followers",
    "conversion_rate",
    "avg_order_value",
)
REVENUE_STATUSES = ("paid", "shipped", "delivered")
Key = tuple[int, date]


def _rows(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql)))


def _day(value: str) -> date:
    return date.fromisoformat(value)


def expected_shop_daily(engine: Engine) -> dict[Key, dict[str, Any]]:
    shops = _rows(engine, "SELECT id, date(created_at) FROM shops")
    priced: dict[int, Counter[str]] = defaultdict(Counter)
    for shop_id, currency, n in _rows(
        engine, "SELECT shop_id, currency, count(*) FROM products GROUP BY shop_id, currency"
    ):
        priced[shop_id][currency] = n
    currency = {
        shop_id: min(c for c, n in priced[shop_id].items() if n == max(priced[shop_id].values()))
        if priced[shop_id]
        else "USDT"
        for shop_id, _ in shops
    }
    last_day = max(
        _day(d)
        for (d,) in _rows(
            engine,
            "SELECT max(date(occurred_at)) FROM events UNION ALL SELECT max(date(created_at)) FROM orders",
        )
        if d is not None
    )

    views = {
        (s, _day(d)): (n, visitors, products)
        for s, d, n, visitors, products in _rows(
            engine,
            """SELECT p.shop_id, date(v.created_at), count(*),
                      count(DISTINCT CASE WHEN v.user_id IS NOT NULL THEN 'user ' || v.user_id
                                          WHEN v.session_id IS NOT NULL THEN 'session ' || v.session_id
                                          ELSE 'view ' || v.id END),
                      count(DISTINCT v.product_id)
               FROM product_views v JOIN products p ON p.id = v.product_id
               GROUP BY p.shop_id, date(v.created_at)""",
        )
    }
    messages = {
        (s, _day(d)): n
        for s, d, n in _rows(
            engine,
            """SELECT c.shop_id, date(m.created_at), count(*)
               FROM messages m
               JOIN conversations c ON c.id = m.conversation_id
               JOIN shops s ON s.id = c.shop_id
               WHERE m.sender_id <> s.owner_id
               GROUP BY c.shop_id, date(m.created_at)""",
        )
    }
    follows = {
        (s, _day(d)): n
        for s, d, n in _rows(
            engine,
            """SELECT shop_id, date(occurred_at), count(*) FROM events
               WHERE event_type = 'shop.followed' GROUP BY shop_id, date(occurred_at)""",
        )
    }
    orders: dict[Key, dict[str, Any]] = defaultdict(
        lambda: {"orders": 0, "paid_orders": 0, "revenue": Decimal(0), "in_currency": 0}
    )
    for shop_id, d, status, paid, order_currency, total in _rows(
        engine,
        "SELECT shop_id, date(created_at), status, paid_at IS NOT NULL, currency, CAST(total_amount AS TEXT) "
        "FROM orders",
    ):
        tally = orders[(shop_id, _day(d))]
        counts = bool(paid) and status in REVENUE_STATUSES
        tally["orders"] += 1
        tally["paid_orders"] += int(counts)
        if order_currency == currency[shop_id]:
            tally["in_currency"] += 1
            if counts:
                tally["revenue"] += Decimal(total).quantize(CENT_MILLIONTH)

    expected: dict[Key, dict[str, Any]] = {}
    for shop_id, created in shops:
        day = _day(created)
        while day <= last_day:
            key = (shop_id, day)
            n_views, visitors, products = views.get(key, (0, 0, 0))
            o = orders.get(key, {"orders": 0, "paid_orders": 0, "revenue": Decimal(0), "in_currency": 0})
            expected[key] = {
                "currency": currency[shop_id],
                "views": n_views,
                "unique_visitors": visitors,
                "product_views": products,
                "messages_received": messages.get(key, 0),
                "orders": o["orders"],
                "paid_orders": o["paid_orders"],
                "revenue": o["revenue"],
                "new_followers": follows.get(key, 0),
                "conversion_rate": o["orders"] / visitors if visitors else None,
                "avg_order_value": (o["revenue"] / o["in_currency"]).quantize(CENT_MILLIONTH, ROUND_HALF_UP)
                if o["in_currency"]
                else None,
            }
            day += timedelta(days=1)
    return expected


def mart_shop_daily(rows: list[tuple[Any, ...]]) -> dict[Key, dict[str, Any]]:
    """Rows of `SELECT shop_id, date, <COLUMNS> FROM marts.mart_shop_daily` keyed like the truth."""
    return {(int(r[0]), r[1]): dict(zip(COLUMNS, r[2:], strict=True)) for r in rows}


MART_SQL = f"SELECT shop_id, date, {', '.join(COLUMNS)} FROM marts.mart_shop_daily"
