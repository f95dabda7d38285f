"""A small marketplace made through the store's API, and the dashboard app pointed at its store.

`world` builds two shops with orders in two currencies, product views and a message; the tests know
every number the dashboard should show from it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from api.core.settings import Settings, get_settings
from tests.helpers import Actor, Api, data

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
APP_TIMEOUT = 30


@dataclass
class World:
    analyst: Actor
    seller_a: Actor
    seller_b: Actor
    buyer1: Actor
    buyer2: Actor
    shop_a: dict[str, Any]
    shop_b: dict[str, Any]
    product_a_usdt: dict[str, Any]
    people: int  # accounts registered


def place_order(
    api: Api, buyer: Actor, product_id: int, quantity: int, then: str | None = None
) -> dict[str, Any]:
    body = {"items": [{"productId": product_id, "quantity": quantity}]}
    order: dict[str, Any] = data(api.client.post("/api/orders", json=body, headers=buyer.headers), 201)
    if then is not None:
        data(api.client.put(f"/api/orders/{order['id']}/{then}", json=None, headers=buyer.headers))
    return order


def build_world(api: Api) -> World:
    analyst = api.user("analyst")
    seller_a, seller_b = api.user("seller"), api.user("seller")
    buyer1, buyer2 = api.user(), api.user()
    shop_a, shop_b = api.shop(seller_a, name="Alpha Coins"), api.shop(seller_b, name="Beta Gear")
    a_usdt = api.product(seller_a, shop_a["id"], price="25.00", currency="USDT")
    a_btc = api.product(seller_a, shop_a["id"], price="0.00123400", currency="BTC")
    b_usdt = api.product(seller_b, shop_b["id"], price="10.50", currency="USDT")

    place_order(api, buyer1, a_usdt["id"], 2, "pay")  # A: 50.00 USDT paid
    place_order(api, buyer2, a_btc["id"], 1, "pay")  # A: 0.001234 BTC paid
    place_order(api, buyer1, a_usdt["id"], 1)  # A: pending, no revenue
    place_order(api, buyer2, b_usdt["id"], 1, "pay")  # B: 10.50 USDT paid
    place_order(api, buyer1, b_usdt["id"], 3, "cancel")  # B: cancelled, no revenue

    views = [
        (buyer1, a_usdt, "s-1"),
        (buyer1, a_btc, "s-1"),  # the same viewer again
        (buyer2, a_btc, None),
        (None, b_usdt, "anon-1"),  # a visitor who is not signed in
    ]
    for who, product, session in views:
        body: dict[str, Any] = {"productId": product["id"]}
        if session:
            body["sessionId"] = session
        data(api.client.post("/api/track/view", json=body, headers=who.headers if who else {}), 201)

    conv = data(
        api.client.post("/api/conversations", json={"shopId": shop_a["id"]}, headers=buyer1.headers), 201
    )
    data(
        api.client.post(
            f"/api/conversations/{conv['id']}/messages", json={"body": "hi"}, headers=buyer1.headers
        ),
        201,
    )
    return World(analyst, seller_a, seller_b, buyer1, buyer2, shop_a, shop_b, a_usdt, people=5)


@dataclass(frozen=True)
class Expected:
    """What build_world's store holds, as the dashboard should count it."""

    orders: int
    paid: int
    revenue: dict[str, Decimal]
    viewers: int
    messages: int
    customers: int  # buyers with a first order


PLATFORM = Expected(
    orders=5,
    paid=3,
    revenue={"BTC": Decimal("0.001234"), "USDT": Decimal("60.50")},
    viewers=3,  # buyer1, buyer2 and the anonymous session
    messages=1,
    customers=2,
)
SHOP_A = Expected(
    orders=3,
    paid=2,
    revenue={"BTC": Decimal("0.001234"), "USDT": Decimal("50.00")},
    viewers=2,
    messages=1,
    customers=2,
)


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api)


@pytest.fixture
def dashboard(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[], AppTest]]:
    """Makes AppTests of the dashboard on the test's store, configured as in production: through
    STORE_* variables that the app's `get_settings()` reads."""
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for name, value in {
        "STORE_ENVIRONMENT": "test",
        "STORE_DATABASE_URL": settings.database_url,
        "STORE_DATA_DIR": str(settings.data_dir),
        "STORE_JWT_SECRET": settings.secret,
        "STORE_AUTO_MIGRATE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield lambda: AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    get_settings.cache_clear()
