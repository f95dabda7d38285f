import pytest
from sqlalchemy import select

from api.tracking.models import ProductView
from tests.helpers import Api, data, error


def _views(api: Api) -> list[ProductView]:
    with api.store.read() as db:
        return list(db.execute(select(ProductView).order_by(ProductView.id)).scalars())


@pytest.fixture
def product(api):
    owner = api.user()
    shop = api.shop(owner)
    return api.product(owner, shop["id"], name="Tracked Thing")


def test_anonymous_view_is_recorded_with_ip_and_user_agent(api, product):
    agent = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"
    out = data(
        api.client.post("/api/track/view", json={"productId": product["id"]}, headers={"User-Agent": agent}),
        201,
    )
    assert out["views"] == 1 and out["viewId"] > 0
    [view] = _views(api)
    assert view.id == out["viewId"] and view.product_id == product["id"] and view.user_id is None
    assert view.ip_address == "testclient"  # the TestClient's peer address
    assert view.user_agent == agent
    assert view.session_id is None and view.duration is None and view.referrer is None
    [ev] = api.events("product.viewed")
    assert ev.product_id == product["id"] and ev.shop_id == product["shopId"]
    assert ev.entity_id == view.id and ev.payload["views"] == 1 and ev.actor_user_id is None
    assert data(api.client.get(f"/api/products/{product['id']}"))["views"] == 1


def test_signed_in_view_records_user_session_duration_and_referrer(api, product):
    buyer = api.user()
    body = {
        "productId": product["id"],
        "sessionId": "sess-abc",
        "duration": 42,
        "referrer": "https://t.me/somechannel",
    }
    first = data(api.client.post("/api/track/view", json=body, headers=buyer.headers), 201)
    second = data(api.client.post("/api/track/view", json={"productId": product["id"]}), 201)
    assert (first["views"], second["views"]) == (1, 2)
    v1, v2 = _views(api)
    assert (v1.user_id, v1.session_id, v1.duration, v1.referrer) == (
        buyer.id,
        "sess-abc",
        42,
        "https://t.me/somechannel",
    )
    assert v2.user_id is None
    ev1, _ = api.events("product.viewed")
    assert ev1.actor_user_id == buyer.id and ev1.payload["userId"] == buyer.id
    assert ev1.payload["sessionId"] == "sess-abc" and ev1.payload["duration"] == 42
    assert data(api.client.get(f"/api/products/{product['id']}"))["views"] == 2


def test_views_of_unknown_or_inactive_products_are_404(api):
    owner = api.user()
    shop = api.shop(owner)
    hidden = api.product(owner, shop["id"])
    data(api.client.patch(f"/api/products/{hidden['id']}", json={"isActive": False}, headers=owner.headers))
    error(api.client.post("/api/track/view", json={"productId": 999}), 404, "NOT_FOUND")
    error(api.client.post("/api/track/view", json={"productId": hidden["id"]}), 404, "NOT_FOUND")
    assert _views(api) == [] and api.events("product.viewed") == []
    assert data(api.client.get(f"/api/products/{hidden['id']}", headers=owner.headers))["views"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"productId": "1"},
        {"productId": 0},
        {"productId": 1, "duration": -1},
        {"productId": 1, "duration": 86_401},
        {"productId": 1, "duration": 1.5},
        {"productId": 1, "sessionId": "x" * 65},
        {"productId": 1, "referrer": "r" * 513},
        {"productId": 1, "userId": 5},
        {"productId": 1, "ipAddress": "1.2.3.4"},
    ],
)
def test_view_rejects_bad_input(api, product, body):
    error(api.client.post("/api/track/view", json=body), 422, "VALIDATION_ERROR")
    assert _views(api) == []
    assert data(api.client.get(f"/api/products/{product['id']}"))["views"] == 0


def test_many_views_count_exactly(api, product):
    results = [
        data(api.client.post("/api/track/view", json={"productId": product["id"], "duration": d}), 201)
        for d in range(25)
    ]
    assert [r["views"] for r in results] == list(range(1, 26))
    assert len(_views(api)) == 25 and len(api.events("product.viewed")) == 25
    listed = data(api.client.get("/api/products?sort=popular"))
    assert listed[0]["id"] == product["id"] and listed[0]["views"] == 25
