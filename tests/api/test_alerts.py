"""Price alerts: a price at or below the target notifies the user once, through a price change or
at once when the alert is created."""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.helpers import Actor, Api, data, error

URL = "/api/price-alerts"


@pytest.fixture
def listing(api):
    """A seller's product at 25.00 USDT and a shopper."""
    seller, shopper = api.user(), api.user()
    shop = api.shop(seller)
    product = api.product(seller, shop["id"], name="Ledger Nano", price="25.00")
    return seller, shopper, product


def create(api: Api, user: Actor, product_id: int, target: str, status: int = 201) -> Any:
    return data(
        api.client.post(URL, json={"productId": product_id, "targetPrice": target}, headers=user.headers),
        status,
    )


def set_price(api: Api, seller: Actor, product_id: int, price: str) -> Any:
    return data(
        api.client.patch(f"/api/products/{product_id}", json={"price": price}, headers=seller.headers)
    )


def price_notes(api: Api, user: Actor) -> Any:
    return data(api.client.get("/api/notifications", params={"type": "price_alert"}, headers=user.headers))


def test_create_and_list(api, listing):
    _, shopper, product = listing
    alert = create(api, shopper, product["id"], "20.50")
    assert alert["productId"] == product["id"] and alert["productName"] == "Ledger Nano"
    assert Decimal(alert["currentPrice"]) == Decimal("25") and alert["currency"] == "USDT"
    assert alert["targetPrice"] == "20.50000000"
    assert alert["isActive"] is True and alert["notified"] is False
    assert alert["triggeredPrice"] is None and alert["triggeredAt"] is None
    [ev] = api.events("price_alert.created")
    assert ev.entity_id == alert["id"] and ev.product_id == product["id"] and ev.actor_user_id == shopper.id
    assert ev.payload == {
        "userId": shopper.id,
        "targetPrice": "20.50000000",
        "currentPrice": "25.00000000",
        "currency": "USDT",
    }
    assert api.events("price_alert.triggered") == []

    resp = api.client.get(URL, headers=shopper.headers)
    assert [a["id"] for a in data(resp)] == [alert["id"]]
    assert resp.json()["meta"]["pagination"]["total"] == 1
    # Someone else's list is their own.
    assert data(api.client.get(URL, headers=api.user().headers)) == []


def test_one_active_alert_per_product(api, listing):
    _, shopper, product = listing
    first = create(api, shopper, product["id"], "20")
    error(
        api.client.post(URL, json={"productId": product["id"], "targetPrice": "18"}, headers=shopper.headers),
        409,
        "ALERT_EXISTS",
    )
    # Another user may watch the same product.
    create(api, api.user(), product["id"], "18")
    # Once the first is deleted, a new one may be set.
    data(api.client.delete(f"{URL}/{first['id']}", headers=shopper.headers))
    create(api, shopper, product["id"], "18")
    assert api.count("price_alerts") == 3


def test_unknown_product_is_404(api):
    shopper = api.user()
    error(
        api.client.post(URL, json={"productId": 99999, "targetPrice": "1"}, headers=shopper.headers),
        404,
        "NOT_FOUND",
    )
    assert api.count("price_alerts") == 0


@pytest.mark.parametrize(
    "body",
    [
        {"targetPrice": "20"},
        {"productId": 1},
        {"productId": 1, "targetPrice": "20.123456789"},  # 9 decimals
        {"productId": 1, "targetPrice": "-1"},
        {"productId": 1, "targetPrice": -5},
        {"productId": 1, "targetPrice": "abc"},
        {"productId": 1, "targetPrice": "100000000"},
        {"productId": "1", "targetPrice": "20"},
        {"productId": 1, "targetPrice": "20", "notify": True},
    ],
)
def test_validation(api, listing, body):
    _, shopper, product = listing
    body = {**body, "productId": product["id"]} if body.get("productId") == 1 else body
    error(api.client.post(URL, json=body, headers=shopper.headers), 422, "VALIDATION_ERROR")
    assert api.count("price_alerts") == 0
    assert api.events("price_alert.created") == []


def test_target_already_met_triggers_at_once(api, listing):
    _, shopper, product = listing
    alert = create(api, shopper, product["id"], "25.00")  # equal counts
    assert alert["notified"] is True and alert["isActive"] is False
    assert Decimal(alert["triggeredPrice"]) == Decimal("25") and alert["triggeredAt"] is not None
    assert [e.event_type for e in api.events()][-3:] == [
        "price_alert.created",
        "price_alert.triggered",
        "notification.created",
    ]
    [note] = price_notes(api, shopper)
    assert note["data"]["alertId"] == alert["id"] and "Ledger Nano" in note["title"]


def test_price_drop_through_patch_fires_alert(api, listing):
    seller, shopper, product = listing
    watcher = api.user()
    alert = create(api, shopper, product["id"], "20")
    high = create(api, watcher, product["id"], "10")

    set_price(api, seller, product["id"], "22")  # above both targets: nothing
    assert api.events("price_alert.triggered") == []
    assert price_notes(api, shopper) == []

    set_price(api, seller, product["id"], "19.99")  # at or below 20, above 10
    [mine] = data(api.client.get(URL, headers=shopper.headers))
    assert mine["id"] == alert["id"] and mine["notified"] is True and mine["isActive"] is False
    assert Decimal(mine["triggeredPrice"]) == Decimal("19.99") and Decimal(mine["currentPrice"]) == Decimal(
        "19.99"
    )
    [ev] = api.events("price_alert.triggered")
    assert ev.entity_id == alert["id"] and ev.product_id == product["id"]
    assert ev.payload == {
        "userId": shopper.id,
        "targetPrice": "20.00000000",
        "price": "19.99000000",
        "currency": "USDT",
    }
    [note] = price_notes(api, shopper)
    assert note["data"] == {
        "productId": product["id"],
        "alertId": alert["id"],
        "price": "19.99000000",
        "targetPrice": "20.00000000",
    }
    # The other watcher's alert is untouched.
    [theirs] = data(api.client.get(URL, headers=watcher.headers))
    assert theirs["id"] == high["id"] and theirs["isActive"] is True and theirs["notified"] is False
    assert price_notes(api, watcher) == []

    # The alert fires only once, however far the price falls.
    set_price(api, seller, product["id"], "15")
    set_price(api, seller, product["id"], "19")
    assert len(api.events("price_alert.triggered")) == 1
    assert len(price_notes(api, shopper)) == 1
    # Down to the second target: that one fires.
    set_price(api, seller, product["id"], "10")
    assert len(api.events("price_alert.triggered")) == 2
    assert len(price_notes(api, watcher)) == 1


def test_deleted_alert_does_not_fire(api, listing):
    seller, shopper, product = listing
    alert = create(api, shopper, product["id"], "20")
    data(api.client.delete(f"{URL}/{alert['id']}", headers=shopper.headers))
    set_price(api, seller, product["id"], "5")
    assert api.events("price_alert.triggered") == []
    assert price_notes(api, shopper) == []


def test_price_alert_notification_can_be_turned_off(api, listing):
    seller, shopper, product = listing
    prefs = {"preferences": [{"type": "price_alert", "channel": "in_app", "enabled": False}]}
    data(api.client.put("/api/notifications/preferences", json=prefs, headers=shopper.headers))
    create(api, shopper, product["id"], "20")
    set_price(api, seller, product["id"], "19")
    # The alert still triggers (and is recorded), but no in-app notification is created.
    [alert] = data(api.client.get(URL, headers=shopper.headers))
    assert alert["notified"] is True
    assert len(api.events("price_alert.triggered")) == 1
    assert price_notes(api, shopper) == []


def test_filter_active(api, listing):
    seller, shopper, product = listing
    other = api.product(seller, product["shopId"], price="100")
    fired = create(api, shopper, product["id"], "30")  # fires at once
    waiting = create(api, shopper, other["id"], "50")

    def ids(**params: Any) -> list[int]:
        return [a["id"] for a in data(api.client.get(URL, params=params, headers=shopper.headers))]

    assert ids() == [waiting["id"], fired["id"]]
    assert ids(active="true") == [waiting["id"]]
    assert ids(active="false") == [fired["id"]]
    assert ids(pageSize=1, page=2) == [fired["id"]]
    error(api.client.get(URL, params={"active": "perhaps"}, headers=shopper.headers), 422)


def test_delete_owner_other_anonymous(api, listing):
    _, shopper, product = listing
    alert = create(api, shopper, product["id"], "20")
    url = f"{URL}/{alert['id']}"
    error(api.client.delete(url), 401, "UNAUTHORIZED")
    error(api.client.delete(url, headers=api.user().headers), 404, "NOT_FOUND")
    error(api.client.delete(f"{URL}/99999", headers=shopper.headers), 404, "NOT_FOUND")
    assert api.events("price_alert.deleted") == []

    deleted = data(api.client.delete(url, headers=shopper.headers))
    assert deleted["id"] == alert["id"] and deleted["isActive"] is False and deleted["notified"] is False
    [ev] = api.events("price_alert.deleted")
    assert ev.entity_id == alert["id"] and ev.actor_user_id == shopper.id
    # Deleting again is a no-op: same answer, no second event.
    again = data(api.client.delete(url, headers=shopper.headers))
    assert again["isActive"] is False
    assert len(api.events("price_alert.deleted")) == 1
    # The deactivated alert is kept in the history.
    assert [
        a["id"] for a in data(api.client.get(URL, params={"active": "false"}, headers=shopper.headers))
    ] == [alert["id"]]


def test_anonymous_is_401(api, listing):
    _, _, product = listing
    error(api.client.get(URL), 401, "UNAUTHORIZED")
    error(api.client.post(URL, json={"productId": product["id"], "targetPrice": "1"}), 401, "UNAUTHORIZED")


def test_concurrent_creates_leave_one_active_alert(api, listing, server_url):
    _, shopper, product = listing

    def creator(i: int) -> int:
        with httpx.Client(base_url=server_url, timeout=30) as c:
            return c.post(
                URL, json={"productId": product["id"], "targetPrice": f"{10 + i}"}, headers=shopper.headers
            ).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(creator, range(8)))
    assert sorted(statuses) == [201] + [409] * 7
    assert api.count("price_alerts") == 1
    assert len(api.events("price_alert.created")) == 1
