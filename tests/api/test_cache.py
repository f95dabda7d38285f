"""The read cache (api/core/cache.py) on both backends: a dict in the process and a real Redis (db 15).

Every Redis test works under its own key prefix and removes only its own keys, so tests running in
parallel never see each other's entries."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from redis.exceptions import RedisError

from api.core.cache import (
    LocalBackend,
    ReadCache,
    RedisBackend,
    invalidation_of,
)
from api.core.settings import Settings
from api.db.engine import Store
from api.main import create_app
from tests.conftest import REDIS_URL, service_missing
from tests.helpers import Actor, Api, data, error

BACKENDS = ("in-process", "redis")


# --- helpers (the read-cache tests use them too) ------------------------------------------------------------


def require_redis(url: str = REDIS_URL) -> None:
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except RedisError as exc:
        service_missing("Redis", str(exc))
    finally:
        client.close()


def unique_prefix() -> str:
    return f"test:cache:{uuid.uuid4().hex[:12]}:"


def drop_namespace(prefix: str, url: str = REDIS_URL) -> int:
    """Deletes this test's keys (entries, versions and counters) and nothing else."""
    client = Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        return int(client.unlink(*keys)) if keys else 0
    finally:
        client.close()


def make_store(settings: Settings, backend: str, prefix: str, **overrides: Any) -> Store:
    """A store whose cache uses `backend`, built the way production builds it (Store.from_settings)."""
    update: dict[str, Any] = {"redis_url": REDIS_URL if backend == "redis" else None, **overrides}
    return Store.from_settings(settings.model_copy(update=update), cache_prefix=prefix)


def close_store(store: Store) -> None:
    store.cache.close()
    store.engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body_of(resp: Any) -> Any:
    """The response without its meta (timestamp and request id differ on every call)."""
    payload = resp.json()
    payload.pop("meta")
    return payload


def cache_stats(api: Api, admin: Actor) -> dict[str, Any]:
    stats: dict[str, Any] = data(api.client.get("/api/cache/stats", headers=admin.headers))
    return stats


# --- fixtures: every test here runs on both cache backends and both databases -------------------------------


@pytest.fixture(params=BACKENDS)
def cache_backend(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
    backend: str = request.param
    return backend


@pytest.fixture
def cache_prefix(cache_backend: str) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    if cache_backend == "redis":
        drop_namespace(prefix)


@pytest.fixture
def store(settings: Settings, cache_backend: str, cache_prefix: str) -> Iterator[Store]:
    s = make_store(settings, cache_backend, cache_prefix)
    yield s
    close_store(s)


@pytest.fixture
def admin(api: Api) -> Actor:
    return api.user("admin")


# --- hits and misses ----------------------------------------------------------------------------------------


def test_product_detail_is_cached_and_identical_to_a_fresh_read(api, store, admin, cache_backend):
    owner = api.user()
    shop = api.shop(owner)
    product = api.product(owner, shop["id"], name="Cached lamp", price="12.5")
    first = api.client.get(f"/api/products/{product['id']}")
    second = api.client.get(f"/api/products/{product['id']}")
    assert data(first) == data(second) == product  # what POST returned, field for field
    assert data(second)["price"] == "12.50000000"
    assert first.headers["content-type"] == "application/json"
    assert body_of(first) == body_of(second)
    stats = cache_stats(api, admin)
    assert stats["backend"] == cache_backend
    assert stats["byKind"]["product"] == {"hits": 1, "misses": 1, "hitRatio": 0.5}
    assert stats["process"]["byKind"]["product"]["hits"] == 1
    assert stats["available"] is True and stats["errors"] == 0 and stats["fallbacks"] == 0
    assert stats["keys"] >= 1 and stats["memory"]["bytes"] > 0
    if cache_backend == "redis":
        assert stats["scope"] == "all processes" and stats["memory"]["usedMemory"] > 0
    error(api.client.get("/api/products/999999"), 404, "NOT_FOUND")


def test_an_inactive_product_is_still_hidden_from_others_when_cached(api):
    owner, other, staff = api.user(), api.user(), api.user("admin")
    shop = api.shop(owner)
    product = api.product(owner, shop["id"])
    data(api.client.patch(f"/api/products/{product['id']}", json={"isActive": False}, headers=owner.headers))
    url = f"/api/products/{product['id']}"
    for _ in range(2):  # the second round is served from the cache
        assert data(api.client.get(url, headers=owner.headers))["isActive"] is False
        error(api.client.get(url), 404, "NOT_FOUND")
        error(api.client.get(url, headers=other.headers), 404, "NOT_FOUND")
        assert data(api.client.get(url, headers=staff.headers))["id"] == product["id"]
    assert api.store.cache.hits >= 4


def test_listing_search_and_shop_reads_are_counted_per_kind(api, admin):
    owner = api.user()
    shop = api.shop(owner)
    api.product(owner, shop["id"], name="Copper kettle")
    for _ in range(3):
        data(api.client.get("/api/products?sort=price_asc"))
        data(api.client.get("/api/products/search?q=kettle"))
        data(api.client.get(f"/api/shops/{shop['id']}"))
    stats = cache_stats(api, admin)
    assert stats["byKind"]["page"]["hits"] == 4 and stats["byKind"]["page"]["misses"] == 2
    assert stats["byKind"]["shop"] == {"hits": 2, "misses": 1, "hitRatio": round(2 / 3, 4)}
    assert stats["hits"] == sum(k["hits"] for k in stats["byKind"].values())
    assert stats["hitRatio"] == round(stats["hits"] / (stats["hits"] + stats["misses"]), 4)


# --- never stale after a write has returned -----------------------------------------------------------------


def test_every_visible_change_shows_at_once_in_details_and_pages(api):
    owner, buyer = api.user(), api.user()
    shop = api.shop(owner, name="Harbour Goods")
    p = api.product(owner, shop["id"], name="Brass compass", price="40", stock=5)
    url = f"/api/products/{p['id']}"

    def detail() -> dict[str, Any]:
        out: dict[str, Any] = data(api.client.get(url))
        return out

    def card() -> dict[str, Any]:
        [match] = [c for c in data(api.client.get("/api/products")) if c["id"] == p["id"]]
        out: dict[str, Any] = match
        return out

    def found() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = data(api.client.get("/api/products/search?q=compass"))
        return out

    def read_all() -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        return detail(), card(), found()

    read_all()
    read_all()  # everything cached now
    hits = api.store.cache.hits

    data(api.client.patch(url, json={"price": "35.5"}, headers=owner.headers))
    d, c, s = read_all()
    assert d["price"] == c["price"] == s[0]["price"] == "35.50000000"

    data(api.client.patch(url, json={"name": "Brass sextant"}, headers=owner.headers))
    d, c, s = read_all()
    assert d["name"] == c["name"] == "Brass sextant" and s == []

    order = data(
        api.client.post(
            "/api/orders", json={"items": [{"productId": p["id"], "quantity": 2}]}, headers=buyer.headers
        ),
        201,
    )
    assert detail()["stock"] == card()["stock"] == 3
    data(api.client.put(f"/api/orders/{order['id']}/pay", headers=buyer.headers))
    assert detail()["salesCount"] == card()["salesCount"] == 2
    data(api.client.put(f"/api/orders/{order['id']}/cancel", headers=buyer.headers))
    assert (detail()["stock"], detail()["salesCount"]) == (5, 0)
    assert (card()["stock"], card()["salesCount"]) == (5, 0)

    # A shop's name is shown in its products' details and cards.
    data(api.client.patch(f"/api/shops/{shop['id']}", json={"name": "Harbour Supply"}, headers=owner.headers))
    assert detail()["shop"]["name"] == card()["shopName"] == "Harbour Supply"

    data(api.client.patch(url, json={"isActive": False}, headers=owner.headers))
    error(api.client.get(url), 404, "NOT_FOUND")
    assert all(c["id"] != p["id"] for c in data(api.client.get("/api/products")))
    assert api.store.cache.hits > hits  # reads between the writes were still served from the cache


def test_shop_detail_follows_its_changes_and_followers(api):
    owner, fan = api.user(), api.user()
    shop = api.shop(owner, name="Quay Books")
    url = f"/api/shops/{shop['id']}"
    assert data(api.client.get(url)) == data(api.client.get(url)) == shop
    data(api.client.patch(url, json={"name": "Quay Books & Maps"}, headers=owner.headers))
    assert data(api.client.get(url))["name"] == "Quay Books & Maps"
    data(api.client.post(f"{url}/follow", headers=fan.headers))
    assert data(api.client.get(url))["followerCount"] == 1
    data(api.client.post(f"{url}/follow", headers=fan.headers))
    assert data(api.client.get(url))["followerCount"] == 0
    error(api.client.get("/api/shops/999999"), 404, "NOT_FOUND")


def test_a_new_product_appears_in_cached_pages_and_totals_at_once(api):
    owner = api.user()
    shop = api.shop(owner)
    api.product(owner, shop["id"], name="Slate board")
    resp = api.client.get("/api/products?pageSize=1")
    assert resp.json()["meta"]["pagination"]["total"] == 1
    api.client.get("/api/products?pageSize=1")
    api.product(owner, shop["id"], name="Slate tile")
    resp = api.client.get("/api/products?pageSize=1")
    assert resp.json()["meta"]["pagination"] == {"page": 1, "pageSize": 1, "total": 2, "pages": 2}
    assert data(resp)[0]["name"] == "Slate tile"


def test_a_read_racing_a_write_never_stores_the_old_value(settings, cache_backend, cache_prefix):
    """A reader that looked the entry up before a write and fills it after the write has returned must
    not make the old value servable (the per-entity version changed in between)."""
    store = make_store(settings, cache_backend, cache_prefix)
    try:
        cache = store.cache
        for slot_of, event in (
            (
                lambda: cache.product(7),
                {
                    "event_type": "product.price_changed",
                    "entity_type": "product",
                    "entity_id": 7,
                    "product_id": 7,
                    "shop_id": 1,
                },
            ),
            (
                lambda: cache.shop(3),
                {"event_type": "shop.followed", "entity_type": "shop", "entity_id": 3, "shop_id": 3},
            ),
            (
                lambda: cache.page("listing", (1, 20)),
                {"event_type": "review.posted", "entity_type": "review", "entity_id": 1, "product_id": 9},
            ),
        ):
            before = slot_of()
            assert not before.hit
            cache.invalidate([event])  # the write commits while the reader is still in the database
            cache.fill(before, b'{"old":true}')
            assert not slot_of().hit
            fresh = slot_of()
            cache.fill(fresh, b'{"new":true}')
            assert slot_of().body == b'{"new":true}'
    finally:
        close_store(store)


def test_views_may_lag_up_to_the_ttl_but_nothing_else_does(settings, clock, cache_backend, cache_prefix):
    """The documented exception: a tracked view invalidates nothing (a product page tracks a view on every
    visit), so a cached detail or page shows the views counter as it was, at most a TTL ago."""
    store = make_store(
        settings, cache_backend, cache_prefix, cache_detail_seconds=1.0, read_cache_seconds=1.0
    )
    try:
        with TestClient(create_app(settings, clock=clock, store=store)) as client:
            api = Api(client, store, clock)
            owner = api.user()
            shop = api.shop(owner)
            p = api.product(owner, shop["id"], stock=4)
            url = f"/api/products/{p['id']}"
            assert data(client.get(url))["views"] == 0
            assert data(client.get("/api/products"))[0]["views"] == 0
            assert data(client.post("/api/track/view", json={"productId": p["id"]}), 201)["views"] == 1
            assert data(client.get(url))["views"] == 0  # lagging, as documented
            assert data(client.get("/api/products"))[0]["views"] == 0
            data(client.patch(url, json={"stock": 3}, headers=owner.headers))  # a real change: all fresh
            assert (data(client.get(url))["views"], data(client.get(url))["stock"]) == (1, 3)
            assert data(client.get("/api/products"))[0]["views"] == 1
            data(client.post("/api/track/view", json={"productId": p["id"]}), 201)
            time.sleep(1.1)  # past the TTL
            assert data(client.get(url))["views"] == 2
            assert data(client.get("/api/products"))[0]["views"] == 2
    finally:
        close_store(store)


def test_two_app_instances_sharing_redis_never_serve_stale(settings, clock):
    """Two API instances (each its own engine, pool and cache client) on one database and one Redis: a
    write through A is visible through B the moment A has answered."""
    require_redis()
    prefix = unique_prefix()
    stores = [make_store(settings, "redis", prefix) for _ in range(2)]
    try:
        with ExitStack() as stack:
            a, b = (
                stack.enter_context(TestClient(create_app(settings, clock=clock, store=s))) for s in stores
            )
            api = Api(a, stores[0], clock)
            owner, buyer = api.user(), api.user()
            shop = api.shop(owner)
            p = api.product(owner, shop["id"], name="Tidal clock", price="80", stock=9)
            url = f"/api/products/{p['id']}"
            listing, search = "/api/products?sort=price_asc", "/api/products/search?q=tidal"
            for _ in range(2):
                for path in (url, listing, search, f"/api/shops/{shop['id']}"):
                    data(b.get(path))
            assert stores[1].cache.hits == 4  # B serves from the shared cache
            data(a.get(url))
            assert stores[0].cache.hits == 1  # and A reads what B stored

            for price, shown in (("79", "79.00000000"), ("78.25", "78.25000000"), ("77", "77.00000000")):
                data(a.patch(url, json={"price": price}, headers=owner.headers))
                assert data(b.get(url))["price"] == shown
                assert data(b.get(listing))[0]["price"] == shown
                assert data(b.get(search))[0]["price"] == shown

            data(
                a.post(
                    "/api/orders",
                    json={"items": [{"productId": p["id"], "quantity": 4}]},
                    headers=buyer.headers,
                ),
                201,
            )
            assert data(b.get(url))["stock"] == data(b.get(listing))[0]["stock"] == 5
            data(a.patch(f"/api/shops/{shop['id']}", json={"name": "Tide & Time"}, headers=owner.headers))
            assert data(b.get(f"/api/shops/{shop['id']}"))["name"] == "Tide & Time"
            assert data(b.get(url))["shop"]["name"] == data(b.get(listing))[0]["shopName"] == "Tide & Time"

            # The counters of both instances add up in Redis (B's are sent within a second; now, here).
            admin = api.user("admin")
            stores[1].cache.stats()
            stats = data(a.get("/api/cache/stats", headers=admin.headers))
            assert stats["scope"] == "all processes"
            assert stats["process"]["hits"] == stores[0].cache.hits
            assert stats["hits"] == stores[0].cache.hits + stores[1].cache.hits
            assert stats["misses"] == stores[0].cache.misses + stores[1].cache.misses
    finally:
        for s in stores:
            close_store(s)
        drop_namespace(prefix)


# --- the admin endpoints ------------------------------------------------------------------------------------


def test_stats_and_invalidate_are_for_admins_only(api):
    buyer, seller = api.user(), api.user("seller")
    error(api.client.get("/api/cache/stats"), 401, "UNAUTHORIZED")
    error(api.client.post("/api/cache/invalidate", json={"pattern": "*"}), 401, "UNAUTHORIZED")
    for actor in (buyer, seller):
        error(api.client.get("/api/cache/stats", headers=actor.headers), 403, "FORBIDDEN")
        error(
            api.client.post("/api/cache/invalidate", json={"pattern": "*"}, headers=actor.headers),
            403,
            "FORBIDDEN",
        )


def test_invalidate_removes_the_matching_entries(api, admin, cache_backend):
    owner = api.user()
    shop = api.shop(owner)
    p1, p2 = api.product(owner, shop["id"]), api.product(owner, shop["id"])
    for path in (
        f"/api/products/{p1['id']}",
        f"/api/products/{p2['id']}",
        f"/api/shops/{shop['id']}",
        "/api/products",
        "/api/products?sort=rating",
    ):
        data(api.client.get(path))
    before = cache_stats(api, admin)
    assert before["keys"] >= 5 + 1  # two products, a shop, two pages and at least one total

    def invalidate(pattern: str) -> dict[str, Any]:
        out: dict[str, Any] = data(
            api.client.post("/api/cache/invalidate", json={"pattern": pattern}, headers=admin.headers)
        )
        assert out["pattern"] == pattern and out["backend"] == cache_backend
        return out

    assert invalidate(f"product:{p1['id']}")["removed"] == 1
    assert invalidate(f"product:{p1['id']}")["removed"] == 0
    assert invalidate("product:*")["removed"] == 1
    assert invalidate("page:listing:*")["removed"] == 2
    assert invalidate("nothing:here?")["removed"] == 0
    rest = invalidate("*")["removed"]
    assert rest == before["keys"] - 4 and rest >= 2  # the shop and the totals
    assert cache_stats(api, admin)["keys"] == 0
    misses = api.store.cache.misses
    data(api.client.get(f"/api/products/{p1['id']}"))
    assert api.store.cache.misses == misses + 1
    stats = cache_stats(api, admin)
    assert stats["removed"] == 1 + 1 + 2 + rest and stats["keys"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"pattern": ""},
        {"pattern": "x" * 129},
        {"pattern": "product:1 product:2"},
        {"pattern": "product:[12]"},
        {"pattern": "product:\\*"},
        {"pattern": "store:cache:*\nFLUSHALL"},
        {"pattern": "ключ:*"},
        {"pattern": 12},
        {"pattern": None},
        {},
        {"pattern": "*", "everything": True},
    ],
)
def test_invalidate_rejects_bad_patterns(api, admin, body):
    error(api.client.post("/api/cache/invalidate", json=body, headers=admin.headers), 422, "VALIDATION_ERROR")


# --- Redis away ---------------------------------------------------------------------------------------------


def test_requests_succeed_when_redis_is_unreachable(settings, clock):
    """STORE_REDIS_URL points at a port nobody listens on: every read and write still answers, from the
    database, and the stats say why."""
    dead = f"redis://127.0.0.1:{free_port()}/15"
    store = Store.from_settings(settings.model_copy(update={"redis_url": dead}), cache_prefix=unique_prefix())
    try:
        with TestClient(create_app(settings, clock=clock, store=store)) as client:
            api = Api(client, store, clock)
            owner, admin = api.user(), api.user("admin")
            shop = api.shop(owner)
            p = api.product(owner, shop["id"], name="Offline lantern")
            for _ in range(3):
                assert data(client.get(f"/api/products/{p['id']}"))["name"] == "Offline lantern"
                assert len(data(client.get("/api/products"))) == 1
                assert len(data(client.get("/api/products/search?q=lantern"))) == 1
                assert data(client.get(f"/api/shops/{shop['id']}"))["id"] == shop["id"]
            data(client.patch(f"/api/products/{p['id']}", json={"price": "3"}, headers=owner.headers))
            assert data(client.get(f"/api/products/{p['id']}"))["price"] == "3.00000000"
            stats = data(client.get("/api/cache/stats", headers=admin.headers))
            assert stats["backend"] == "redis" and stats["available"] is False
            assert stats["scope"] == "this process" and stats["keys"] is None
            assert stats["errors"] >= 1 and stats["fallbacks"] >= 12 and stats["hits"] == 0
            error(
                client.post("/api/cache/invalidate", json={"pattern": "*"}, headers=admin.headers),
                503,
                "CACHE_UNAVAILABLE",
            )
    finally:
        close_store(store)


class TcpProxy:
    """A TCP relay to the real Redis that the test can take down and bring back on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self._running.set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        assert self._listener is not None
        while self._running.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            for s in self._conns:
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._conns.clear()


def test_redis_going_away_and_coming_back(settings, clock):
    """Redis drops out mid-test: requests keep answering (from the database), a write made meanwhile is
    not hidden by entries cached before the outage, and the cache serves hits again once Redis is back."""
    require_redis()
    host, port = "127.0.0.1", int(REDIS_URL.split(":")[2].split("/")[0])
    proxy = TcpProxy((host, port))
    proxy.start()
    prefix = unique_prefix()
    via_proxy = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{proxy.port}/15"})
    stores = [Store.from_settings(via_proxy, cache_prefix=prefix) for _ in range(2)]
    for s in stores:
        s.cache.retry_after = 0.05
    try:
        with ExitStack() as stack:
            a, b = (
                stack.enter_context(TestClient(create_app(settings, clock=clock, store=s))) for s in stores
            )
            api = Api(a, stores[0], clock)
            owner = api.user()
            shop = api.shop(owner)
            p = api.product(owner, shop["id"], price="10")
            url = f"/api/products/{p['id']}"
            for _ in range(2):
                assert data(b.get(url))["price"] == "10.00000000"
                data(b.get("/api/products"))
            assert stores[1].cache.hits == 2

            proxy.stop()
            data(a.patch(url, json={"price": "11"}, headers=owner.headers))  # cannot invalidate: 200 anyway
            assert data(b.get(url))["price"] == "11.00000000"
            assert data(b.get("/api/products"))[0]["price"] == "11.00000000"
            assert stores[0].cache.stats()["errors"] >= 1
            assert stores[1].cache.stats()["fallbacks"] >= 2

            proxy.start()
            time.sleep(0.1)  # past retry_after
            # Entries cached before the outage are not trusted again: the new price, not the cached one.
            assert data(b.get(url))["price"] == "11.00000000"
            assert data(b.get("/api/products"))[0]["price"] == "11.00000000"
            hits = stores[1].cache.hits
            assert data(b.get(url))["price"] == "11.00000000"
            assert stores[1].cache.hits == hits + 1  # caching again
            data(a.patch(url, json={"price": "12"}, headers=owner.headers))  # invalidation works again
            assert data(b.get(url))["price"] == "12.00000000"
    finally:
        for s in stores:
            close_store(s)
        proxy.stop()
        drop_namespace(prefix)


# --- pieces -------------------------------------------------------------------------------------------------


def test_which_events_invalidate_what():
    def plan(**ev: Any) -> tuple[set[int], set[int], bool, bool]:
        out = invalidation_of([ev])
        return out.products, out.shops, out.pages, out.everything

    assert plan(
        event_type="product.price_changed", entity_type="product", entity_id=5, product_id=5, shop_id=2
    ) == ({5}, set(), True, False)
    assert plan(
        event_type="product.viewed", entity_type="product_view", entity_id=9, product_id=5, shop_id=2
    ) == (set(), set(), False, False)
    assert plan(
        event_type="order.placed",
        entity_type="order",
        entity_id=3,
        shop_id=2,
        payload={"items": [{"productId": 5}, {"productId": 6}]},
    ) == ({5, 6}, set(), True, False)
    assert plan(
        event_type="order.cancelled",
        entity_type="order",
        entity_id=3,
        shop_id=2,
        payload={"stockReleased": [{"productId": 7}]},
    ) == ({7}, set(), True, False)
    assert plan(event_type="order.shipped", entity_type="order", entity_id=3, shop_id=2) == (
        set(),
        set(),
        False,
        False,
    )
    assert plan(event_type="shop.followed", entity_type="shop", entity_id=2, shop_id=2) == (
        set(),
        {2},
        False,
        False,
    )
    assert plan(event_type="shop.updated", entity_type="shop", entity_id=2, shop_id=2) == (
        set(),
        {2},
        True,
        True,
    )
    assert plan(event_type="review.posted", entity_type="review", entity_id=1, product_id=5, shop_id=2) == (
        {5},
        set(),
        True,
        False,
    )
    assert plan(event_type="message.sent", entity_type="message", entity_id=1) == (set(), set(), False, False)
    # A catalogue event this table does not know yet: everything it names, and everything else too.
    assert plan(
        event_type="product.archived", entity_type="product", entity_id=5, product_id=5, shop_id=2
    ) == ({5}, {2}, True, True)


def test_the_in_process_backend_evicts_entries_but_never_versions():
    backend = LocalBackend(prefix="t:", max_entries=8)
    cache = ReadCache(backend, page_seconds=5, detail_seconds=5)
    for i in range(8):
        cache.invalidate([{"event_type": "product.updated", "entity_type": "product", "entity_id": i}])
    for i in range(40):
        slot = cache.product(i)
        cache.fill(slot, b"{}")
    keys, memory = backend.size()
    assert keys <= 8 and memory["bytes"] > 0
    assert cache.product(39).hit  # the newest entries stay
    versions = backend.read([f"t:m:v:product:{i}" for i in range(8)])
    assert all(v is not None for v in versions)


def test_a_disabled_cache_stores_nothing():
    cache = ReadCache(LocalBackend(prefix="t:"), page_seconds=0, detail_seconds=0)
    slot = cache.product(1)
    cache.fill(slot, b"{}")
    assert not cache.product(1).hit and cache.hits == cache.misses == 0
    cache.invalidate([{"event_type": "product.updated", "entity_type": "product", "entity_id": 1}])
    assert cache.stats()["invalidations"] == 0 and cache.stats()["keys"] == 0


def test_the_redis_backend_refuses_a_prefix_with_wildcards():
    with pytest.raises(ValueError, match="prefix"):
        RedisBackend(REDIS_URL, prefix="store:*:")
