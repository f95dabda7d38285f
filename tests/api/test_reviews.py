"""Reviews through the HTTP API: only after delivery, once per user and product, aggregates kept current."""

from __future__ import annotations

import threading
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from tests.api.test_orders import market, order_in, place, product_row
from tests.helpers import Actor, Api, data, error


@pytest.fixture
def m(api: Api) -> SimpleNamespace:
    return market(api)


def review(api: Api, actor: Actor | None, product_id: int, **body: Any) -> Any:
    return api.client.post(
        f"/api/products/{product_id}/reviews", json=body, headers=actor.headers if actor else {}
    )


def delivered_to(api: Api, m: SimpleNamespace, buyer: Actor, product_id: int) -> dict[str, Any]:
    order = data(place(api, buyer, [(product_id, 1)]), 201)
    data(api.client.put(f"/api/orders/{order['id']}/pay", headers=buyer.headers))
    data(api.client.put(f"/api/orders/{order['id']}/ship", headers=m.seller.headers))
    resp = api.client.put(f"/api/orders/{order['id']}/deliver", headers=buyer.headers)
    delivered: dict[str, Any] = data(resp)
    return delivered


def test_post_review_after_delivery(api, m):
    order = order_in(api, m, "delivered")
    created = data(review(api, m.buyer, m.p1["id"], rating=4, title="Solid", comment="Does the job"), 201)
    assert created["rating"] == 4 and created["title"] == "Solid" and created["comment"] == "Does the job"
    assert created["productId"] == m.p1["id"] and created["userId"] == m.buyer.id
    assert created["username"] == m.buyer.username and created["orderId"] == order["id"]
    assert created["productRating"] == 4.0 and created["productRatingCount"] == 1
    row = product_row(api, m.p1["id"])
    assert (row.rating, row.rating_count) == (4.0, 1)

    [ev] = api.events("review.posted")
    assert ev.entity_id == created["id"] and ev.product_id == m.p1["id"] and ev.shop_id == m.shop["id"]
    assert ev.order_id == order["id"] and ev.actor_user_id == m.buyer.id
    assert ev.payload["rating"] == 4 and ev.payload["productRatingCount"] == 1


def test_rating_average_and_count_follow_every_review(api, m):
    buyers = [m.buyer, m.other, api.user()]
    for buyer in buyers:
        delivered_to(api, m, buyer, m.p1["id"])
    expected = [(5, 5.0, 1), (4, 4.5, 2), (3, 4.0, 3)]
    for buyer, (rating, average, count) in zip(buyers, expected, strict=True):
        out = data(review(api, buyer, m.p1["id"], rating=rating), 201)
        assert out["productRating"] == pytest.approx(average) and out["productRatingCount"] == count
        row = product_row(api, m.p1["id"])
        assert row.rating == pytest.approx(average) and row.rating_count == count
    assert product_row(api, m.p2["id"]).rating_count == 0  # other products untouched
    # The catalogue shows the same aggregate.
    shown = data(api.client.get(f"/api/products/{m.p1['id']}"))
    assert shown["rating"] == pytest.approx(4.0) and shown["ratingCount"] == 3


def test_concurrent_reviews_never_lose_a_count(api, m):
    buyers = [api.user() for _ in range(4)]
    for buyer in buyers:
        delivered_to(api, m, buyer, m.p1["id"])
    barrier = threading.Barrier(len(buyers))
    codes: list[int] = []

    def post(buyer: Actor, rating: int) -> None:
        barrier.wait()
        codes.append(review(api, buyer, m.p1["id"], rating=rating).status_code)

    threads = [threading.Thread(target=post, args=(b, r)) for b, r in zip(buyers, (5, 4, 2, 1), strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * 4
    row = product_row(api, m.p1["id"])
    assert row.rating_count == 4 and row.rating == pytest.approx(3.0)


@pytest.mark.parametrize("status", ["pending", "paid", "shipped", "cancelled"])
def test_review_needs_a_delivered_order(api, m, status):
    order_in(api, m, status)
    error(review(api, m.buyer, m.p1["id"], rating=5), 403, "REVIEW_NOT_ALLOWED")
    assert api.count("reviews") == 0 and api.events("review.posted") == []
    assert product_row(api, m.p1["id"]).rating_count == 0


def test_review_rules(api, m):
    order_in(api, m, "delivered")  # of p1 only
    error(review(api, m.other, m.p1["id"], rating=5), 403, "REVIEW_NOT_ALLOWED")  # never bought it
    error(review(api, m.buyer, m.p2["id"], rating=5), 403, "REVIEW_NOT_ALLOWED")  # bought another product
    error(review(api, m.seller, m.p1["id"], rating=5), 403, "REVIEW_NOT_ALLOWED")  # the seller
    error(review(api, None, m.p1["id"], rating=5), 401, "UNAUTHORIZED")
    error(review(api, m.buyer, 999_999, rating=5), 404, "NOT_FOUND")

    data(review(api, m.buyer, m.p1["id"], rating=5), 201)
    # One review per user and product, even with a second delivered order of it.
    delivered_to(api, m, m.buyer, m.p1["id"])
    error(review(api, m.buyer, m.p1["id"], rating=1), 409, "ALREADY_REVIEWED")
    row = product_row(api, m.p1["id"])
    assert (row.rating, row.rating_count) == (5.0, 1)
    assert len(api.events("review.posted")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": 4.0}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": True}, "rating"),
        ({}, "rating"),
        ({"rating": 5, "comment": "x" * 2001}, "comment"),
        ({"rating": 5, "title": "t" * 121}, "title"),
        ({"rating": 5, "stars": 5}, "stars"),
    ],
)
def test_review_validation(api, m, body, field):
    order_in(api, m, "delivered")
    resp = api.client.post(f"/api/products/{m.p1['id']}/reviews", json=body, headers=m.buyer.headers)
    err = error(resp, 422, "VALIDATION_ERROR")
    assert any(d["field"].startswith(field) for d in err["details"]), err
    assert api.count("reviews") == 0


def test_list_reviews_is_public_paginated_newest_first(api, m):
    buyers = [m.buyer, m.other, api.user()]
    ids = []
    for i, buyer in enumerate(buyers):
        delivered_to(api, m, buyer, m.p1["id"])
        api.clock.advance(timedelta(minutes=1))
        ids.append(data(review(api, buyer, m.p1["id"], rating=5 - i, comment=f"review {i}"), 201)["id"])

    resp = api.client.get(f"/api/products/{m.p1['id']}/reviews")  # anonymous
    listed = data(resp)
    assert [r["id"] for r in listed] == ids[::-1]
    assert listed[0]["username"] == buyers[-1].username and listed[0]["comment"] == "review 2"
    assert "productRating" not in listed[0]
    assert resp.json()["meta"]["pagination"] == {"page": 1, "pageSize": 20, "total": 3, "pages": 1}

    page2 = api.client.get(f"/api/products/{m.p1['id']}/reviews?page=2&pageSize=2")
    assert [r["id"] for r in data(page2)] == [ids[0]]
    assert data(api.client.get(f"/api/products/{m.p2['id']}/reviews")) == []
    error(api.client.get("/api/products/999999/reviews"), 404, "NOT_FOUND")
    error(api.client.get(f"/api/products/{m.p1['id']}/reviews?pageSize=500"), 422, "VALIDATION_ERROR")
