"""Recommendations (seed 001 §3): the pipeline's writer and GET /api/recommendations/{userId}."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from api.core.settings import Settings
from api.db.engine import Store
from api.recommendations.service import replace_recommendations
from tests.api.test_cache import (
    BACKENDS,
    close_store,
    drop_namespace,
    make_store,
    require_redis,
    unique_prefix,
)
from tests.helpers import Actor, Api, data, error


@pytest.fixture
def cache_backend(request: pytest.FixtureRequest) -> str:
    """The in-process cache unless a test asks for both (indirect parametrisation)."""
    backend: str = getattr(request, "param", "in-process")
    if backend == "redis":
        require_redis()
    return backend


@pytest.fixture
def store(settings: Settings, cache_backend: str) -> Iterator[Store]:
    prefix = unique_prefix()
    s = make_store(settings, cache_backend, prefix)
    yield s
    close_store(s)
    if cache_backend == "redis":
        drop_namespace(prefix)


both_caches = pytest.mark.parametrize("cache_backend", BACKENDS, indirect=True)


@pytest.fixture
def catalogue(api: Api) -> dict[str, Any]:
    """Two categories of five products each from one seller, with popularity set so seed scores are
    distinct: in each category, product i has i * 10 sales."""
    admin, seller = api.user("admin"), api.user("seller")
    shop = api.shop(seller)
    cats = [api.category(admin)["id"] for _ in range(2)]
    products: dict[int, list[int]] = {c: [] for c in cats}
    for c in cats:
        for _ in range(5):
            products[c].append(api.product(seller, shop["id"], categoryId=c)["id"])
    with api.store.engine.begin() as conn:  # test set-up: counters the pipeline would have grown
        for c in cats:
            for i, pid in enumerate(products[c], start=1):
                conn.execute(
                    text("UPDATE products SET sales_count = :s, rating = :r WHERE id = :id"),
                    {"s": i * 10 + (5 if c == cats[1] else 0), "r": 4.0, "id": pid},
                )
    return {"admin": admin, "seller": seller, "shop": shop, "cats": cats, "products": products}


def _get(api: Api, who: Actor, user_id: int, **params: Any) -> Any:
    return api.client.get(f"/api/recommendations/{user_id}", params=params, headers=who.headers)


def _ids(body: dict[str, Any]) -> list[int]:
    return [it["productId"] for it in body["items"]]


def _refresh(api: Api, rows: list[tuple[int, int, float, str]], version: str = "v1") -> int:
    return replace_recommendations(api.store, rows, model_version=version, now=api.clock.now())


# --- the writer ---------------------------------------------------------------------------------


def test_replace_writes_rows_and_one_event(api: Api, catalogue: dict[str, Any]) -> None:
    buyer, other = api.user(), api.user()
    p = catalogue["products"][catalogue["cats"][0]]
    assert _refresh(api, [(buyer.id, p[0], 0.9, "similar_to_your_items"), (other.id, p[1], 0.5, "x")]) == 2
    assert api.count("product_recommendations") == 2
    (ev,) = api.events("recommendations.refreshed")
    assert (ev.entity_type, ev.entity_id, ev.actor_user_id) == ("model", None, None)
    assert ev.payload == {"modelVersion": "v1", "users": 2, "rows": 2}

    assert _refresh(api, [(buyer.id, p[2], 0.7, "trending")], "v2") == 1
    with api.store.read() as db:
        rows = db.execute(
            text("SELECT user_id, product_id, model_version FROM product_recommendations")
        ).all()
    assert [tuple(r) for r in rows] == [(buyer.id, p[2], "v2")]
    assert [e.payload["modelVersion"] for e in api.events("recommendations.refreshed")] == ["v1", "v2"]


def test_replace_is_all_or_nothing(api: Api, catalogue: dict[str, Any]) -> None:
    buyer = api.user()
    p = catalogue["products"][catalogue["cats"][0]]
    _refresh(api, [(buyer.id, p[0], 0.9, "trending")])
    before = api.event_count()
    # A duplicate (user, product) fails after the DELETE and most of the inserts have run.
    bad = [(buyer.id, p[i], 1.0 - i / 10, "trending") for i in range(4)] + [(buyer.id, p[0], 0.1, "x")]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        _refresh(api, bad, "v2")
    with api.store.read() as db:
        rows = db.execute(text("SELECT product_id, model_version FROM product_recommendations")).all()
    assert [tuple(r) for r in rows] == [(p[0], "v1")]
    assert api.event_count() == before
    with pytest.raises(ValueError, match="timezone"):
        replace_recommendations(api.store, [], model_version="v3", now=api.clock.now().replace(tzinfo=None))


def test_replace_with_many_rows(api: Api, catalogue: dict[str, Any]) -> None:
    users = [api.register()["id"] for _ in range(3)]
    everything = [pid for ps in catalogue["products"].values() for pid in ps]
    rows = [(u, pid, 1.0 / (i + 1), "trending") for u in users for i, pid in enumerate(everything)]
    assert _refresh(api, rows) == 30
    assert api.count("product_recommendations") == 30


# --- the endpoint: stored rows ------------------------------------------------------------------


def test_stored_rows_by_score_with_model_source(api: Api, catalogue: dict[str, Any]) -> None:
    buyer = api.user()
    p = catalogue["products"][catalogue["cats"][0]]
    _refresh(api, [(buyer.id, p[0], 0.2, "a"), (buyer.id, p[1], 0.9, "b"), (buyer.id, p[2], 0.5, "c")])
    resp = _get(api, buyer, buyer.id, limit=3)
    body = data(resp)
    assert resp.json()["meta"]["source"] == "model" and resp.json()["meta"]["modelVersion"] == "v1"
    assert body["source"] == "model" and body["modelVersion"] == "v1" and body["userId"] == buyer.id
    assert _ids(body) == [p[1], p[2], p[0]]
    assert [it["reason"] for it in body["items"]] == ["b", "c", "a"]
    first = body["items"][0]
    assert first["score"] == 0.9
    assert first["product"] == {
        "id": p[1],
        "name": first["product"]["name"],
        "price": first["product"]["price"],
        "currency": "USDT",
        "shopId": catalogue["shop"]["id"],
        "categoryId": catalogue["cats"][0],
        "rating": 4.0,
    }
    assert isinstance(first["product"]["price"], str) and float(first["product"]["price"]) == 25.0
    # The seed path answers the same; the default limit tops up with trending products.
    same = data(api.client.get(f"/api/track/recommendations/{buyer.id}", headers=buyer.headers))
    assert _ids(same)[:3] == [p[1], p[2], p[0]] and len(same["items"]) == 10
    assert {it["reason"] for it in same["items"][3:]} == {"trending"}
    assert len(set(_ids(same))) == 10


@both_caches
def test_products_the_user_cannot_buy_disappear(api: Api, catalogue: dict[str, Any]) -> None:
    seller = catalogue["seller"]
    buyer = api.user("seller")  # a buyer who also sells
    own_shop = api.shop(buyer)
    own = api.product(buyer, own_shop["id"])["id"]
    p = catalogue["products"][catalogue["cats"][0]]
    _refresh(api, [(buyer.id, pid, 1.0 - i / 10, "m") for i, pid in enumerate([own, *p[:4]])])
    assert _ids(data(_get(api, buyer, buyer.id, limit=4))) == p[:4]  # own product dropped at read time

    h = seller.headers
    data(api.client.patch(f"/api/products/{p[0]}", json={"isActive": False}, headers=h))
    data(api.client.patch(f"/api/products/{p[1]}", json={"stock": 0}, headers=h))
    got = data(_get(api, buyer, buyer.id, limit=4))
    assert _ids(got)[:2] == p[2:4]  # inactive and sold out are gone (the cache was invalidated)
    topped = _ids(got)[2:]
    assert len(topped) == 2 and {p[0], p[1], own}.isdisjoint(topped)
    assert {it["reason"] for it in got["items"][2:]} == {"trending"}

    data(api.client.patch(f"/api/shops/{catalogue['shop']['id']}", json={"isActive": False}, headers=h))
    got = data(_get(api, buyer, buyer.id, limit=4))
    assert got["source"] == "model" and got["items"] == []  # the only other shop is the user's own


# --- the endpoint: cold start -------------------------------------------------------------------


def test_cold_start_without_history_is_trending(api: Api, catalogue: dict[str, Any]) -> None:
    buyer = api.user()
    body = data(_get(api, buyer, buyer.id))
    assert body["source"] == "trending" and body["modelVersion"] is None
    scores = [it["score"] for it in body["items"]]
    assert len(scores) == 10 and scores == sorted(scores, reverse=True)
    everything = catalogue["products"]
    # Top seller first: the second category's best (55 sales), then the first's (50).
    assert _ids(body)[:2] == [everything[catalogue["cats"][1]][4], everything[catalogue["cats"][0]][4]]
    # A seller never gets their own products.
    seller = catalogue["seller"]
    assert data(_get(api, seller, seller.id))["items"] == []


def test_cold_start_with_history_follows_browsing_categories(api: Api, catalogue: dict[str, Any]) -> None:
    buyer = api.user()
    cat_a, cat_b = catalogue["cats"]
    a = catalogue["products"][cat_a]
    for pid in (a[4], a[0]):
        data(api.client.post("/api/track/view", json={"productId": pid}, headers=buyer.headers), 201)
    body = data(_get(api, buyer, buyer.id, limit=3))
    assert body["source"] == "seed"
    # The seed algorithm: category A only, viewed products excluded, by score.
    assert _ids(body) == [a[3], a[2], a[1]]
    assert {it["reason"] for it in body["items"]} == {"popular_in_your_categories"}
    # Past what the category offers, trending products of other categories fill the list.
    more = data(_get(api, buyer, buyer.id, limit=5))
    assert _ids(more)[:3] == [a[3], a[2], a[1]]
    assert set(_ids(more)[3:]) <= set(catalogue["products"][cat_b])
    assert {a[4], a[0]}.isdisjoint(_ids(more))


# --- who may read -------------------------------------------------------------------------------


def test_roles(api: Api, catalogue: dict[str, Any]) -> None:
    buyer, other, analyst = api.user(), api.user(), api.user("analyst")
    error(api.client.get(f"/api/recommendations/{buyer.id}"), 401, "UNAUTHORIZED")
    error(_get(api, other, buyer.id), 403, "FORBIDDEN")
    error(api.client.get(f"/api/track/recommendations/{buyer.id}", headers=other.headers), 403, "FORBIDDEN")
    assert data(_get(api, analyst, buyer.id))["userId"] == buyer.id
    assert data(_get(api, catalogue["admin"], buyer.id))["userId"] == buyer.id
    error(_get(api, catalogue["admin"], 999_999), 404, "NOT_FOUND")
    error(_get(api, other, 999_999), 403, "FORBIDDEN")
    for bad in (0, 51, "x"):
        error(_get(api, buyer, buyer.id, limit=bad), 422, "VALIDATION_ERROR")


# --- the cache ----------------------------------------------------------------------------------


@both_caches
def test_refresh_replaces_what_the_endpoint_returns(api: Api, catalogue: dict[str, Any]) -> None:
    buyer = api.user()
    p = catalogue["products"][catalogue["cats"][0]]
    cold = data(_get(api, buyer, buyer.id, limit=2))
    assert cold["source"] == "trending"
    hits = api.store.cache.hits
    assert data(_get(api, buyer, buyer.id, limit=2)) == cold
    assert api.store.cache.hits > hits  # served from the cache

    _refresh(api, [(buyer.id, p[0], 0.5, "m"), (buyer.id, p[1], 0.6, "m")], "v1")
    first = data(_get(api, buyer, buyer.id, limit=2))
    assert first["source"] == "model" and _ids(first) == [p[1], p[0]]
    _refresh(api, [(buyer.id, p[2], 0.5, "m"), (buyer.id, p[3], 0.6, "m")], "v2")
    second = data(_get(api, buyer, buyer.id, limit=2))
    assert second["modelVersion"] == "v2" and _ids(second) == [p[3], p[2]]
