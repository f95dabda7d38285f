"""Buyer-seller conversations: get-or-create, messages, per-side unread counters and archive flags,
search, blocking, and who may touch which conversation."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import Actor, Api, data, error

URL = "/api/conversations"


def open_conv(api: Api, user: Actor, shop_id: int, product_id: int | None = None, status: int = 201) -> Any:
    body = {"shopId": shop_id} if product_id is None else {"shopId": shop_id, "productId": product_id}
    return data(api.client.post(URL, json=body, headers=user.headers), status)


def send(api: Api, user: Actor, conv_id: int, body: str = "hello", status: int = 201) -> Any:
    return data(
        api.client.post(f"{URL}/{conv_id}/messages", json={"body": body}, headers=user.headers), status
    )


def listing(api: Api, user: Actor, **params: Any) -> tuple[Any, Any]:
    resp = api.client.get(URL, params=params, headers=user.headers)
    return data(resp), resp.json()["meta"]["pagination"]


def one(api: Api, user: Actor, conv_id: int) -> Any:
    return data(api.client.get(f"{URL}/{conv_id}", headers=user.headers))


@pytest.fixture
def chat(api):
    """A seller with a shop and a buyer who opened a conversation with it."""
    seller, buyer = api.user(), api.user()
    shop = api.shop(seller, name="Satoshi Hardware")
    conv = open_conv(api, buyer, shop["id"])
    return seller, buyer, shop, conv


def test_open_is_get_or_create(api, chat):
    seller, buyer, shop, conv = chat
    assert conv["role"] == "buyer"
    assert conv["counterpart"] == {"id": seller.id, "username": seller.username}
    assert conv["buyer"]["id"] == buyer.id and conv["seller"]["id"] == seller.id
    assert conv["shop"] == {"id": shop["id"], "name": "Satoshi Hardware"}
    assert conv["product"] is None and conv["lastMessage"] is None and conv["lastMessageAt"] is None
    assert conv["unreadCount"] == 0 and conv["archived"] is False and conv["blocked"] is False
    again = open_conv(api, buyer, shop["id"], status=200)
    assert again["id"] == conv["id"]
    [ev] = api.events("conversation.started")
    assert ev.entity_id == conv["id"] and ev.shop_id == shop["id"] and ev.actor_user_id == buyer.id
    assert ev.payload == {"buyerId": buyer.id, "sellerId": seller.id}
    # Another buyer gets their own conversation with the same shop.
    other = open_conv(api, api.user(), shop["id"])
    assert other["id"] != conv["id"]
    assert api.count("conversations") == 2


def test_open_with_product(api, chat):
    seller, buyer, shop, general = chat
    product = api.product(seller, shop["id"], name="Cold wallet", price="80.00")
    conv = open_conv(api, buyer, shop["id"], product["id"])
    assert conv["id"] != general["id"]
    assert conv["product"] == {
        "id": product["id"],
        "name": "Cold wallet",
        "price": "80.00000000",
        "currency": "USDT",
    }
    assert open_conv(api, buyer, shop["id"], product["id"], status=200)["id"] == conv["id"]
    assert api.events("conversation.started")[-1].product_id == product["id"]
    # A product of another shop is refused.
    other_shop = api.shop(seller)
    err = error(
        api.client.post(
            URL, json={"shopId": other_shop["id"], "productId": product["id"]}, headers=buyer.headers
        ),
        422,
        "VALIDATION_ERROR",
    )
    assert err["details"][0]["field"] == "productId"
    error(api.client.post(URL, json={"shopId": shop["id"], "productId": 99999}, headers=buyer.headers), 422)


def test_open_errors(api, chat):
    seller, buyer, shop, _ = chat
    error(api.client.post(URL, json={"shopId": shop["id"]}), 401, "UNAUTHORIZED")
    error(api.client.post(URL, json={"shopId": shop["id"]}, headers=seller.headers), 422, "OWN_SHOP")
    error(api.client.post(URL, json={"shopId": 99999}, headers=buyer.headers), 404, "NOT_FOUND")
    for body in ({}, {"shopId": "1"}, {"shopId": shop["id"], "extra": True}, {"shopId": 0}):
        error(api.client.post(URL, json=body, headers=buyer.headers), 422, "VALIDATION_ERROR")
    assert api.count("conversations") == 1


def test_messages_counters_and_read(api, chat):
    seller, buyer, shop, conv = chat
    cid = conv["id"]
    m1 = send(api, buyer, cid, "Is the wallet in stock?")
    assert m1["senderId"] == buyer.id and m1["conversationId"] == cid and m1["isRead"] is False
    api.clock.advance(timedelta(minutes=1))
    send(api, buyer, cid, "  And do you ship to Lisbon?  ")
    # The seller has two unread, the buyer none.
    s_view = one(api, seller, cid)
    assert s_view["unreadCount"] == 2 and s_view["role"] == "seller"
    assert s_view["counterpart"]["id"] == buyer.id
    assert s_view["lastMessage"] == "And do you ship to Lisbon?"
    assert one(api, buyer, cid)["unreadCount"] == 0
    assert listing(api, seller)[0][0]["unreadCount"] == 2
    # The seller was notified once: when the conversation turned unread for them, not per message.
    notes = data(api.client.get("/api/notifications", headers=seller.headers))
    assert [n["type"] for n in notes] == ["new_message"]
    assert notes[0]["data"]["conversationId"] == cid and buyer.username in notes[0]["title"]
    assert notes[0]["data"]["messageId"] == m1["id"]
    sent = api.events("message.sent")
    assert len(sent) == 2 and sent[0].payload["recipientId"] == seller.id and sent[0].shop_id == shop["id"]

    # The seller replies: the buyer's counter goes up, the seller's stays.
    send(api, seller, cid, "Yes, and yes.")
    assert one(api, buyer, cid)["unreadCount"] == 1
    assert one(api, seller, cid)["unreadCount"] == 2

    # The seller reads: their counter goes to zero, the buyer's messages get read_at.
    read = data(api.client.put(f"{URL}/{cid}/read", headers=seller.headers))
    assert read["unreadCount"] == 0
    msgs = data(api.client.get(f"{URL}/{cid}/messages", headers=buyer.headers))
    by_sender = {(m["senderId"], m["isRead"]) for m in msgs}
    assert by_sender == {(buyer.id, True), (seller.id, False)}
    assert all(m["readAt"] for m in msgs if m["senderId"] == buyer.id)
    assert one(api, buyer, cid)["unreadCount"] == 1
    [ev] = api.events("conversation.read")
    assert ev.payload == {"userId": seller.id, "messagesRead": 2, "unreadBefore": 2}
    # Reading again changes nothing and emits nothing.
    data(api.client.put(f"{URL}/{cid}/read", headers=seller.headers))
    assert len(api.events("conversation.read")) == 1
    data(api.client.put(f"{URL}/{cid}/read", headers=buyer.headers))
    assert one(api, buyer, cid)["unreadCount"] == 0
    assert len(api.events("conversation.read")) == 2
    # Read, then a new message: the seller is notified again.
    m4 = send(api, buyer, cid, "One more thing")
    notes = data(api.client.get("/api/notifications", headers=seller.headers))
    assert [n["data"]["messageId"] for n in notes] == [m4["id"], m1["id"]]


def test_message_listing_newest_first_with_cursor(api, chat):
    _, buyer, _, conv = chat
    cid = conv["id"]
    ids = [send(api, buyer, cid, f"message {i}")["id"] for i in range(5)]
    resp = api.client.get(f"{URL}/{cid}/messages", headers=buyer.headers)
    assert [m["id"] for m in data(resp)] == ids[::-1]
    page = api.client.get(f"{URL}/{cid}/messages", params={"pageSize": 2}, headers=buyer.headers)
    assert [m["id"] for m in data(page)] == [ids[4], ids[3]]
    assert page.json()["meta"]["pagination"]["total"] == 5
    older = data(
        api.client.get(
            f"{URL}/{cid}/messages", params={"before": ids[3], "pageSize": 2}, headers=buyer.headers
        )
    )
    assert [m["id"] for m in older] == [ids[2], ids[1]]
    older = data(
        api.client.get(f"{URL}/{cid}/messages", params={"page": 2, "pageSize": 2}, headers=buyer.headers)
    )
    assert [m["id"] for m in older] == [ids[2], ids[1]]
    error(api.client.get(f"{URL}/{cid}/messages", params={"before": "x"}, headers=buyer.headers), 422)


def test_long_message_preview_is_truncated(api, chat):
    seller, buyer, _, conv = chat
    body = "word " * 800  # 4000 characters
    msg = send(api, buyer, conv["id"], body)
    assert msg["body"] == body.strip()
    preview = one(api, seller, conv["id"])["lastMessage"]
    assert len(preview) == 200 and preview.endswith("…")


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "   "},
        {"body": "x" * 4001},
        {"body": 42},
        {},
        {"body": "hi", "attachmentUrl": "http://x"},
    ],
)
def test_message_validation(api, chat, body):
    _, buyer, _, conv = chat
    error(
        api.client.post(f"{URL}/{conv['id']}/messages", json=body, headers=buyer.headers),
        422,
        "VALIDATION_ERROR",
    )
    assert api.count("messages") == 0
    assert one(api, buyer, conv["id"])["lastMessage"] is None


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("get", "/messages", None),
        ("post", "/messages", {"body": "hi"}),
        ("put", "/read", None),
        ("put", "/archive", None),
        ("put", "/unarchive", None),
        ("post", "/block", None),
        ("delete", "/block", None),
    ],
)
def test_authorization_matrix(api, chat, method, suffix, body):
    seller, buyer, _, conv = chat
    stranger = api.user()
    url = f"{URL}/{conv['id']}{suffix}"

    def call(headers: dict[str, str] | None = None, target: str = url) -> Any:
        return api.client.request(method.upper(), target, headers=headers or {}, json=body)

    error(call(), 401, "UNAUTHORIZED")
    error(call(stranger.headers), 404, "NOT_FOUND")
    error(call(buyer.headers, f"{URL}/99999{suffix}"), 404, "NOT_FOUND")
    before = api.event_count()
    assert call(seller.headers).status_code in (200, 201)
    assert call(buyer.headers).status_code in (200, 201)
    if method == "get":
        assert api.event_count() == before


def test_admin_can_read_but_not_act(api, chat):
    _, buyer, _, conv = chat
    admin = api.user("admin")
    send(api, buyer, conv["id"], "hi")
    view = one(api, admin, conv["id"])
    assert view["role"] == "observer" and view["counterpart"] is None and view["unreadCount"] == 0
    assert len(data(api.client.get(f"{URL}/{conv['id']}/messages", headers=admin.headers))) == 1
    error(api.client.post(f"{URL}/{conv['id']}/messages", json={"body": "x"}, headers=admin.headers), 403)
    error(api.client.put(f"{URL}/{conv['id']}/read", headers=admin.headers), 403)
    # Not in the admin's own list.
    assert listing(api, admin)[0] == []


def test_list_is_per_user_newest_activity_first(api):
    seller, buyer = api.user(), api.user()
    shops = [api.shop(seller, name=f"Shop {n}") for n in ("A", "B", "C")]
    convs = []
    for shop in shops:
        convs.append(open_conv(api, buyer, shop["id"]))
        api.clock.advance(timedelta(minutes=1))
    rows, page = listing(api, buyer)
    assert [r["id"] for r in rows] == [c["id"] for c in reversed(convs)]
    assert page["total"] == 3
    # A message moves a conversation to the top.
    send(api, seller, convs[0]["id"], "ping")
    rows, _ = listing(api, buyer)
    assert [r["id"] for r in rows] == [convs[0]["id"], convs[2]["id"], convs[1]["id"]]
    assert rows[0]["lastMessageAt"] is not None and rows[0]["unreadCount"] == 1
    rows, page = listing(api, buyer, pageSize=2, page=2)
    assert [r["id"] for r in rows] == [convs[1]["id"]] and page["pages"] == 2
    # The seller sees the same three, from their side; a stranger sees none.
    assert {r["role"] for r in listing(api, seller)[0]} == {"seller"}
    assert listing(api, api.user())[0] == []
    error(api.client.get(URL), 401, "UNAUTHORIZED")


def test_archive_is_per_side_and_a_new_message_unarchives(api, chat):
    seller, buyer, _, conv = chat
    cid = conv["id"]
    archived = data(api.client.put(f"{URL}/{cid}/archive", headers=buyer.headers))
    assert archived["archived"] is True
    assert listing(api, buyer)[0] == []
    assert [r["id"] for r in listing(api, buyer, archived="true")[0]] == [cid]
    # The seller's view is untouched.
    assert [r["id"] for r in listing(api, seller)[0]] == [cid]
    assert listing(api, seller, archived="true")[0] == []
    # Archiving twice is a no-op; one event.
    data(api.client.put(f"{URL}/{cid}/archive", headers=buyer.headers))
    [ev] = api.events("conversation.archived")
    assert ev.payload == {"userId": buyer.id} and ev.entity_id == cid

    # A message from the seller brings it back for the buyer.
    send(api, seller, cid, "Still interested?")
    assert [r["id"] for r in listing(api, buyer)[0]] == [cid]
    # Sending only un-archives the recipient's side, not the sender's own.
    data(api.client.put(f"{URL}/{cid}/archive", headers=seller.headers))
    send(api, seller, cid, "Last call")
    assert listing(api, seller)[0] == []
    assert [r["id"] for r in listing(api, buyer)[0]] == [cid]

    unarchived = data(api.client.put(f"{URL}/{cid}/unarchive", headers=seller.headers))
    assert unarchived["archived"] is False
    assert [r["id"] for r in listing(api, seller)[0]] == [cid]
    assert len(api.events("conversation.unarchived")) == 1
    error(api.client.get(URL, params={"archived": "maybe"}, headers=buyer.headers), 422)


def test_search(api):
    seller, buyer = api.user(), api.user()
    hw = api.shop(seller, name="Hardware Hut")
    books = api.shop(seller, name="Bookworm_Books")
    c_hw = open_conv(api, buyer, hw["id"])
    c_books = open_conv(api, buyer, books["id"])
    send(api, buyer, c_books["id"], "Do you have Mastering Bitcoin?")

    def ids(user: Actor, q: str) -> set[int]:
        return {r["id"] for r in listing(api, user, q=q)[0]}

    assert ids(buyer, "hardware") == {c_hw["id"]}  # shop name, any case
    assert ids(buyer, "MASTERING") == {c_books["id"]}  # message text
    assert ids(buyer, seller.username) == {c_hw["id"], c_books["id"]}  # counterpart
    assert ids(seller, buyer.username) == {c_hw["id"], c_books["id"]}
    # The caller's own name is not a match for their side.
    assert ids(buyer, buyer.username) == set()
    assert ids(buyer, "nothing like this") == set()
    # LIKE wildcards are literal.
    assert ids(buyer, "%") == set()
    assert ids(buyer, "m_b") == {c_books["id"]}
    assert ids(buyer, "k_B") == set()
    _, page = listing(api, buyer, q="hut")
    assert page["total"] == 1
    error(api.client.get(URL, params={"q": ""}, headers=buyer.headers), 422)


def test_search_by_product_name(api, chat):
    seller, buyer, shop, _ = chat
    product = api.product(seller, shop["id"], name="Trezor Model T")
    conv = open_conv(api, buyer, shop["id"], product["id"])
    assert {r["id"] for r in listing(api, buyer, q="trezor")[0]} == {conv["id"]}


def test_block_prevents_messages_until_unblocked(api, chat):
    seller, buyer, shop, conv = chat
    cid = conv["id"]
    send(api, buyer, cid, "first")
    out = data(api.client.post(f"{URL}/{cid}/block", headers=seller.headers))
    assert out == {"userId": buyer.id, "blocked": True}
    assert one(api, seller, cid)["blocked"] is True
    assert one(api, buyer, cid)["blocked"] is False
    # Idempotent: one row, one event.
    data(api.client.post(f"{URL}/{cid}/block", headers=seller.headers))
    assert api.count("user_blocks") == 1
    [ev] = api.events("user.blocked")
    assert ev.entity_id == buyer.id and ev.payload["blockerId"] == seller.id

    error(
        api.client.post(f"{URL}/{cid}/messages", json={"body": "hello?"}, headers=buyer.headers),
        403,
        "BLOCKED",
    )
    assert api.count("messages") == 1
    assert one(api, seller, cid)["unreadCount"] == 1
    # The blocked buyer cannot open a new conversation with any of the blocker's shops...
    other_shop = api.shop(seller)
    error(api.client.post(URL, json={"shopId": other_shop["id"]}, headers=buyer.headers), 403, "BLOCKED")
    # ...but the existing one is still theirs to read.
    assert open_conv(api, buyer, shop["id"], status=200)["id"] == cid
    assert len(data(api.client.get(f"{URL}/{cid}/messages", headers=buyer.headers))) == 1

    out = data(api.client.delete(f"{URL}/{cid}/block", headers=seller.headers))
    assert out == {"userId": buyer.id, "blocked": False}
    assert len(api.events("user.unblocked")) == 1
    data(api.client.delete(f"{URL}/{cid}/block", headers=seller.headers))  # idempotent
    assert len(api.events("user.unblocked")) == 1
    assert api.count("user_blocks") == 0
    send(api, buyer, cid, "back again")
    open_conv(api, buyer, other_shop["id"])


def test_buyer_can_block_seller(api, chat):
    seller, buyer, _, conv = chat
    data(api.client.post(f"{URL}/{conv['id']}/block", headers=buyer.headers))
    error(
        api.client.post(f"{URL}/{conv['id']}/messages", json={"body": "buy now"}, headers=seller.headers),
        403,
        "BLOCKED",
    )
    assert one(api, buyer, conv["id"])["unreadCount"] == 0
    assert data(api.client.get("/api/notifications", headers=buyer.headers)) == []


# --- concurrency, against a real server -------------------------------------------------------------


def test_concurrent_open_creates_one_conversation(api, server_url):
    seller, buyer = api.user(), api.user()
    shop = api.shop(seller)

    def opener(_: int) -> tuple[int, int]:
        with httpx.Client(base_url=server_url, timeout=30) as c:
            r = c.post(URL, json={"shopId": shop["id"]}, headers=buyer.headers)
            return r.status_code, r.json()["data"]["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(opener, range(8)))
    assert sorted(s for s, _ in results) == [200] * 7 + [201]
    assert len({cid for _, cid in results}) == 1
    assert api.count("conversations") == 1
    assert len(api.events("conversation.started")) == 1


def test_concurrent_messages_and_reads_keep_counters_exact(api, server_url):
    seller, buyer = api.user(), api.user()
    shop = api.shop(seller)
    cid = open_conv(api, buyer, shop["id"])["id"]

    def act(i: int) -> int:
        with httpx.Client(base_url=server_url, timeout=30) as c:
            if i % 4 == 3:  # the seller reads now and then while the buyer writes
                return c.put(f"{URL}/{cid}/read", headers=seller.headers).status_code
            who = seller if i % 4 == 2 else buyer
            return c.post(f"{URL}/{cid}/messages", json={"body": f"m{i}"}, headers=who.headers).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(act, range(40)))
    assert statuses.count(201) == 30 and statuses.count(200) == 10
    msgs = data(api.client.get(f"{URL}/{cid}/messages", params={"pageSize": 100}, headers=buyer.headers))
    assert len(msgs) == 30
    unread_from_buyer = sum(1 for m in msgs if m["senderId"] == buyer.id and not m["isRead"])
    assert one(api, seller, cid)["unreadCount"] == unread_from_buyer
    assert one(api, buyer, cid)["unreadCount"] == 10  # the buyer read nothing of the seller's ten
    assert len(api.events("message.sent")) == 30
