from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from api.catalog.models import Product
from tests.helpers import Actor, Api, data, error

BERLIN = (52.520, 13.405)
POTSDAM = (52.391, 13.065)  # ~27 km from Berlin
LISBON = (38.722, -9.139)  # ~2300 km from Berlin


def _search(
    api: Api, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    resp = api.client.get("/api/products/search", params=params or {}, headers=headers)
    return data(resp), resp.json()["meta"]["pagination"]


def _names(api: Api, params: dict[str, Any]) -> list[str]:
    return [r["name"] for r in _search(api, params)[0]]


def _set(api: Api, product_id: int, **values: Any) -> None:
    """Ratings and sales come from reviews and orders (other domains): set them directly."""
    with api.store.write() as db:
        db.execute(update(Product).where(Product.id == product_id).values(**values))
        db.info["silent_write_ok"] = True
        db.commit()


@pytest.fixture
def catalog(api: Api) -> dict[str, Any]:
    """Three shops (Berlin, Potsdam, Lisbon) and five products spread over them."""
    admin = api.user("admin")
    gadgets, books = api.category(admin, "Gadgets"), api.category(admin, "Books")
    o1, o2, o3 = api.user(), api.user(), api.user()
    berlin = api.shop(o1, name="Berlin Bits", latitude=BERLIN[0], longitude=BERLIN[1], deliveryAvailable=True)
    potsdam = api.shop(
        o2, name="Potsdam Pages", latitude=POTSDAM[0], longitude=POTSDAM[1], deliveryAvailable=False
    )
    lisbon = api.shop(o3, name="Lisbon Loja", latitude=LISBON[0], longitude=LISBON[1], deliveryAvailable=True)
    p: dict[str, dict[str, Any]] = {}

    def add(key: str, owner: Actor, shop: dict[str, Any], **fields: Any) -> None:
        p[key] = api.product(owner, shop["id"], **fields)
        api.clock.advance(timedelta(minutes=1))

    add(
        "headphones",
        o1,
        berlin,
        name="Wireless Headphones",
        description="Over-ear, noise cancelling",
        price="80",
        categoryId=gadgets["id"],
    )
    add(
        "speaker",
        o1,
        berlin,
        name="Bluetooth Speaker",
        description="Pairs with wireless headphones too",
        price="45",
        categoryId=gadgets["id"],
    )
    add(
        "novel",
        o2,
        potsdam,
        name="Mystery Novel",
        description="A gripping paperback",
        price="12",
        categoryId=books["id"],
    )
    add(
        "atlas",
        o2,
        potsdam,
        name="World Atlas",
        description="Maps for wireless-free travellers",
        price="30",
        categoryId=books["id"],
    )
    add(
        "earbuds",
        o3,
        lisbon,
        name="Wireless Earbuds",
        description="Tiny, with charging case",
        price="60",
        categoryId=gadgets["id"],
    )
    _set(api, p["headphones"]["id"], rating=4.8, rating_count=10, sales_count=1)
    _set(api, p["speaker"]["id"], rating=3.9, rating_count=4, views=50)
    _set(api, p["novel"]["id"], rating=4.2, rating_count=2, views=5, sales_count=30)
    _set(api, p["earbuds"]["id"], rating=2.5, rating_count=1)
    return {
        "products": p,
        "gadgets": gadgets,
        "books": books,
        "owners": (o1, o2, o3),
        "shops": (berlin, potsdam, lisbon),
    }


def test_search_finds_words_in_name_and_description_ranked_by_relevance(api, catalog):
    rows, page = _search(api, {"q": "wireless"})
    names = [r["name"] for r in rows]
    # Name matches outrank description-only matches.
    assert set(names[:2]) == {"Wireless Headphones", "Wireless Earbuds"}
    assert set(names[2:]) == {"Bluetooth Speaker", "World Atlas"}
    assert page == {"page": 1, "pageSize": 20, "total": 4, "pages": 1}
    assert _names(api, {"q": "paperback"}) == ["Mystery Novel"]
    assert _names(api, {"q": "gripping MYSTERY"}) == ["Mystery Novel"]  # every term, any case
    assert _names(api, {"q": "mystery wireless"}) == []
    row = rows[0]
    assert set(row) == {
        "id",
        "shopId",
        "shopName",
        "categoryId",
        "name",
        "price",
        "currency",
        "stock",
        "views",
        "salesCount",
        "rating",
        "ratingCount",
        "createdAt",
    }


def test_search_prefix_matches_the_last_term(api, catalog):
    assert _names(api, {"q": "headph"}) == ["Wireless Headphones", "Bluetooth Speaker"]
    assert _names(api, {"q": "noise canc"}) == ["Wireless Headphones"]


def test_search_is_recorded_as_an_event_for_anonymous_and_signed_in_users(api, catalog):
    _search(api, {"q": "wireless", "minPrice": "50", "delivery": "true"})
    buyer = api.user()
    _search(api, {"q": "zzzz"}, headers=buyer.headers)
    anon, signed = api.events("search.performed")
    assert anon.payload["query"] == "wireless" and anon.payload["total"] == 2
    assert anon.payload["filters"] == {"minPrice": "50", "delivery": True}
    assert anon.payload["userId"] is None and anon.actor_user_id is None
    assert signed.payload["userId"] == buyer.id and signed.payload["total"] == 0
    assert signed.actor_user_id == buyer.id


def test_search_events_are_written_in_batches_by_the_app(settings, store, clock, catalog):
    """The production mode: events of many searches go in one transaction a moment later, and what is
    still buffered at shutdown is written then."""
    import time

    from fastapi.testclient import TestClient

    from api.main import create_app

    batched = create_app(
        settings.model_copy(update={"search_event_flush_seconds": 0.1}), clock=clock, store=store
    )
    with TestClient(batched) as client:
        local = Api(client, store, clock)
        for term in ("wireless", "atlas", "novel"):
            data(client.get("/api/products/search", params={"q": term}))
        deadline = time.monotonic() + 10
        while len(local.events("search.performed")) < 3:
            assert time.monotonic() < deadline, "search events were not flushed"
            time.sleep(0.05)
        events = local.events("search.performed")
        assert [e.payload["query"] for e in events] == ["wireless", "atlas", "novel"]
        assert len({e.request_id for e in events}) == 3
        data(client.get("/api/products/search", params={"q": "speaker"}))
    # The app has stopped: the last search was flushed on the way out.
    assert [e.payload["query"] for e in local.events("search.performed")][-1] == "speaker"


def test_search_filters(api, catalog):
    gadgets, books = catalog["gadgets"]["id"], catalog["books"]["id"]
    assert _names(api, {"category": books, "sort": "price_asc"}) == ["Mystery Novel", "World Atlas"]
    assert _names(api, {"q": "wireless", "category": books}) == ["World Atlas"]
    assert _names(api, {"category": gadgets, "minPrice": "50", "maxPrice": "79.99"}) == ["Wireless Earbuds"]
    assert _names(api, {"minRating": 4, "sort": "rating"}) == ["Wireless Headphones", "Mystery Novel"]
    assert _names(api, {"delivery": "true", "sort": "price_asc"}) == [
        "Bluetooth Speaker",
        "Wireless Earbuds",
        "Wireless Headphones",
    ]
    assert _names(api, {"delivery": "false", "sort": "price_asc"}) == ["Mystery Novel", "World Atlas"]
    rows, page = _search(api, {"sort": "price_asc", "pageSize": 2, "page": 2})
    assert [r["name"] for r in rows] == ["Bluetooth Speaker", "Wireless Earbuds"]
    assert page == {"page": 2, "pageSize": 2, "total": 5, "pages": 3}


def test_search_sort_orders(api, catalog):
    assert _names(api, {}) == [
        "Wireless Earbuds",
        "World Atlas",
        "Mystery Novel",
        "Bluetooth Speaker",
        "Wireless Headphones",
    ]  # newest by default without q
    assert _names(api, {"sort": "newest"}) == _names(api, {})
    assert _names(api, {"sort": "price_asc"}) == [
        "Mystery Novel",
        "World Atlas",
        "Bluetooth Speaker",
        "Wireless Earbuds",
        "Wireless Headphones",
    ]
    assert _names(api, {"sort": "price_desc"}) == list(reversed(_names(api, {"sort": "price_asc"})))
    assert _names(api, {"sort": "rating"}) == [
        "Wireless Headphones",
        "Mystery Novel",
        "Bluetooth Speaker",
        "Wireless Earbuds",
        "World Atlas",
    ]
    # views + sales: speaker 50, novel 35, headphones 1, then the newest of the zeros first.
    assert _names(api, {"sort": "popular"}) == [
        "Bluetooth Speaker",
        "Mystery Novel",
        "Wireless Headphones",
        "Wireless Earbuds",
        "World Atlas",
    ]
    assert _names(api, {"q": "wireless", "sort": "price_asc"}) == [
        "World Atlas",
        "Bluetooth Speaker",
        "Wireless Earbuds",
        "Wireless Headphones",
    ]
    assert _names(api, {"sort": "relevance"}) == _names(api, {})  # no text: falls back to newest


def test_search_by_distance_includes_near_and_excludes_far_shops(api, catalog):
    near = {"lat": BERLIN[0], "lon": BERLIN[1], "radiusKm": 50}
    rows, page = _search(api, {**near, "sort": "distance"})
    assert [r["name"] for r in rows] == [
        "Wireless Headphones",
        "Bluetooth Speaker",
        "Mystery Novel",
        "World Atlas",
    ]
    assert page["total"] == 4
    assert [r["shopName"] for r in rows] == ["Berlin Bits", "Berlin Bits", "Potsdam Pages", "Potsdam Pages"]
    assert rows[0]["distanceKm"] == pytest.approx(0, abs=0.01)
    assert rows[2]["distanceKm"] == pytest.approx(27.0, abs=1.0)
    assert _names(api, {**near, "radiusKm": 10}) == ["Bluetooth Speaker", "Wireless Headphones"]
    found = _names(api, {**near, "q": "wireless"})
    assert found[0] == "Wireless Headphones" and set(found[1:]) == {"Bluetooth Speaker", "World Atlas"}
    assert _names(api, {**near, "delivery": "true"}) == ["Bluetooth Speaker", "Wireless Headphones"]
    everywhere = _search(api, {**near, "radiusKm": 3000, "sort": "distance"})[0]
    assert [r["name"] for r in everywhere][-1] == "Wireless Earbuds"
    assert everywhere[-1]["distanceKm"] == pytest.approx(2310, rel=0.02)
    assert "distanceKm" not in _search(api, {"q": "wireless"})[0][0]


def test_search_by_distance_across_the_antimeridian(api):
    owner = api.user()
    fiji = api.shop(owner, name="Fiji Far East", latitude=-17.0, longitude=179.95)
    api.product(owner, fiji["id"], name="Island Hammock")
    rows, _ = _search(api, {"lat": -17.0, "lon": -179.95, "radiusKm": 20})
    assert [r["name"] for r in rows] == ["Island Hammock"]
    assert rows[0]["distanceKm"] == pytest.approx(10.6, abs=0.5)
    assert _search(api, {"lat": -17.0, "lon": -179.5, "radiusKm": 20})[0] == []


def test_fts_index_follows_renames_and_deactivation(api, catalog):
    owner = catalog["owners"][1]
    novel = catalog["products"]["novel"]
    url = f"/api/products/{novel['id']}"
    data(api.client.patch(url, json={"name": "Thriller Paperback"}, headers=owner.headers))
    assert _names(api, {"q": "mystery"}) == []
    assert _names(api, {"q": "thriller"}) == ["Thriller Paperback"]
    data(api.client.patch(url, json={"description": "Now about submarines"}, headers=owner.headers))
    assert _names(api, {"q": "gripping"}) == []
    assert _names(api, {"q": "submarines"}) == ["Thriller Paperback"]
    data(api.client.patch(url, json={"isActive": False}, headers=owner.headers))
    assert _search(api, {"q": "thriller"}) == ([], {"page": 1, "pageSize": 20, "total": 0, "pages": 0})
    data(api.client.patch(url, json={"isActive": True}, headers=owner.headers))
    assert _names(api, {"q": "thriller"}) == ["Thriller Paperback"]
    # Counter updates (views) leave the text index alone.
    data(api.client.post("/api/track/view", json={"productId": novel["id"]}), 201)
    assert _names(api, {"q": "submarines"}) == ["Thriller Paperback"]


def test_inactive_products_are_hidden_from_search(api, catalog):
    owner = catalog["owners"][0]
    speaker = catalog["products"]["speaker"]
    data(api.client.patch(f"/api/products/{speaker['id']}", json={"isActive": False}, headers=owner.headers))
    assert "Bluetooth Speaker" not in _names(api, {"q": "wireless"})
    assert "Bluetooth Speaker" not in _names(api, {})
    assert _search(api, {"q": "wireless"})[1]["total"] == 3


@pytest.mark.parametrize(
    "q",
    [
        '"',
        "'",
        "*",
        "wireless*",
        "AND",
        "OR NOT",
        "NEAR(a b)",
        "name:wireless",
        "-wireless",
        "^wire",
        "\\",
        "(((",
        ")",
        "wire'less",
        "'; DROP TABLE products; --",
        "!!!",
        "漢字",
        "😀 wireless",
        "a" * 200,
        "wireless AND headphones",
        "wire less",
        "%",
        "_",
        "col:val*",
        "{name}: x",
        "__init__",
    ],
)
def test_any_text_is_safe(api, catalog, q):
    rows, page = _search(api, {"q": q})
    assert page["total"] == len(rows)


def test_search_returns_matching_results_for_operators_as_plain_words(api, catalog):
    # "and" is a stop word here, not an operator
    assert _names(api, {"q": "wireless AND"}) == _names(api, {"q": "wireless"})
    assert _names(api, {"q": "(wireless)"}) == _names(api, {"q": "wireless"})
    assert _names(api, {"q": "-headphones"}) == ["Wireless Headphones", "Bluetooth Speaker"]


@pytest.mark.parametrize(
    "params",
    [
        {"lat": 52.5},
        {"lat": 52.5, "lon": 13.4},
        {"lon": 13.4, "radiusKm": 5},
        {"radiusKm": 5},
        {"sort": "distance"},
        {"lat": 91, "lon": 0, "radiusKm": 5},
        {"lat": 52.5, "lon": 13.4, "radiusKm": 0},
        {"lat": 52.5, "lon": 13.4, "radiusKm": "nan"},
        {"pageSize": 101},
        {"page": 0},
        {"sort": "best"},
        {"minRating": 6},
        {"minPrice": "1.123456789"},
        {"minPrice": 10, "maxPrice": 1},
        {"category": "books"},
        {"delivery": "perhaps"},
        {"query": "wireless"},
        {"q": "x" * 201},
    ],
)
def test_search_rejects_bad_parameters(api, params):
    err = error(api.client.get("/api/products/search", params=params), 422, "VALIDATION_ERROR")
    assert err["details"]
    assert api.events("search.performed") == []


def test_search_pages_past_the_end_keep_the_total(api, catalog):
    assert _search(api, {"q": "wireless", "page": 9}) == (
        [],
        {"page": 9, "pageSize": 20, "total": 4, "pages": 1},
    )
    rows, page = _search(api, {"q": "wireless", "category": catalog["gadgets"]["id"], "page": 5})
    assert rows == [] and page["total"] == 3
    rows, page = _search(api, {"q": "wireless", "sort": "price_asc", "pageSize": 1, "page": 2})
    assert [r["name"] for r in rows] == ["Bluetooth Speaker"] and page["total"] == 4


def test_search_price_and_rating_ranges_with_small_pages(api, catalog):
    names = [
        _search(api, {"minPrice": "20", "maxPrice": "70", "pageSize": 1, "page": n})[0][0]["name"]
        for n in (1, 2, 3)
    ]
    assert names == ["Wireless Earbuds", "World Atlas", "Bluetooth Speaker"]
    second = _names(api, {"minRating": 3.9, "sort": "newest", "pageSize": 1, "page": 2})
    assert second == ["Bluetooth Speaker"]


def test_search_migration_downgrades_and_upgrades_again(tmp_path):
    """Migration 0002 (FTS table, its triggers, the popularity indexes) comes off and back on cleanly."""
    from sqlalchemy import create_engine, text

    from api.db.migrate import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'migrate.db'}"
    query = text("SELECT name FROM sqlite_master WHERE name LIKE 'products_fts%' OR name LIKE '%popularity%'")

    def objects() -> set[str]:
        engine = create_engine(url)
        with engine.connect() as conn:
            names = {r[0] for r in conn.execute(query)}
        engine.dispose()
        return names

    upgrade(url)
    created = objects()
    assert {
        "products_fts",
        "products_fts_ai",
        "products_fts_ad",
        "products_fts_au",
        "ix_products_active_popularity_id",
    } <= created
    downgrade(url, "0001")
    assert objects() == set()
    upgrade(url)
    assert objects() == created
