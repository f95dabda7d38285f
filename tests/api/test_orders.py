"""Orders through the HTTP API: placement, stock, idempotency, the status machine and who may do what."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update

from api.catalog.models import Product
from api.notifications.models import Notification
from tests.helpers import Actor, Api, data, error

MOVES = ("pay", "cancel", "ship", "deliver")


# --- helpers (also used by the reviews and atomicity tests) -------------------------------------


def product_row(api: Api, product_id: int) -> Product:
    with api.store.read() as db:
        product = db.get(Product, product_id)
        assert product is not None
        return product


def stock(api: Api, product_id: int) -> int:
    return product_row(api, product_id).stock


def set_product(api: Api, product_id: int, **values: Any) -> None:
    with api.store.write() as db:
        db.info["silent_write_ok"] = True  # a test fixture, not a domain change
        db.execute(update(Product).where(Product.id == product_id).values(**values))
        db.commit()


def notifications(api: Api, user_id: int) -> list[Notification]:
    with api.store.read() as db:
        return list(
            db.execute(
                select(Notification).where(Notification.user_id == user_id).order_by(Notification.id)
            ).scalars()
        )


def place(
    api: Api, buyer: Actor | None, items: list[tuple[int, int]], *, key: str | None = None, **extra: Any
) -> Any:
    headers = dict(buyer.headers) if buyer else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {"items": [{"productId": pid, "quantity": q} for pid, q in items], **extra}
    return api.client.post("/api/orders", json=body, headers=headers)


def move(api: Api, actor: Actor | None, order_id: int, action: str, body: Any = None) -> Any:
    return api.client.put(
        f"/api/orders/{order_id}/{action}", json=body, headers=actor.headers if actor else {}
    )


def order_in(
    api: Api, m: SimpleNamespace, status: str, items: list[tuple[int, int]] | None = None
) -> dict[str, Any]:
    """An order of m.buyer from m.shop, driven to the given status."""
    order: dict[str, Any] = data(place(api, m.buyer, items or [(m.p1["id"], 1)]), 201)
    path = {
        "pending": [],
        "paid": [(m.buyer, "pay")],
        "shipped": [(m.buyer, "pay"), (m.seller, "ship")],
        "delivered": [(m.buyer, "pay"), (m.seller, "ship"), (m.buyer, "deliver")],
        "cancelled": [(m.buyer, "cancel")],
    }[status]
    for actor, action in path:
        order = data(move(api, actor, order["id"], action))
    assert order["status"] == status
    return order


def market(api: Api) -> SimpleNamespace:
    """A seller with a shop of two products, a buyer, another user and an admin."""
    seller = api.user("seller")
    shop = api.shop(seller)
    p1 = api.product(seller, shop["id"], price="25.00", stock=10)
    p2 = api.product(seller, shop["id"], price="4.50", stock=3)
    return SimpleNamespace(
        seller=seller, shop=shop, p1=p1, p2=p2, buyer=api.user(), other=api.user(), admin=api.user("admin")
    )


@pytest.fixture
def m(api: Api) -> SimpleNamespace:
    return market(api)


# --- placing ------------------------------------------------------------------------------------


def test_place_order_reserves_stock_snapshots_prices_and_notifies_the_seller(api, m):
    resp = place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 3)], shippingAddress="1 Main St")
    order = data(resp, 201)
    assert order["status"] == "pending"
    assert order["buyerId"] == m.buyer.id and order["shopId"] == m.shop["id"]
    assert order["currency"] == "USDT"
    assert order["shippingAddress"] == "1 Main St"
    assert isinstance(order["totalAmount"], str)
    assert Decimal(order["totalAmount"]) == Decimal("63.50")
    lines = {i["productId"]: i for i in order["items"]}
    assert Decimal(lines[m.p1["id"]]["unitPrice"]) == Decimal("25")
    assert Decimal(lines[m.p1["id"]]["lineTotal"]) == Decimal("50")
    assert Decimal(lines[m.p2["id"]]["lineTotal"]) == Decimal("13.5")
    assert lines[m.p2["id"]]["quantity"] == 3
    assert lines[m.p1["id"]]["productName"] == m.p1["name"]
    assert order["paidAt"] is None and order["createdAt"]
    assert stock(api, m.p1["id"]) == 8 and stock(api, m.p2["id"]) == 0

    [ev] = api.events("order.placed")
    assert ev.order_id == order["id"] and ev.shop_id == m.shop["id"] and ev.actor_user_id == m.buyer.id
    assert ev.payload["buyerId"] == m.buyer.id and ev.payload["currency"] == "USDT"
    assert Decimal(ev.payload["total"]) == Decimal("63.5")
    assert sorted((i["productId"], i["quantity"]) for i in ev.payload["items"]) == sorted(
        [(m.p1["id"], 2), (m.p2["id"], 3)]
    )
    [note] = notifications(api, m.seller.id)
    assert note.type == "order_update" and note.data["orderId"] == order["id"]

    # A price change later does not touch the order's snapshot.
    set_product(api, m.p1["id"], price=Decimal("99"))
    again = data(api.client.get(f"/api/orders/{order['id']}", headers=m.buyer.headers))
    assert Decimal(
        again["items"][0]["unitPrice"]
        if again["items"][0]["productId"] == m.p1["id"]
        else again["items"][1]["unitPrice"]
    ) == Decimal("25")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [{"productId": 1, "quantity": 0}]}, "items.0.quantity"),
        ({"items": [{"productId": 1, "quantity": -1}]}, "items.0.quantity"),
        ({"items": [{"productId": 1, "quantity": "1"}]}, "items.0.quantity"),
        ({"items": [{"productId": 1, "quantity": 1.5}]}, "items.0.quantity"),
        ({"items": []}, "items"),
        ({}, "items"),
        ({"items": [{"productId": 1, "quantity": 1}], "coupon": "FREE"}, "coupon"),
        ({"items": [{"productId": 1, "quantity": 1, "price": "0.01"}]}, "items.0.price"),
        ({"items": [{"productId": 1, "quantity": 1}, {"productId": 1, "quantity": 2}]}, "items"),
        ({"items": [{"productId": i, "quantity": 1} for i in range(1, 52)]}, "items"),
        ({"items": [{"productId": 1, "quantity": 1}], "shippingAddress": ""}, "shippingAddress"),
    ],
)
def test_place_order_validation(api, m, body, field):
    err = error(api.client.post("/api/orders", json=body, headers=m.buyer.headers), 422, "VALIDATION_ERROR")
    assert any(d["field"].startswith(field) for d in err["details"]), err
    assert api.count("orders") == 0


def test_place_order_business_rules(api, m):
    assert place(api, None, [(m.p1["id"], 1)]).status_code == 401
    error(place(api, m.buyer, [(999_999, 1)]), 404, "NOT_FOUND")
    error(place(api, m.seller, [(m.p1["id"], 1)]), 422, "CANNOT_ORDER_OWN_SHOP")

    other_seller = api.user("seller")
    other_shop = api.shop(other_seller)
    elsewhere = api.product(other_seller, other_shop["id"])
    err = error(place(api, m.buyer, [(m.p1["id"], 1), (elsewhere["id"], 1)]), 422, "MULTIPLE_SHOPS")
    assert sorted(err["details"]["shopIds"]) == sorted([m.shop["id"], other_shop["id"]])

    in_btc = api.product(m.seller, m.shop["id"], currency="BTC", price="0.001")
    error(place(api, m.buyer, [(m.p1["id"], 1), (in_btc["id"], 1)]), 422, "MIXED_CURRENCIES")

    set_product(api, m.p2["id"], is_active=False)
    err = error(place(api, m.buyer, [(m.p2["id"], 1)]), 422, "PRODUCT_UNAVAILABLE")
    assert err["details"] == {"productId": m.p2["id"]}

    set_product(api, m.p1["id"], price=Decimal("9999999"))
    error(place(api, m.buyer, [(m.p1["id"], 2)]), 422, "ORDER_TOO_LARGE")

    set_product(api, m.p1["id"], price=Decimal("25"))
    data(api.client.patch(f"/api/shops/{m.shop['id']}", json={"isActive": False}, headers=m.seller.headers))
    error(place(api, m.buyer, [(m.p1["id"], 1)]), 422, "SHOP_INACTIVE")  # a closed shop takes no orders

    assert api.count("orders") == 0 and api.events("order.placed") == []
    assert stock(api, m.p1["id"]) == 10 and stock(api, m.p2["id"]) == 3


def test_ordering_more_than_the_stock_is_a_conflict(api, m):
    err = error(place(api, m.buyer, [(m.p2["id"], 4)]), 409, "INSUFFICIENT_STOCK")
    assert err["details"] == {"items": [{"productId": m.p2["id"], "requested": 4, "available": 3}]}
    assert api.count("orders") == 0 and api.count("order_items") == 0
    assert stock(api, m.p2["id"]) == 3
    # Exactly the stock is fine, and then nothing is left.
    data(place(api, m.buyer, [(m.p2["id"], 3)]), 201)
    error(place(api, m.other, [(m.p2["id"], 1)]), 409, "INSUFFICIENT_STOCK")
    assert stock(api, m.p2["id"]) == 0 and api.count("orders") == 1


def test_two_buyers_racing_for_the_last_unit(api, m):
    set_product(api, m.p1["id"], stock=1)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def buy(actor: Actor) -> None:
        barrier.wait()
        results.append(place(api, actor, [(m.p1["id"], 1)]).status_code)

    threads = [threading.Thread(target=buy, args=(a,)) for a in (m.buyer, m.other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [201, 409]
    assert stock(api, m.p1["id"]) == 0 and api.count("orders") == 1


# --- idempotency --------------------------------------------------------------------------------


def test_idempotent_retry_replays_the_first_response(api, m):
    first = place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)], key="cart-42")
    order = data(first, 201)
    assert "idempotent-replayed" not in first.headers
    # The same body (items in another order is the same cart) replays the first answer.
    retry = place(api, m.buyer, [(m.p2["id"], 1), (m.p1["id"], 2)], key="cart-42")
    assert data(retry, 201) == order
    assert retry.headers["idempotent-replayed"] == "true"
    third = place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)], key="cart-42")
    assert data(third, 201)["id"] == order["id"]

    assert api.count("orders") == 1 and api.count("order_items") == 2
    assert len(api.events("order.placed")) == 1
    assert len(notifications(api, m.seller.id)) == 1
    assert stock(api, m.p1["id"]) == 8 and stock(api, m.p2["id"]) == 2

    # The replay is the first response even after the order moved on.
    data(move(api, m.buyer, order["id"], "pay"))
    assert data(place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)], key="cart-42"), 201) == order


def test_idempotency_key_reused_with_another_body(api, m):
    data(place(api, m.buyer, [(m.p1["id"], 1)], key="k1"), 201)
    err = error(place(api, m.buyer, [(m.p1["id"], 2)], key="k1"), 422, "IDEMPOTENCY_KEY_REUSED")
    assert err["details"] == {"key": "k1"}
    error(
        place(api, m.buyer, [(m.p1["id"], 1)], key="k1", shippingAddress="elsewhere"),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert api.count("orders") == 1 and stock(api, m.p1["id"]) == 9


def test_idempotency_keys_are_per_user_and_bounded(api, m):
    a = data(place(api, m.buyer, [(m.p1["id"], 1)], key="same"), 201)
    b = data(place(api, m.other, [(m.p1["id"], 1)], key="same"), 201)
    assert a["id"] != b["id"]
    assert data(place(api, m.buyer, [(m.p1["id"], 1)], key="x" * 128), 201)["id"] not in (a["id"], b["id"])
    err = error(place(api, m.buyer, [(m.p1["id"], 1)], key="x" * 129), 422, "VALIDATION_ERROR")
    assert err["details"][0]["in"] == "header"
    assert api.count("orders") == 3


def test_a_failed_request_does_not_burn_its_key(api, m):
    error(place(api, m.buyer, [(m.p2["id"], 5)], key="retry-me"), 409, "INSUFFICIENT_STOCK")
    assert api.count("idempotency_keys") == 0
    set_product(api, m.p2["id"], stock=5)
    order = data(place(api, m.buyer, [(m.p2["id"], 5)], key="retry-me"), 201)
    assert data(place(api, m.buyer, [(m.p2["id"], 5)], key="retry-me"), 201) == order


def test_concurrent_identical_requests_make_one_order(api, m):
    barrier = threading.Barrier(4)
    responses: list[Any] = []

    def send() -> None:
        barrier.wait()
        responses.append(place(api, m.buyer, [(m.p1["id"], 3)], key="double-click"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bodies = [data(r, 201) for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert api.count("orders") == 1 and api.count("idempotency_keys") == 1
    assert len(api.events("order.placed")) == 1
    assert stock(api, m.p1["id"]) == 7


# --- reading ------------------------------------------------------------------------------------


def test_get_order_authorization(api, m):
    order = data(place(api, m.buyer, [(m.p1["id"], 1)]), 201)
    url = f"/api/orders/{order['id']}"
    assert data(api.client.get(url, headers=m.buyer.headers)) == order
    assert data(api.client.get(url, headers=m.seller.headers))["id"] == order["id"]
    assert data(api.client.get(url, headers=m.admin.headers))["id"] == order["id"]
    error(api.client.get(url, headers=m.other.headers), 404, "NOT_FOUND")
    error(api.client.get(url), 401, "UNAUTHORIZED")
    error(api.client.get("/api/orders/999999", headers=m.buyer.headers), 404, "NOT_FOUND")


def test_list_orders_as_buyer_seller_and_admin(api, m):
    first = order_in(api, m, "paid")
    api.clock.advance(timedelta(seconds=5))
    second = data(place(api, m.buyer, [(m.p2["id"], 1)]), 201)
    theirs = data(place(api, m.other, [(m.p1["id"], 1)]), 201)

    resp = api.client.get("/api/orders", headers=m.buyer.headers)
    assert [o["id"] for o in data(resp)] == [second["id"], first["id"]]  # newest first
    assert resp.json()["meta"]["pagination"] == {"page": 1, "pageSize": 20, "total": 2, "pages": 1}
    assert data(resp)[0]["items"][0]["productId"] == m.p2["id"]

    paged = api.client.get("/api/orders?page=2&pageSize=1", headers=m.buyer.headers)
    assert [o["id"] for o in data(paged)] == [first["id"]]
    assert paged.json()["meta"]["pagination"]["pages"] == 2

    only_paid = data(api.client.get("/api/orders?status=paid", headers=m.buyer.headers))
    assert [o["id"] for o in only_paid] == [first["id"]]
    error(api.client.get("/api/orders?status=lost", headers=m.buyer.headers), 422, "VALIDATION_ERROR")

    as_seller = data(api.client.get("/api/orders?role=seller", headers=m.seller.headers))
    assert {o["id"] for o in as_seller} == {first["id"], second["id"], theirs["id"]}
    assert data(api.client.get("/api/orders", headers=m.seller.headers)) == []  # bought nothing
    assert data(api.client.get("/api/orders?role=seller", headers=m.other.headers)) == []

    everything = data(api.client.get("/api/orders?all=true", headers=m.admin.headers))
    assert {o["id"] for o in everything} == {first["id"], second["id"], theirs["id"]}
    error(api.client.get("/api/orders?all=true", headers=m.buyer.headers), 403, "FORBIDDEN")
    error(api.client.get("/api/orders"), 401, "UNAUTHORIZED")


# --- the status machine ---------------------------------------------------------------------------


def test_full_lifecycle(api, m):
    order = data(place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)]), 201)
    oid = order["id"]

    paid = data(move(api, m.buyer, oid, "pay", {"txHash": "0xabc", "chain": "ethereum"}))
    assert paid["status"] == "paid" and paid["paymentTxHash"] == "0xabc"
    assert paid["paymentChain"] == "ethereum"
    assert paid["paidAt"] is not None
    assert product_row(api, m.p1["id"]).sales_count == 2 and product_row(api, m.p2["id"]).sales_count == 1

    shipped = data(move(api, m.seller, oid, "ship", {"trackingNumber": "TRK-1"}))
    assert shipped["status"] == "shipped" and shipped["trackingNumber"] == "TRK-1" and shipped["shippedAt"]

    delivered = data(move(api, m.buyer, oid, "deliver"))
    assert delivered["status"] == "delivered" and delivered["deliveredAt"]
    assert delivered["paidAt"] == paid["paidAt"]

    for name, payload_key in (
        ("order.paid", "txHash"),
        ("order.shipped", "trackingNumber"),
        ("order.delivered", "by"),
    ):
        [ev] = api.events(name)
        assert ev.order_id == oid and ev.shop_id == m.shop["id"] and payload_key in ev.payload
    assert api.events("order.paid")[0].payload["from"] == "pending"
    # The seller heard of the order, the payment and the delivery; the buyer of the shipping.
    seller_notes = [n.title for n in notifications(api, m.seller.id)]
    assert seller_notes == [f"New order #{oid}", f"Order #{oid} paid", f"Order #{oid} delivered"]
    assert [n.title for n in notifications(api, m.buyer.id)] == [f"Order #{oid} shipped"]
    assert stock(api, m.p1["id"]) == 8  # delivered orders keep their stock taken


def test_seller_may_mark_delivered_and_pay_body_is_optional(api, m):
    order = order_in(api, m, "shipped")
    assert order["paymentTxHash"] is None
    assert data(move(api, m.seller, order["id"], "deliver"))["status"] == "delivered"


def test_cancel_pending_releases_stock(api, m):
    order = data(place(api, m.buyer, [(m.p1["id"], 4), (m.p2["id"], 3)]), 201)
    assert stock(api, m.p1["id"]) == 6 and stock(api, m.p2["id"]) == 0
    cancelled = data(move(api, m.buyer, order["id"], "cancel", {"reason": "changed my mind"}))
    assert cancelled["status"] == "cancelled" and cancelled["cancelReason"] == "changed my mind"
    assert cancelled["cancelledAt"] is not None
    assert stock(api, m.p1["id"]) == 10 and stock(api, m.p2["id"]) == 3
    assert product_row(api, m.p1["id"]).sales_count == 0
    [ev] = api.events("order.cancelled")
    assert ev.payload["by"] == "buyer" and ev.payload["wasPaid"] is False
    assert ev.payload["reason"] == "changed my mind"
    assert notifications(api, m.seller.id)[-1].title == f"Order #{order['id']} cancelled"


def test_seller_cancels_a_paid_order_and_gives_sales_back(api, m):
    order = order_in(api, m, "paid", [(m.p1["id"], 3)])
    assert product_row(api, m.p1["id"]).sales_count == 3 and stock(api, m.p1["id"]) == 7
    data(move(api, m.seller, order["id"], "cancel"))
    row = product_row(api, m.p1["id"])
    assert row.sales_count == 0 and row.stock == 10
    [ev] = api.events("order.cancelled")
    assert ev.payload["by"] == "seller" and ev.payload["wasPaid"] is True and ev.payload["reason"] is None
    assert notifications(api, m.buyer.id)[-1].title == f"Order #{order['id']} cancelled"


ALLOWED = {
    "pending": {"pay", "cancel"},
    "paid": {"cancel", "ship"},
    "shipped": {"deliver"},
    "delivered": set(),
    "cancelled": set(),
}


@pytest.mark.parametrize("status", list(ALLOWED))
def test_every_invalid_transition_is_a_conflict_and_changes_nothing(api, m, status):
    order = order_in(api, m, status)
    url = f"/api/orders/{order['id']}"
    before, events, stock_before = (
        data(api.client.get(url, headers=m.buyer.headers)),
        api.event_count(),
        stock(api, m.p1["id"]),
    )
    for action in sorted(set(MOVES) - ALLOWED[status]):
        actor = m.seller if action == "ship" else m.buyer
        err = error(move(api, actor, order["id"], action), 409, "INVALID_STATE_TRANSITION")
        assert err["details"] == {"currentStatus": status, "action": action}
    assert data(api.client.get(url, headers=m.buyer.headers)) == before
    assert api.event_count() == events and stock(api, m.p1["id"]) == stock_before


def test_move_authorization_matrix(api, m):
    order = order_in(api, m, "pending")
    oid = order["id"]
    for action in MOVES:
        error(move(api, m.other, oid, action), 404, "NOT_FOUND")  # someone else's order does not exist
        error(move(api, None, oid, action), 401, "UNAUTHORIZED")
        error(move(api, m.buyer, 999_999, action), 404, "NOT_FOUND")
        error(move(api, m.admin, oid, action), 403, "FORBIDDEN")  # admins see orders, they don't act on them
    error(move(api, m.seller, oid, "pay"), 403, "FORBIDDEN")  # only the buyer pays
    data(move(api, m.buyer, oid, "pay"))
    error(move(api, m.buyer, oid, "ship"), 403, "FORBIDDEN")  # only the seller ships
    assert data(api.client.get(f"/api/orders/{oid}", headers=m.buyer.headers))["status"] == "paid"


def test_move_body_validation(api, m):
    order = order_in(api, m, "pending")
    oid = order["id"]
    error(move(api, m.buyer, oid, "pay", {"txHash": "0x1", "amount": "5"}), 422, "VALIDATION_ERROR")
    error(move(api, m.buyer, oid, "pay", {"txHash": "x" * 129}), 422, "VALIDATION_ERROR")
    error(move(api, m.buyer, oid, "cancel", {"reason": "r" * 256}), 422, "VALIDATION_ERROR")
    error(move(api, m.buyer, oid, "cancel", {"reason": 5}), 422, "VALIDATION_ERROR")
    assert data(api.client.get(f"/api/orders/{oid}", headers=m.buyer.headers))["status"] == "pending"


def test_two_concurrent_payments_exactly_one_wins(api, m):
    order = order_in(api, m, "pending", [(m.p1["id"], 2)])
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def pay() -> None:
        barrier.wait()
        results.append(move(api, m.buyer, order["id"], "pay"))

    threads = [threading.Thread(target=pay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200, 409]
    loser = next(r for r in results if r.status_code == 409)
    error(loser, 409, "INVALID_STATE_TRANSITION")
    assert len(api.events("order.paid")) == 1
    assert product_row(api, m.p1["id"]).sales_count == 2


def test_concurrent_pay_and_cancel_leave_a_consistent_order(api, m):
    order = order_in(api, m, "pending", [(m.p1["id"], 2)])
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def act(actor: Actor, action: str) -> None:
        barrier.wait()
        results[action] = move(api, actor, order["id"], action).status_code

    threads = [
        threading.Thread(target=act, args=(m.buyer, "pay")),
        threading.Thread(target=act, args=(m.seller, "cancel")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = data(api.client.get(f"/api/orders/{order['id']}", headers=m.buyer.headers))
    row = product_row(api, m.p1["id"])
    if final["status"] == "cancelled":  # cancel won, or pay then cancel both succeeded
        assert row.stock == 10 and row.sales_count == 0
        assert results["cancel"] == 200
    else:
        assert final["status"] == "paid" and results == {"pay": 200, "cancel": 409}
        assert row.stock == 8 and row.sales_count == 2
