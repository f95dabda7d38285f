"""Calls through the HTTP API: the status machine, who may make which move, events, notifications,
the ring timeout (sweep, restart, answers that come too late), busy users and the call history."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.calls.service import expire_unanswered
from api.calls.tasks import run_missed_call_timer
from api.core.clock import ManualClock
from api.core.settings import Settings
from api.db.engine import Store
from api.main import create_app
from api.notifications.models import Notification
from tests.helpers import Actor, Api, data, error

URL = "/api/calls"
RING = 30.0


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The timer is off unless a test turns it on: sweeps then happen only when a test asks.
    return settings.model_copy(update={"call_sweep_seconds": 0, "call_ring_timeout_seconds": RING})


# --- helpers -------------------------------------------------------------------------------------


def initiate(api: Api, caller: Actor, receiver_id: int, call_type: str = "video", **extra: Any) -> Any:
    body = {"receiverId": receiver_id, "callType": call_type, **extra}
    return api.client.post(f"{URL}/initiate", json=body, headers=caller.headers)


def call(api: Api, caller: Actor, receiver: Actor, call_type: str = "video", **extra: Any) -> Any:
    return data(initiate(api, caller, receiver.id, call_type, **extra), 201)


def move(api: Api, actor: Actor | None, call_id: int, action: str) -> Any:
    return api.client.put(f"{URL}/{call_id}/{action}", headers=actor.headers if actor else {})


def get(api: Api, actor: Actor, call_id: int) -> Any:
    return api.client.get(f"{URL}/{call_id}", headers=actor.headers)


def history(api: Api, actor: Actor, **params: Any) -> tuple[Any, Any]:
    resp = api.client.get(f"{URL}/history", params=params, headers=actor.headers)
    return data(resp), resp.json()["meta"]["pagination"]


def notes(api: Api, user_id: int) -> list[Notification]:
    with api.store.read() as db:
        return list(
            db.execute(
                select(Notification)
                .where(Notification.user_id == user_id, Notification.type == "call")
                .order_by(Notification.id)
            ).scalars()
        )


def call_events(api: Api, call_id: int) -> list[tuple[str, Any]]:
    return [
        (e.event_type, e.payload) for e in api.events() if e.entity_type == "call" and e.entity_id == call_id
    ]


@pytest.fixture
def pair(api: Api) -> tuple[Actor, Actor]:
    return api.user(), api.user()


# --- initiate ------------------------------------------------------------------------------------


def test_initiate_rings_the_receiver(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver, "video")
    assert c["status"] == "ringing"
    assert c["caller"] == {"id": caller.id, "username": caller.username}
    assert c["receiver"] == {"id": receiver.id, "username": receiver.username}
    assert c["callType"] == "video" and c["conversationId"] is None
    assert c["duration"] is None and c["startedAt"] is None and c["endedAt"] is None
    assert c["createdAt"]
    # One event per state: initiated, then ringing once the receiver has been told.
    [(t1, p1), (t2, p2)] = call_events(api, c["id"])
    assert (t1, p1["from"], p1["to"]) == ("call.initiated", None, "initiated")
    assert (t2, p2["from"], p2["to"]) == ("call.ringing", "initiated", "ringing")
    assert p2 | {"from": None, "to": None} == {
        "callerId": caller.id,
        "receiverId": receiver.id,
        "conversationId": None,
        "callType": "video",
        "from": None,
        "to": None,
        "byUserId": caller.id,
        "duration": None,
    }
    assert all(e.actor_user_id == caller.id for e in api.events() if e.entity_type == "call")
    [note] = notes(api, receiver.id)
    assert note.title == f"Incoming video call from {caller.username}"
    assert note.data["callId"] == c["id"] and note.data["status"] == "ringing"
    assert notes(api, caller.id) == []
    # Both participants read it; nobody else learns it exists.
    assert data(get(api, caller, c["id"])) == c
    assert data(get(api, receiver, c["id"])) == c
    error(get(api, api.user(), c["id"]), 404, "NOT_FOUND")
    error(get(api, api.user("admin"), c["id"]), 404, "NOT_FOUND")
    error(get(api, caller, 999_999), 404, "NOT_FOUND")


def test_audio_call(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver, "audio")
    assert c["callType"] == "audio"
    assert notes(api, receiver.id)[0].title == f"Incoming audio call from {caller.username}"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"callType": "video"},
        {"receiverId": 1},
        {"receiverId": 1, "callType": "fax"},
        {"receiverId": "1", "callType": "video"},
        {"receiverId": 0, "callType": "video"},
        {"receiverId": 1, "callType": "video", "conversationId": 0},
        {"receiverId": 1, "callType": "video", "conversationId": "x"},
        {"receiverId": 1, "callType": "video", "extra": True},
    ],
)
def test_initiate_validation(api, pair, body):
    caller, _ = pair
    error(api.client.post(f"{URL}/initiate", json=body, headers=caller.headers), 422, "VALIDATION_ERROR")
    assert api.count("video_calls") == 0


def test_initiate_rules(api, pair):
    caller, _ = pair
    err = error(initiate(api, caller, caller.id), 422, "CANNOT_CALL_SELF")
    assert err["details"][0]["field"] == "receiverId"
    error(initiate(api, caller, 999_999), 404, "NOT_FOUND")
    assert api.count("video_calls") == 0 and not any(e.entity_type == "call" for e in api.events())


def test_initiate_unauthenticated(api, pair):
    _, receiver = pair
    resp = api.client.post(f"{URL}/initiate", json={"receiverId": receiver.id, "callType": "audio"})
    error(resp, 401, "UNAUTHORIZED")


def test_call_within_a_conversation(api):
    seller, buyer, stranger = api.user(), api.user(), api.user()
    shop = api.shop(seller)
    product = api.product(seller, shop["id"])
    conv = data(
        api.client.post(
            "/api/conversations",
            json={"shopId": shop["id"], "productId": product["id"]},
            headers=buyer.headers,
        ),
        201,
    )
    c = call(api, buyer, seller, "audio", conversationId=conv["id"])
    assert c["conversationId"] == conv["id"]
    ev = next(e for e in api.events("call.ringing") if e.entity_id == c["id"])
    assert ev.shop_id == shop["id"] and ev.product_id == product["id"]
    assert ev.payload["conversationId"] == conv["id"]
    data(move(api, seller, c["id"], "reject"))
    # Not a participant of the conversation: it is not revealed.
    error(initiate(api, stranger, seller.id, conversationId=conv["id"]), 404, "NOT_FOUND")
    # A participant calling someone outside the conversation.
    err = error(initiate(api, buyer, stranger.id, conversationId=conv["id"]), 422, "NOT_A_PARTICIPANT")
    assert err["details"][0]["field"] == "receiverId"
    error(initiate(api, buyer, seller.id, conversationId=999_999), 404, "NOT_FOUND")


def test_a_blocked_caller_is_refused(api):
    seller, buyer = api.user(), api.user()
    shop = api.shop(seller)
    conv = data(
        api.client.post("/api/conversations", json={"shopId": shop["id"]}, headers=buyer.headers), 201
    )
    data(api.client.post(f"/api/conversations/{conv['id']}/block", headers=seller.headers))
    error(initiate(api, buyer, seller.id), 403, "BLOCKED")
    error(initiate(api, buyer, seller.id, conversationId=conv["id"]), 403, "BLOCKED")
    assert api.count("video_calls") == 0
    # Blocking is one-way: the seller may still call the buyer.
    call(api, seller, buyer)
    data(api.client.delete(f"/api/conversations/{conv['id']}/block", headers=seller.headers))


def test_busy_users(api):
    a, b, c, d = (api.user() for _ in range(4))
    first = call(api, a, b)
    err = error(initiate(api, c, b.id), 409, "BUSY")
    assert err["details"] == {"userId": b.id}
    err = error(initiate(api, a, c.id), 409, "BUSY")  # the caller is still ringing someone
    assert err["details"] == {"userId": a.id}
    error(initiate(api, b, d.id), 409, "BUSY")  # ringing counts for the receiver too
    data(move(api, b, first["id"], "accept"))
    error(initiate(api, d, a.id), 409, "BUSY")  # and so does an active call
    data(move(api, a, first["id"], "end"))
    call(api, c, b)  # free again
    assert api.count("video_calls") == 2


def test_concurrent_calls_to_one_receiver_ring_once(api):
    receiver = api.user()
    callers = [api.user() for _ in range(4)]
    barrier = threading.Barrier(len(callers))
    codes: list[int] = []

    def ring(actor: Actor) -> None:
        barrier.wait()
        codes.append(initiate(api, actor, receiver.id).status_code)

    threads = [threading.Thread(target=ring, args=(a,)) for a in callers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201, 409, 409, 409]
    assert api.count("video_calls") == 1
    assert len(notes(api, receiver.id)) == 1


# --- the moves -----------------------------------------------------------------------------------


def test_accept_then_end_records_the_duration(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver)
    api.clock.advance(timedelta(seconds=5))
    active = data(move(api, receiver, c["id"], "accept"))
    assert active["status"] == "active" and active["startedAt"] and active["endedAt"] is None
    assert active["duration"] is None
    [note] = notes(api, caller.id)
    assert note.title == f"{receiver.username} answered your video call"
    api.clock.advance(timedelta(seconds=65))
    ended = data(move(api, caller, c["id"], "end"))
    assert ended["status"] == "ended" and ended["endedAt"] and ended["duration"] == 65
    assert data(get(api, receiver, c["id"])) == ended
    types = [t for t, _ in call_events(api, c["id"])]
    assert types == ["call.initiated", "call.ringing", "call.accepted", "call.ended"]
    _, accepted = call_events(api, c["id"])[2]
    assert (
        accepted["from"] == "ringing" and accepted["to"] == "active" and accepted["byUserId"] == receiver.id
    )
    _, end = call_events(api, c["id"])[3]
    assert end["from"] == "active" and end["duration"] == 65 and end["byUserId"] == caller.id
    # The other side hears that it ended.
    last = notes(api, receiver.id)[-1]
    assert last.title == f"{caller.username} ended the video call" and last.body == "Duration 1:05"


def test_the_receiver_may_end_too(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver, "audio")
    data(move(api, receiver, c["id"], "accept"))
    api.clock.advance(timedelta(minutes=14, seconds=2))  # within the access token's 15 minutes
    ended = data(move(api, receiver, c["id"], "end"))
    assert ended["duration"] == 842
    assert notes(api, caller.id)[-1].body == "Duration 14:02"


def test_reject(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver)
    rejected = data(move(api, receiver, c["id"], "reject"))
    assert rejected["status"] == "rejected" and rejected["duration"] == 0
    assert rejected["endedAt"] and rejected["startedAt"] is None
    assert [t for t, _ in call_events(api, c["id"])][-1] == "call.rejected"
    assert notes(api, caller.id)[-1].title == f"{receiver.username} declined your video call"


def test_hanging_up_before_an_answer(api, pair):
    caller, receiver = pair
    # The caller gives up: the receiver missed it.
    c = call(api, caller, receiver)
    cancelled = data(move(api, caller, c["id"], "end"))
    assert cancelled["status"] == "missed" and cancelled["duration"] == 0 and cancelled["endedAt"]
    t, payload = call_events(api, c["id"])[-1]
    assert t == "call.missed" and payload["reason"] == "cancelled" and payload["byUserId"] == caller.id
    assert notes(api, receiver.id)[-1].title == f"Missed video call from {caller.username}"
    # The receiver hangs up on a ringing call: that is a rejection.
    c2 = call(api, caller, receiver)
    assert data(move(api, receiver, c2["id"], "end"))["status"] == "rejected"


def test_who_may_make_which_move(api, pair):
    caller, receiver = pair
    stranger, admin = api.user(), api.user("admin")
    c = call(api, caller, receiver)
    error(move(api, caller, c["id"], "accept"), 403, "FORBIDDEN")
    error(move(api, caller, c["id"], "reject"), 403, "FORBIDDEN")
    for actor in (stranger, admin):
        for action in ("accept", "reject", "end"):
            error(move(api, actor, c["id"], action), 404, "NOT_FOUND")
    for action in ("accept", "reject", "end"):
        error(move(api, None, c["id"], action), 401, "UNAUTHORIZED")
        error(move(api, receiver, 999_999, action), 404, "NOT_FOUND")
    assert data(get(api, caller, c["id"]))["status"] == "ringing"
    assert [t for t, _ in call_events(api, c["id"])] == ["call.initiated", "call.ringing"]


@pytest.mark.parametrize(
    ("setup", "actor", "action", "current"),
    [
        (["accept"], "receiver", "accept", "active"),  # double accept
        (["accept"], "receiver", "reject", "active"),
        (["accept", "end"], "receiver", "accept", "ended"),  # accept after end
        (["accept", "end"], "caller", "end", "ended"),
        (["reject"], "receiver", "accept", "rejected"),
        (["reject"], "receiver", "reject", "rejected"),
        (["reject"], "caller", "end", "rejected"),
        (["cancel"], "receiver", "accept", "missed"),
        (["cancel"], "caller", "end", "missed"),
    ],
)
def test_invalid_moves_are_conflicts_and_change_nothing(api, pair, setup, actor, action, current):
    caller, receiver = pair
    c = call(api, caller, receiver)
    for step in setup:
        if step == "cancel":
            data(move(api, caller, c["id"], "end"))
        else:
            data(move(api, caller if step == "end" else receiver, c["id"], step))
    before = data(get(api, caller, c["id"]))
    events, note_count = len(api.events()), api.count("notifications")
    err = error(move(api, caller if actor == "caller" else receiver, c["id"], action), 409)
    assert err["code"] == "INVALID_STATE_TRANSITION"
    assert err["details"] == {"currentStatus": current, "action": action}
    assert data(get(api, caller, c["id"])) == before
    assert len(api.events()) == events and api.count("notifications") == note_count


def test_two_concurrent_accepts_exactly_one_wins(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver)
    barrier = threading.Barrier(3)
    results: list[Any] = []

    def act(actor: Actor, action: str) -> None:
        barrier.wait()
        results.append((action, move(api, actor, c["id"], action)))

    threads = [
        threading.Thread(target=act, args=(receiver, "accept")),
        threading.Thread(target=act, args=(receiver, "accept")),
        threading.Thread(target=act, args=(receiver, "reject")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for _, r in results) == [200, 409, 409]
    winner = next(a for a, r in results if r.status_code == 200)
    final = data(get(api, caller, c["id"]))
    assert final["status"] == ("active" if winner == "accept" else "rejected")
    moves = [t for t, _ in call_events(api, c["id"])][2:]
    assert moves == [f"call.{'accepted' if winner == 'accept' else 'rejected'}"]


# --- the ring timeout ----------------------------------------------------------------------------


def test_sweep_marks_unanswered_calls_missed(api, settings, pair):
    caller, receiver = pair
    other_caller, other_receiver = api.user(), api.user()
    talker, listener = api.user(), api.user()
    old = call(api, caller, receiver)
    api.clock.advance(timedelta(seconds=20))
    young = call(api, other_caller, other_receiver, "audio")
    answered = call(api, talker, listener)
    data(move(api, listener, answered["id"], "accept"))
    assert expire_unanswered(api.store, settings, api.clock.now()) == 0
    api.clock.advance(timedelta(seconds=11))  # old: 31 s, young: 11 s
    assert expire_unanswered(api.store, settings, api.clock.now()) == 1
    assert expire_unanswered(api.store, settings, api.clock.now()) == 0  # once only
    missed = data(get(api, caller, old["id"]))
    assert missed["status"] == "missed" and missed["duration"] == 0 and missed["endedAt"]
    t, payload = call_events(api, old["id"])[-1]
    assert t == "call.missed" and payload["reason"] == "no_answer" and payload["byUserId"] is None
    assert api.events("call.missed")[-1].actor_user_id is None
    assert notes(api, receiver.id)[-1].title == f"Missed video call from {caller.username}"
    assert data(get(api, other_caller, young["id"]))["status"] == "ringing"
    api.clock.advance(timedelta(minutes=10))
    assert expire_unanswered(api.store, settings, api.clock.now()) == 1  # an active call never expires
    assert data(get(api, other_caller, young["id"]))["status"] == "missed"
    assert data(get(api, talker, answered["id"]))["status"] == "active"


def test_an_answer_after_the_timeout_is_refused(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver)
    api.clock.advance(timedelta(seconds=RING + 1))
    # No sweep has run: the move itself finds the call overdue, marks it missed and refuses.
    err = error(move(api, receiver, c["id"], "accept"), 409, "INVALID_STATE_TRANSITION")
    assert err["details"] == {"currentStatus": "missed", "action": "accept"}
    assert data(get(api, caller, c["id"]))["status"] == "missed"
    assert [t for t, _ in call_events(api, c["id"])][-1] == "call.missed"
    assert notes(api, receiver.id)[-1].title.startswith("Missed video call")
    error(move(api, receiver, c["id"], "reject"), 409, "INVALID_STATE_TRANSITION")
    assert len(api.events("call.missed")) == 1


def test_an_overdue_call_does_not_keep_anyone_busy(api, pair):
    caller, receiver = pair
    c = call(api, caller, receiver)
    api.clock.advance(timedelta(seconds=RING + 1))
    fresh = call(api, api.user(), receiver)
    assert fresh["status"] == "ringing"
    assert data(get(api, caller, c["id"]))["status"] == "missed"


def _wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def make_client(settings: Settings, clock: ManualClock, store: Store) -> Iterator[Any]:
    """Builds apps on the test's store and clock, each with its own settings; closes them at the end."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Api:
        app = create_app(settings.model_copy(update=overrides), clock=clock, store=store)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Api(client, store, clock)

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def test_the_timer_marks_calls_missed(make_client):
    api = make_client(call_sweep_seconds=0.05)
    caller, receiver = api.user(), api.user()
    c = call(api, caller, receiver)
    time.sleep(0.3)
    assert data(get(api, caller, c["id"]))["status"] == "ringing"  # not yet due
    api.clock.advance(timedelta(seconds=RING + 1))
    _wait_for(lambda: data(get(api, caller, c["id"]))["status"] == "missed")
    assert len(api.events("call.missed")) == 1
    assert notes(api, receiver.id)[-1].title == f"Missed video call from {caller.username}"


def test_the_timer_survives_a_restart(make_client):
    # The first process rings the receiver and goes away before the timeout, its timer off.
    first = make_client(call_sweep_seconds=0)
    caller, receiver = first.user(), first.user()
    c = call(first, caller, receiver)
    first.client.__exit__(None, None, None)
    # Time passes while nothing runs; a new process starts on the same store.
    first.clock.advance(timedelta(seconds=RING + 5))
    second = make_client(call_sweep_seconds=0.05)
    _wait_for(lambda: data(get(second, caller, c["id"]))["status"] == "missed")
    [ev] = second.events("call.missed")
    assert ev.entity_id == c["id"] and ev.payload["reason"] == "no_answer"
    assert notes(second, receiver.id)[-1].title == f"Missed video call from {caller.username}"


def test_the_timer_is_off_at_zero_and_survives_errors(make_client):
    api = make_client(call_sweep_seconds=0)
    assert asyncio.run(asyncio.wait_for(run_missed_call_timer(api.client.app), 1)) is None

    class Broken:
        """A store whose every session fails: the loop must log and keep going."""

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("database away")

    app = api.client.app
    state = app.state
    real = state.store
    calls = 0
    real_settings = state.settings

    async def run() -> None:
        nonlocal calls
        state.settings = real_settings.model_copy(update={"call_sweep_seconds": 0.01})
        state.store = Broken()
        task = asyncio.create_task(run_missed_call_timer(app))
        await asyncio.sleep(0.2)
        assert not task.done()  # still looping after repeated failures
        state.store = real
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        calls += 1

    try:
        asyncio.run(run())
    finally:
        state.store, state.settings = real, real_settings
    assert calls == 1


# --- history -------------------------------------------------------------------------------------


def test_history_is_the_users_own_calls_newest_first(api):
    me, bob, carol, dave = (api.user() for _ in range(4))
    made = []
    for i, (caller, receiver, action) in enumerate(
        [
            (me, bob, "reject"),
            (carol, me, "accept"),
            (me, carol, "cancel"),
            (dave, me, "reject"),
            (me, dave, None),
        ]
    ):
        api.clock.advance(timedelta(seconds=10 + i))
        c = call(api, caller, receiver, "audio" if i % 2 else "video")
        if action == "accept":
            data(move(api, receiver, c["id"], "accept"))
            data(move(api, caller, c["id"], "end"))
        elif action == "cancel":
            data(move(api, caller, c["id"], "end"))
        elif action == "reject":
            data(move(api, receiver, c["id"], "reject"))
        made.append(c["id"])
    call(api, bob, carol)  # not mine

    items, page = history(api, me)
    assert [c["id"] for c in items] == made[::-1]
    assert page == {"page": 1, "pageSize": 20, "total": 5, "pages": 1}
    assert [c["status"] for c in items] == ["ringing", "rejected", "missed", "ended", "rejected"]
    items, page = history(api, me, page=2, pageSize=2)
    assert [c["id"] for c in items] == [made[2], made[1]]
    assert page == {"page": 2, "pageSize": 2, "total": 5, "pages": 3}
    items, page = history(api, me, status="rejected")
    assert [c["id"] for c in items] == [made[3], made[0]] and page["total"] == 2
    items, _ = history(api, me, status="ended")
    assert items[0]["caller"]["id"] == carol.id and items[0]["duration"] == 0
    # The others see only their own.
    assert [c["id"] for c in history(api, dave)[0]] == [made[4], made[3]]
    assert history(api, api.user())[1]["total"] == 0
    # Bad parameters and no token.
    for params in ({"status": "bogus"}, {"page": 0}, {"pageSize": 101}):
        error(api.client.get(f"{URL}/history", params=params, headers=me.headers), 422, "VALIDATION_ERROR")
    error(api.client.get(f"{URL}/history"), 401, "UNAUTHORIZED")
