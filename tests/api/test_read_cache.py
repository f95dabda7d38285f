"""Listing and search pages and their totals are cached, and a change to the catalogue shows at once, on
both cache backends (this process's dict, and Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from api.core.settings import Settings
from api.db.engine import Store
from api.search import service as search_service
from api.search.schemas import SearchQuery
from tests.api.test_cache import (
    BACKENDS,
    body_of,
    close_store,
    drop_namespace,
    make_store,
    require_redis,
    unique_prefix,
)
from tests.helpers import data


@pytest.fixture(params=BACKENDS)
def cache_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    backend: str = request.param
    return backend


@pytest.fixture
def store(settings: Settings, cache_backend: str) -> Iterator[Store]:
    prefix = unique_prefix()
    s = make_store(settings, cache_backend, prefix)
    yield s
    close_store(s)
    if cache_backend == "redis":
        drop_namespace(prefix)


def test_listing_and_search_show_changes_at_once_despite_the_cache(api, store):
    owner, buyer = api.user(), api.user()
    shop = api.shop(owner)
    first = api.product(owner, shop["id"], name="Amber lamp", stock=3)
    assert [p["id"] for p in data(api.client.get("/api/products"))] == [first["id"]]
    assert data(api.client.get("/api/products"))[0]["stock"] == 3
    assert store.cache.hits >= 1  # the second read came from the cache

    second = api.product(owner, shop["id"], name="Amber vase")
    assert {p["id"] for p in data(api.client.get("/api/products"))} == {first["id"], second["id"]}
    assert len(data(api.client.get("/api/products/search?q=amber"))) == 2

    data(api.client.patch(f"/api/products/{second['id']}", json={"name": "Blue vase"}, headers=owner.headers))
    assert [p["id"] for p in data(api.client.get("/api/products/search?q=amber"))] == [first["id"]]

    data(
        api.client.post(
            "/api/orders", json={"items": [{"productId": first["id"], "quantity": 2}]}, headers=buyer.headers
        ),
        201,
    )
    listed = {p["id"]: p for p in data(api.client.get("/api/products"))}
    assert listed[first["id"]]["stock"] == 1

    # A tracked view alone leaves cached pages as they are (views may lag up to the page TTL, see
    # api/core/cache.py); the next real change shows it with everything else.
    data(api.client.post("/api/track/view", json={"productId": first["id"]}), 201)
    listed = {p["id"]: p for p in data(api.client.get("/api/products"))}
    assert listed[first["id"]]["views"] in (0, 1)
    data(api.client.patch(f"/api/products/{first['id']}", json={"stock": 7}, headers=owner.headers))
    listed = {p["id"]: p for p in data(api.client.get("/api/products"))}
    assert (listed[first["id"]]["views"], listed[first["id"]]["stock"]) == (1, 7)


def test_a_cached_page_is_the_same_response_as_a_fresh_one(api, store):
    owner = api.user()
    shop = api.shop(owner)
    for i in range(3):
        api.product(owner, shop["id"], name=f"Walnut tray {i}", price=f"{10 + i}.5")
    for path in ("/api/products?sort=price_desc&pageSize=2", "/api/products/search?q=walnut&pageSize=2"):
        misses = store.cache.misses
        fresh = api.client.get(path)
        hits = store.cache.hits
        cached = api.client.get(path)
        assert store.cache.misses > misses and store.cache.hits == hits + 1
        assert body_of(fresh) == body_of(cached)
        assert fresh.json()["meta"]["pagination"] == {"page": 1, "pageSize": 2, "total": 3, "pages": 2}
        assert cached.json()["meta"]["pagination"] == fresh.json()["meta"]["pagination"]
        assert len(data(cached)) == 2


def test_totals_are_shared_by_pages_and_exact_after_a_change(api, store):
    owner = api.user()
    shop = api.shop(owner)
    for i in range(3):
        api.product(owner, shop["id"], name=f"Linen towel {i}")

    def total(path: str) -> int:
        count: int = api.client.get(path).json()["meta"]["pagination"]["total"]
        return count

    assert total("/api/products?pageSize=1&page=1") == 3
    stats = store.cache.stats()["process"]["byKind"]["total"]
    assert total("/api/products?pageSize=1&page=2") == 3  # another page, the same total: counted once
    after = store.cache.stats()["process"]["byKind"]["total"]
    assert after["hits"] == stats["hits"] + 1 and after["misses"] == stats["misses"]

    api.product(owner, shop["id"], name="Linen sheet")
    assert total("/api/products?pageSize=1&page=3") == 4
    data(api.client.patch(f"/api/shops/{shop['id']}", json={"name": "Linen House"}, headers=owner.headers))
    assert total("/api/products?pageSize=1&page=3") == 4


def test_the_search_router_and_service_share_cache_entries(api, store):
    """search.service.cached_search reads the entries the search route stores (and the other way round),
    so the route can move to it without a cold cache."""
    owner = api.user()
    shop = api.shop(owner)
    api.product(owner, shop["id"], name="Cedar box", price="9")
    fresh = data(api.client.get("/api/products/search?q=cedar"))
    q = SearchQuery.model_validate({"q": "cedar"})
    with store.read() as db:
        hits = store.cache.hits
        body, total = search_service.cached_search(store.cache, db, q)
        assert store.cache.hits == hits + 1
    assert (orjson.loads(body), total) == (fresh, 1)
    with store.read() as db:
        body, total = search_service.cached_search(store.cache, db, SearchQuery.model_validate({"q": "box"}))
    assert total == 1 and store.cache.hits == hits + 1
    assert data(api.client.get("/api/products/search?q=box")) == orjson.loads(body)
    assert store.cache.hits == hits + 2
