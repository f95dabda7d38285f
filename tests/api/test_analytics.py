"""GET /api/analytics/shop/{shopId} and GET /api/analytics/dashboard through the real API, on a DuckDB
warehouse (read through its published snapshot) and on a PostgreSQL one.

Most tests fill the marts with rows of their own (the contract's columns) and check that the answers
carry exactly those numbers; `test_real_pipeline_*` builds the marts from store activity with the real
pipeline and checks the answer against the mart it built."""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from api.core.clock import ManualClock
from api.core.settings import Settings
from pipelines.run import run_pipeline
from tests.helpers import Actor, Api, data, error
from tests.warehouse.test_marts import (
    MartsWarehouse,
    make_warehouse,
    pg_warehouse_database,  # noqa: F401 (a fixture)
    platform_row,
    shop_row,
)
from warehouse import marts
from warehouse.duckdb import connect_write, publish_snapshot, read_connection
from warehouse.settings import WarehouseLocation, warehouse_location

# The store's backend does not matter here (the shop lookup is the only store read): SQLite only.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

D = date(2026, 3, 10)
DAY = timedelta(days=1)
LOADED = datetime(2026, 3, 12, 8, 30, tzinfo=UTC)


@pytest.fixture(params=[marts.DUCKDB, marts.POSTGRES])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> MartsWarehouse:
    return make_warehouse(request.param, tmp_path, request)


@pytest.fixture
def settings(settings: Settings, warehouse: MartsWarehouse) -> Settings:
    return settings.model_copy(update=warehouse.settings_update())


def _shop_url(shop_id: int, start: date | None = None, end: date | None = None, **extra: str) -> str:
    params = {
        **({"startDate": start.isoformat()} if start else {}),
        **({"endDate": end.isoformat()} if end else {}),
    }
    params.update(extra)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/analytics/shop/{shop_id}" + (f"?{query}" if query else "")


def _money(value: Decimal | int | str) -> str:
    return format(Decimal(value).quantize(Decimal("0.00000001")), "f")


@pytest.fixture
def seller(api: Api) -> Actor:
    return api.user("seller")


@pytest.fixture
def analyst(api: Api) -> Actor:
    return api.user("analyst")


@pytest.fixture
def shop(api: Api, seller: Actor) -> dict[str, Any]:
    return api.shop(seller)


def test_before_the_first_run_the_answer_is_503_run_the_pipeline(
    api: Api, warehouse: MartsWarehouse, seller: Actor, analyst: Actor, shop: dict[str, Any]
) -> None:
    for url, who in ((_shop_url(shop["id"]), seller), ("/api/analytics/dashboard", analyst)):
        err = error(api.client.get(url, headers=who.headers), 503, "WAREHOUSE_UNAVAILABLE")
        assert "pipeline" in err["message"] and "pipeline" in err["details"]["hint"]
    # Loaded, but dbt has not built the marts yet: still 503, not 500.
    warehouse.build(loaded_at=LOADED, with_marts=False)
    err = error(api.client.get(_shop_url(shop["id"]), headers=seller.headers), 503, "WAREHOUSE_UNAVAILABLE")
    assert "not built yet" in err["message"]
    warehouse.build()
    assert data(api.client.get(_shop_url(shop["id"]), headers=seller.headers))["shopId"] == shop["id"]


def test_only_the_owner_and_staff_read_a_shop_and_only_staff_the_dashboard(
    api: Api, warehouse: MartsWarehouse, seller: Actor, analyst: Actor, shop: dict[str, Any]
) -> None:
    warehouse.build(loaded_at=LOADED)
    url = _shop_url(shop["id"], D, D)
    other_seller, buyer, admin = api.user("seller"), api.user("buyer"), api.user("admin")

    error(api.client.get(url), 401, "UNAUTHORIZED")
    error(api.client.get("/api/analytics/dashboard"), 401, "UNAUTHORIZED")
    for who in (other_seller, buyer):
        error(api.client.get(url, headers=who.headers), 403, "FORBIDDEN")
        error(api.client.get("/api/analytics/dashboard", headers=who.headers), 403, "FORBIDDEN")
    error(api.client.get("/api/analytics/dashboard", headers=seller.headers), 403, "FORBIDDEN")
    for who in (seller, analyst, admin):
        assert data(api.client.get(url, headers=who.headers))["shopId"] == shop["id"]
    for who in (analyst, admin):
        data(api.client.get("/api/analytics/dashboard", headers=who.headers))
    error(api.client.get(_shop_url(shop["id"] + 1000, D, D), headers=analyst.headers), 404, "NOT_FOUND")
    error(api.client.get(_shop_url(0, D, D), headers=analyst.headers), 422, "VALIDATION_ERROR")


def test_dates_are_validated(
    api: Api, warehouse: MartsWarehouse, seller: Actor, shop: dict[str, Any]
) -> None:
    warehouse.build(loaded_at=LOADED)
    sid = shop["id"]

    def get(url: str) -> Any:
        return api.client.get(url, headers=seller.headers)

    err = error(get(_shop_url(sid, D, D - DAY)), 422, "VALIDATION_ERROR")
    assert err["details"][0]["field"] == "endDate" and "before" in err["message"]
    err = error(get(_shop_url(sid, D, D + 366 * DAY)), 422, "VALIDATION_ERROR")  # 367 days
    assert "366" in err["message"]
    assert len(data(get(_shop_url(sid, D, D + 365 * DAY)))["series"]) == 366
    for bad in ("2026-02-30", "yesterday", "2026-3-1x"):
        err = error(get(f"/api/analytics/shop/{sid}?startDate={bad}"), 422, "VALIDATION_ERROR")
        assert err["details"][0]["field"] == "startDate"
    error(get(f"/api/analytics/shop/{sid}?start_date=2026-03-01"), 422, "VALIDATION_ERROR")  # camelCase only


def test_defaults_are_the_30_days_to_today(
    api: Api, warehouse: MartsWarehouse, seller: Actor, analyst: Actor, shop: dict[str, Any]
) -> None:
    warehouse.build(loaded_at=LOADED)
    today = api.clock.now().date()
    body = data(api.client.get(_shop_url(shop["id"]), headers=seller.headers))
    assert (body["startDate"], body["endDate"]) == ((today - 29 * DAY).isoformat(), today.isoformat())
    assert len(body["series"]) == 30
    only_end = data(api.client.get(_shop_url(shop["id"], end=D), headers=seller.headers))
    assert (only_end["startDate"], only_end["endDate"]) == ((D - 29 * DAY).isoformat(), D.isoformat())
    dash = data(api.client.get("/api/analytics/dashboard", headers=analyst.headers))
    assert (dash["startDate"], dash["endDate"]) == ((today - 29 * DAY).isoformat(), today.isoformat())


def test_the_shop_answer_carries_the_marts_rows_and_recomputed_totals(
    api: Api, warehouse: MartsWarehouse, seller: Actor, shop: dict[str, Any]
) -> None:
    warehouse.build(loaded_at=LOADED)
    sid = shop["id"]
    start, end = D, D + 3 * DAY  # 4 days; the previous period is D-4 .. D-1
    rows = [
        shop_row(
            sid,
            D,
            views=10,
            unique_visitors=4,
            product_views=3,
            messages_received=2,
            orders=2,
            paid_orders=1,
            revenue=Decimal("19.99000000"),
            new_followers=1,
        ),
        shop_row(
            sid,
            D + 2 * DAY,
            views=6,
            unique_visitors=5,
            product_views=2,
            orders=1,
            paid_orders=1,
            revenue=Decimal("5.00000001"),
        ),
        shop_row(sid, D + 3 * DAY, views=1, unique_visitors=1),
        shop_row(sid, D - 2 * DAY, views=4, unique_visitors=2, orders=1, paid_orders=1, revenue=Decimal(10)),
        shop_row(sid, D + 4 * DAY, views=1000, orders=100, revenue=Decimal(1000)),  # after the period
        shop_row(sid + 1, D, views=77, orders=7, revenue=Decimal(70)),  # another shop
    ]
    warehouse.insert("mart_shop_daily", rows)

    body = data(api.client.get(_shop_url(sid, start, end), headers=seller.headers))
    assert body["shopId"] == sid and body["shopName"] == shop["name"]
    assert (body["startDate"], body["endDate"]) == (start.isoformat(), end.isoformat())

    # Every day of the period, in order, with the mart's numbers; a day without a row is zeros.
    series = body["series"]
    assert [s["date"] for s in series] == [(start + i * DAY).isoformat() for i in range(4)]
    by_day = {r["date"]: r for r in rows if r["shop_id"] == sid}
    for s in series:
        row = by_day.get(date.fromisoformat(s["date"]))
        if row is None:
            assert s == {
                "date": s["date"],
                "currency": None,
                "views": 0,
                "uniqueVisitors": 0,
                "productViews": 0,
                "messagesReceived": 0,
                "orders": 0,
                "paidOrders": 0,
                "revenue": "0.00000000",
                "newFollowers": 0,
                "conversionRate": None,
                "avgOrderValue": None,
            }
            continue
        assert s == {
            "date": row["date"].isoformat(),
            "currency": row["currency"],
            "views": row["views"],
            "uniqueVisitors": row["unique_visitors"],
            "productViews": row["product_views"],
            "messagesReceived": row["messages_received"],
            "orders": row["orders"],
            "paidOrders": row["paid_orders"],
            "revenue": _money(row["revenue"]),
            "newFollowers": row["new_followers"],
            "conversionRate": row["conversion_rate"],
            "avgOrderValue": None if row["avg_order_value"] is None else _money(row["avg_order_value"]),
        }

    totals = body["totals"]
    assert totals == {
        "days": 4,
        "views": 17,
        "uniqueVisitors": 10,
        "productViews": 5,
        "messagesReceived": 2,
        "orders": 3,
        "paidOrders": 2,
        "revenue": "24.99000001",
        "currency": "USDT",
        "revenueByCurrency": {"USDT": "24.99000001"},
        "newFollowers": 1,
        "conversionRate": 3 / 10,  # from the sums: the days' own rates were 0.5, 0.2 and 0
        "avgOrderValue": "8.33000000",  # 24.99000001 / 3 to 8 places
    }
    previous = body["previous"]
    assert (previous["startDate"], previous["endDate"]) == ((D - 4 * DAY).isoformat(), (D - DAY).isoformat())
    assert (previous["totals"]["views"], previous["totals"]["orders"]) == (4, 1)
    assert previous["totals"]["revenue"] == "10.00000000"
    change = body["change"]
    assert change["views"] == pytest.approx((17 - 4) / 4 * 100)
    assert change["revenue"] == pytest.approx((24.99000001 - 10) / 10 * 100, abs=1e-4)
    assert change["conversionRate"] == pytest.approx((0.3 - 0.5) / 0.5 * 100)
    assert change["messagesReceived"] is None  # nothing to compare with


def test_the_dashboard_carries_the_platform_marts_and_top_lists(
    api: Api, warehouse: MartsWarehouse, seller: Actor, analyst: Actor
) -> None:
    warehouse.build(loaded_at=LOADED)
    big, small, idle = api.shop(seller), api.shop(seller), api.shop(seller)
    product = api.product(seller, big["id"])
    warehouse.insert(
        "mart_platform_daily",
        [
            platform_row(
                D,
                active_users=40,
                new_users=5,
                buyers=4,
                orders=6,
                paid_orders=5,
                revenue=Decimal("60"),
                churned_users=2,
                churn_rate=0.05,
            ),
            platform_row(
                D + DAY,
                active_users=20,
                new_users=1,
                buyers=1,
                orders=1,
                paid_orders=1,
                revenue=Decimal("2.5"),
                churned_users=1,
                churn_rate=0.04,
            ),
            platform_row(D - DAY, active_users=10, buyers=1, orders=1, paid_orders=1, revenue=Decimal(3)),
        ],
    )
    warehouse.insert(
        "mart_revenue_daily",
        [
            {
                "date": D - DAY,
                "currency": "USDT",
                "orders": 1,
                "paid_orders": 1,
                "revenue": Decimal(3),
                "avg_order_value": Decimal(3),
                "cumulative_revenue": Decimal(3),
            },
            {
                "date": D,
                "currency": "USDT",
                "orders": 6,
                "paid_orders": 5,
                "revenue": Decimal(60),
                "avg_order_value": Decimal(10),
                "cumulative_revenue": Decimal(63),
            },
            {
                "date": D + DAY,
                "currency": "USDT",
                "orders": 1,
                "paid_orders": 1,
                "revenue": Decimal("2.5"),
                "avg_order_value": Decimal("2.5"),
                "cumulative_revenue": Decimal("65.5"),
            },
        ],
    )
    warehouse.insert(
        "mart_shop_daily",
        [
            shop_row(
                big["id"], D, views=30, unique_visitors=10, orders=5, paid_orders=4, revenue=Decimal(55)
            ),
            shop_row(small["id"], D, views=5, unique_visitors=5, orders=1, paid_orders=1, revenue=Decimal(5)),
            shop_row(small["id"], D + DAY, views=5, unique_visitors=4, orders=1, revenue=Decimal("2.5")),
            shop_row(idle["id"], D),
        ],
    )
    line = {"shop_id": big["id"], "currency": "USDT", "placed_date": D}
    warehouse.insert(
        "fct_order_items",
        [
            {
                **line,
                "order_item_id": 1,
                "order_id": 1,
                "product_id": product["id"],
                "quantity": 4,
                "counts_as_revenue": True,
                "revenue_amount": Decimal(40),
            },
            {
                **line,
                "order_item_id": 2,
                "order_id": 2,
                "product_id": product["id"],
                "quantity": 3,
                "counts_as_revenue": True,
                "revenue_amount": Decimal(15),
            },
            {
                **line,
                "order_item_id": 3,
                "order_id": 3,
                "product_id": product["id"],
                "quantity": 9,
                "counts_as_revenue": False,
                "revenue_amount": Decimal(0),
            },  # cancelled: an order, no sale
            {
                **line,
                "order_item_id": 4,
                "order_id": 4,
                "product_id": product["id"],
                "quantity": 50,
                "counts_as_revenue": True,
                "revenue_amount": Decimal(500),
                "placed_date": D - DAY,
            },
        ],
    )
    views = [
        {"event_id": f"v{i}", "product_id": product["id"], "shop_id": big["id"], "view_date": D}
        for i in range(6)
    ]
    warehouse.insert("fct_product_views", views)

    url = f"/api/analytics/dashboard?startDate={D.isoformat()}&endDate={(D + DAY).isoformat()}"
    body = data(api.client.get(url, headers=analyst.headers))
    kpis = body["kpis"]
    assert kpis == {
        "days": 2,
        "activeUserDays": 60,
        "avgDailyActiveUsers": 30.0,
        "peakDailyActiveUsers": 40,
        "newUsers": 6,
        "buyers": 5,
        "orders": 7,
        "paidOrders": 6,
        "revenue": "62.50000000",
        "currency": "USDT",
        "avgOrderValue": "8.92857143",  # 62.5 / 7
        "revenueByCurrency": [
            {
                "currency": "USDT",
                "orders": 7,
                "paidOrders": 6,
                "revenue": "62.50000000",
                "avgOrderValue": "8.92857143",
            },
        ],
        "conversionRate": 5 / 60,
        "churnedUsers": 3,
        "churnRate": 0.04,  # the last day's
    }
    assert body["previous"]["kpis"]["orders"] == 1 and body["previous"]["kpis"]["revenue"] == "3.00000000"
    assert body["change"]["orders"] == pytest.approx(600.0)
    assert [s["date"] for s in body["series"]] == [D.isoformat(), (D + DAY).isoformat()]
    assert [s["activeUsers"] for s in body["series"]] == [40, 20]
    assert body["series"][0]["avgOrderValue"] == "10.00000000"
    assert [(r["date"], r["cumulativeRevenue"]) for r in body["revenue"]] == [
        (D.isoformat(), "63.00000000"),
        ((D + DAY).isoformat(), "65.50000000"),
    ]
    assert [(s["shopId"], s["name"], s["orders"], s["revenue"]) for s in body["topShops"]] == [
        (big["id"], big["name"], 5, "55.00000000"),
        (small["id"], small["name"], 2, "7.50000000"),
    ]
    assert body["topShops"][1]["conversionRate"] == 2 / 9
    assert [
        (p["productId"], p["name"], p["shopId"], p["unitsSold"], p["orders"], p["revenue"], p["views"])
        for p in body["topProducts"]
    ] == [(product["id"], product["name"], big["id"], 7, 3, "55.00000000", 6)]


def test_every_answer_says_how_fresh_it_is(
    api: Api, warehouse: MartsWarehouse, seller: Actor, analyst: Actor, shop: dict[str, Any]
) -> None:
    loaded = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    warehouse.build(loaded_at=loaded)
    warehouse.insert("mart_platform_daily", [platform_row(D, active_users=1), platform_row(D + DAY)])
    for url, who in ((_shop_url(shop["id"], D, D), seller), ("/api/analytics/dashboard", analyst)):
        fresh = data(api.client.get(url, headers=who.headers))["freshness"]
        assert fresh["source"] == warehouse.target
        assert datetime.fromisoformat(fresh["loadedAt"]) == loaded
        assert datetime.fromisoformat(fresh["eventsLoadedAt"]) == loaded
        assert 600 <= fresh["ageSeconds"] < 600 + 60
        assert fresh["dataThrough"] == (D + DAY).isoformat()
        if warehouse.path is not None:
            snapshot = WarehouseLocation(warehouse.path).snapshot
            published = datetime.fromisoformat(fresh["publishedAt"])
            assert abs(published.timestamp() - snapshot.stat().st_mtime) < 1e-3
        else:
            assert fresh["publishedAt"] is None


def test_answers_are_cached_until_the_next_run_publishes(
    api: Api, app: Any, warehouse: MartsWarehouse, seller: Actor, shop: dict[str, Any]
) -> None:
    warehouse.build(loaded_at=LOADED)
    warehouse.insert("mart_shop_daily", [shop_row(shop["id"], D, views=1)])
    url = _shop_url(shop["id"], D, D)
    cache = app.state.analytics_cache

    assert data(api.client.get(url, headers=seller.headers))["totals"]["views"] == 1
    misses = cache.misses
    assert data(api.client.get(url, headers=seller.headers))["totals"]["views"] == 1
    assert cache.misses == misses, "the second read came from the cache"

    # The next run: new mart rows and a new load, published.
    warehouse.insert("mart_shop_daily", [shop_row(shop["id"], D, views=2)], replace=True)
    warehouse.loaded(LOADED + timedelta(hours=1))
    body = data(api.client.get(url, headers=seller.headers))
    assert body["totals"]["views"] == 2
    assert datetime.fromisoformat(body["freshness"]["loadedAt"]) == LOADED + timedelta(hours=1)
    assert cache.misses == misses + 1


@pytest.mark.parametrize("warehouse", [marts.DUCKDB], indirect=True)  # PostgreSQL readers have MVCC
def test_reads_never_fail_while_the_pipeline_writes(
    api: Api, warehouse: MartsWarehouse, seller: Actor, shop: dict[str, Any]
) -> None:
    assert warehouse.path is not None
    warehouse.build(loaded_at=LOADED)
    warehouse.insert("mart_shop_daily", [shop_row(shop["id"], D)])
    location = WarehouseLocation(warehouse.path)
    stop = threading.Event()
    published: list[int] = []
    failures: list[BaseException] = []

    def pipeline() -> None:
        try:
            conn = connect_write(location.path)  # held for the whole run, as the pipeline does
            try:
                n = 0
                while not stop.is_set() and n < 5000:
                    n += 1
                    conn.execute("BEGIN TRANSACTION")
                    conn.execute("UPDATE marts.mart_shop_daily SET views = ?, unique_visitors = ?", [n, n])
                    conn.execute(
                        "UPDATE meta.load_state SET loaded_at = ?", [LOADED + n * timedelta(seconds=1)]
                    )
                    conn.execute("COMMIT")
                    publish_snapshot(conn, location)
                    published.append(n)
            finally:
                conn.close()
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=pipeline)
    writer.start()
    views: list[int] = []
    try:
        while writer.is_alive() and len(views) < 40:
            body = data(api.client.get(_shop_url(shop["id"], D, D), headers=seller.headers))
            totals = body["totals"]
            assert totals["views"] == totals["uniqueVisitors"], "one whole published state"
            views.append(totals["views"])
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures, failures
    assert views == sorted(views), "never an older snapshot after a newer one"
    assert len(set(views)) > 1, (views, len(published))


def _mart_rows(settings: Settings, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows read straight from the warehouse the pipeline built, not through warehouse.marts."""
    if settings.warehouse_url:
        engine = create_engine(settings.warehouse_url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), params)]
        finally:
            engine.dispose()
    with read_connection(warehouse_location(settings)) as duck:
        return duck.execute(re.sub(r"(?<![:\w]):(\w+)", r"$\1", sql), params).fetchall()


@pytest.mark.parametrize("warehouse", [marts.DUCKDB, marts.POSTGRES], indirect=True)
def test_real_pipeline_marts_are_what_the_api_serves(
    api: Api, warehouse: MartsWarehouse, settings: Settings, clock: ManualClock
) -> None:
    day1 = (clock.now() - 3 * DAY).date()
    day2 = day1 + DAY
    clock.set(datetime.combine(day1, time(9), tzinfo=UTC))
    seller, analyst = api.user("seller"), api.user("analyst")
    ann, bob = api.user("buyer"), api.user("buyer")
    shop = api.shop(seller)
    p1 = api.product(seller, shop["id"], price="25.00", stock=100)
    p2 = api.product(seller, shop["id"], price="7.50", stock=100)

    def view(product: dict[str, Any], who: Actor | None = None, session: str | None = None) -> None:
        body = {"productId": product["id"], **({"sessionId": session} if session else {})}
        data(api.client.post("/api/track/view", json=body, headers=who.headers if who else {}), 201)

    def order(who: Actor, product: dict[str, Any], quantity: int, then: str | None) -> None:
        body = {"items": [{"productId": product["id"], "quantity": quantity}]}
        placed = data(api.client.post("/api/orders", json=body, headers=who.headers), 201)
        if then:
            data(api.client.put(f"/api/orders/{placed['id']}/{then}", headers=who.headers))

    # Day 1: 4 views by 3 visitors of 2 products, a follow, a paid order (2 x 25) and a cancelled one.
    view(p1, ann)
    view(p1, ann)
    view(p1, session="anonymous-1")
    view(p2, bob)
    data(api.client.post(f"/api/shops/{shop['id']}/follow", headers=ann.headers))
    order(ann, p1, 2, "pay")
    order(bob, p2, 1, "cancel")
    # Day 2: one view, one paid order (1 x 25). Yesterday's tokens have expired: sign in again.
    clock.set(datetime.combine(day2, time(15), tzinfo=UTC))

    def signed_in(who: Actor) -> Actor:
        return replace(who, access_token=api.login(who.email)["accessToken"])

    seller, analyst, bob = signed_in(seller), signed_in(analyst), signed_in(bob)
    view(p2, bob)
    order(bob, p1, 1, "pay")

    summary = run_pipeline(settings)
    assert summary.success, summary.failures

    # The shop: every day equals the mart's row, and the numbers are the activity above.
    body = data(api.client.get(_shop_url(shop["id"], day1, day2), headers=seller.headers))
    rows = _mart_rows(
        settings,
        """SELECT "date", views, unique_visitors, product_views, orders, paid_orders, revenue,
                  new_followers, conversion_rate FROM marts.mart_shop_daily
           WHERE shop_id = :shop ORDER BY "date" """,
        {"shop": shop["id"]},
    )
    assert [
        (date.fromisoformat(s["date"]), s["views"], s["uniqueVisitors"], s["productViews"], s["orders"],
         s["paidOrders"], s["revenue"], s["newFollowers"], s["conversionRate"])
        for s in body["series"]
    ] == [(r[0], r[1], r[2], r[3], r[4], r[5], _money(r[6]), r[7], r[8]) for r in rows]  # fmt: skip
    day_one, day_two = body["series"]
    assert (day_one["views"], day_one["uniqueVisitors"], day_one["productViews"]) == (4, 3, 2)
    assert (day_one["orders"], day_one["paidOrders"], day_one["revenue"]) == (2, 1, "50.00000000")
    assert day_one["newFollowers"] == 1
    assert (day_two["views"], day_two["orders"], day_two["revenue"]) == (1, 1, "25.00000000")
    totals = body["totals"]
    assert (totals["views"], totals["orders"], totals["revenue"]) == (5, 3, "75.00000000")
    assert totals["conversionRate"] == 3 / (day_one["uniqueVisitors"] + day_two["uniqueVisitors"])
    assert totals["avgOrderValue"] == "25.00000000"

    # Freshness: the load the pipeline committed.
    ((events_at, tables_at),) = _mart_rows(
        settings,
        """SELECT (SELECT loaded_at FROM meta.load_state WHERE stream = 'events'),
                  (SELECT max(loaded_at) FROM meta.snapshots)""",
        {},
    )
    fresh = body["freshness"]
    assert datetime.fromisoformat(fresh["eventsLoadedAt"]) == events_at.astimezone(UTC)
    assert datetime.fromisoformat(fresh["loadedAt"]) == max(events_at, tables_at).astimezone(UTC)
    assert fresh["source"] == warehouse.target and 0 <= fresh["ageSeconds"] < 600

    # The dashboard: the platform mart's days, and this shop and product on top.
    dash = data(
        api.client.get(
            f"/api/analytics/dashboard?startDate={day1.isoformat()}&endDate={day2.isoformat()}",
            headers=analyst.headers,
        )
    )
    platform = _mart_rows(
        settings,
        """SELECT "date", active_users, orders, paid_orders, revenue FROM marts.mart_platform_daily
           WHERE "date" BETWEEN :start AND :end ORDER BY "date" """,
        {"start": day1, "end": day2},
    )
    assert [
        (date.fromisoformat(s["date"]), s["activeUsers"], s["orders"], s["paidOrders"], s["revenue"])
        for s in dash["series"]
    ] == [(r[0], r[1], r[2], r[3], _money(r[4])) for r in platform]
    kpis = dash["kpis"]
    assert (kpis["orders"], kpis["paidOrders"], kpis["revenue"], kpis["currency"]) == (
        3,
        2,
        "75.00000000",
        "USDT",
    )
    assert kpis["newUsers"] == 4 and kpis["buyers"] == 2 + 1  # ann and bob on day 1, bob on day 2
    top_shop = dash["topShops"][0]
    assert (top_shop["shopId"], top_shop["name"], top_shop["revenue"]) == (
        shop["id"],
        shop["name"],
        "75.00000000",
    )
    top_product = dash["topProducts"][0]
    assert (top_product["productId"], top_product["unitsSold"], top_product["revenue"]) == (
        p1["id"],
        3,
        "75.00000000",
    )
    assert top_product["views"] == 3
