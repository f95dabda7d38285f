"""Listing and search pages are cached, and a change to the catalogue shows at once."""

from tests.helpers import data


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

    data(api.client.post("/api/track/view", json={"productId": first["id"]}), 201)
    listed = {p["id"]: p for p in data(api.client.get("/api/products"))}
    assert listed[first["id"]]["views"] == 1
