"""A failure in the middle of an order request leaves neither the change nor its event behind."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from api.orders import service as order_service
from tests.api.test_orders import (
    market,
    move,
    notifications,
    order_in,
    place,
    product_row,
    set_product,
    stock,
)
from tests.helpers import Api, data, error


@pytest.fixture
def m(api: Api) -> SimpleNamespace:
    return market(api)


def _snapshot(api: Api) -> dict[str, Any]:
    return {t: api.count(t) for t in ("orders", "order_items", "idempotency_keys", "notifications", "events")}


def test_second_item_out_of_stock_rolls_back_the_first_items_reservation(api, m):
    # The products are reserved in id order: p1's stock is decremented inside the transaction before
    # p2 turns out to be short, so a leak of that first UPDATE would show here.
    assert m.p1["id"] < m.p2["id"]
    before = _snapshot(api)
    err = error(
        place(api, m.buyer, [(m.p1["id"], 4), (m.p2["id"], 5)], key="half-cart"), 409, "INSUFFICIENT_STOCK"
    )
    assert err["details"] == {"items": [{"productId": m.p2["id"], "requested": 5, "available": 3}]}
    assert _snapshot(api) == before  # no order, no items, no key, no notification, no event
    assert api.events("order.placed") == []
    assert stock(api, m.p1["id"]) == 10 and stock(api, m.p2["id"]) == 3


def test_every_short_item_is_reported(api, m):
    err = error(place(api, m.buyer, [(m.p1["id"], 11), (m.p2["id"], 4)]), 409, "INSUFFICIENT_STOCK")
    assert [i["productId"] for i in err["details"]["items"]] == [m.p1["id"], m.p2["id"]]
    assert stock(api, m.p1["id"]) == 10 and stock(api, m.p2["id"]) == 3


class Boom(RuntimeError):
    pass


def _explode(*_: Any, **__: Any) -> None:
    raise Boom("notification service down")


def test_crash_after_the_order_and_its_event_were_written_rolls_everything_back(api, m, monkeypatch):
    before = _snapshot(api)
    # notify() runs last: the order, its items, the stock reservation and order.placed are all in the
    # session by then.
    monkeypatch.setattr(order_service, "notify", _explode)
    resp = place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)], key="crash")
    error(resp, 500, "INTERNAL_ERROR")
    assert _snapshot(api) == before
    assert stock(api, m.p1["id"]) == 10 and stock(api, m.p2["id"]) == 3

    monkeypatch.undo()  # the retry with the same key runs for real: the crashed attempt stored nothing
    order = data(place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)], key="crash"), 201)
    assert api.count("orders") == 1 and len(api.events("order.placed")) == 1
    assert stock(api, m.p1["id"]) == 8 and order["status"] == "pending"


@pytest.mark.parametrize(
    ("status", "action", "actor"),
    [
        ("pending", "pay", "buyer"),
        ("paid", "cancel", "seller"),
        ("pending", "cancel", "buyer"),
        ("paid", "ship", "seller"),
        ("shipped", "deliver", "buyer"),
    ],
)
def test_crash_in_a_status_move_leaves_the_order_as_it_was(api, m, monkeypatch, status, action, actor):
    order = order_in(api, m, status, [(m.p1["id"], 2)])
    before, row = _snapshot(api), product_row(api, m.p1["id"])
    seller_notes = len(notifications(api, m.seller.id))
    monkeypatch.setattr(order_service, "notify", _explode)
    error(move(api, getattr(m, actor), order["id"], action), 500, "INTERNAL_ERROR")
    monkeypatch.undo()
    after = data(api.client.get(f"/api/orders/{order['id']}", headers=m.buyer.headers))
    assert after == order
    assert _snapshot(api) == before and len(notifications(api, m.seller.id)) == seller_notes
    now = product_row(api, m.p1["id"])
    assert (now.stock, now.sales_count) == (row.stock, row.sales_count)
    # And the move still works once the fault is gone.
    assert data(move(api, getattr(m, actor), order["id"], action))["status"] != status


def test_insufficient_stock_after_a_partial_restock(api, m):
    set_product(api, m.p2["id"], stock=0)
    error(place(api, m.buyer, [(m.p1["id"], 1), (m.p2["id"], 1)]), 409, "INSUFFICIENT_STOCK")
    set_product(api, m.p2["id"], stock=1)
    data(place(api, m.buyer, [(m.p1["id"], 1), (m.p2["id"], 1)]), 201)
    assert stock(api, m.p1["id"]) == 9 and stock(api, m.p2["id"]) == 0
