"""/ws: authentication, multi-device delivery, live chat, typing, receipts, limits and topics."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.helpers import Actor, Api, data, error


def connect(api: Api, user: Actor, **headers: str) -> Any:
    return api.client.websocket_connect(f"/ws?token={user.access_token}", headers=dict(headers))


def welcome(ws: WebSocketTestSession) -> dict[str, Any]:
    frame: dict[str, Any] = ws.receive_json()
    assert frame["type"] == "welcome", frame
    return frame


def drain(ws: WebSocketTestSession, barrier: str = "sync") -> list[dict[str, Any]]:
    """Every frame that arrives before the ack of a ping sent now (pushes are queued in order)."""
    ws.send_json({"type": "ping", "id": barrier})
    out: list[dict[str, Any]] = []
    while True:
        frame = ws.receive_json()
        if frame.get("type") == "ack" and frame.get("id") == barrier:
            return out
        out.append(frame)


def of_type(frames: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == kind]


def refused(ws_cm: Any) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as exc, ws_cm as ws:
        ws.receive_json()
    return exc.value


@pytest.fixture
def chat(api: Api) -> tuple[Actor, Actor, dict[str, Any]]:
    buyer, seller = api.user(), api.user()
    shop = api.shop(seller)
    opened = api.client.post("/api/conversations", json={"shopId": shop["id"]}, headers=buyer.headers)
    return buyer, seller, data(opened, 201)


def post(api: Api, user: Actor, conv: dict[str, Any], body: str, status: int = 201) -> Any:
    resp = api.client.post(
        f"/api/conversations/{conv['id']}/messages", json={"body": body}, headers=user.headers
    )
    return data(resp, status) if status < 400 else error(resp, status)


# --- authentication and origin --------------------------------------------------------------------


def test_socket_without_token_is_closed_with_policy_violation(api: Api) -> None:
    assert refused(api.client.websocket_connect("/ws")).code == 1008


def test_socket_with_forged_or_expired_token_is_closed(api: Api) -> None:
    user = api.user()
    assert refused(api.client.websocket_connect("/ws?token=not-a-jwt")).code == 1008
    api.clock.advance(timedelta(minutes=16))  # access tokens live 15 minutes
    closed = refused(connect(api, user))
    assert closed.code == 1008
    assert closed.reason == "token_expired"


def test_socket_of_a_logged_out_session_is_refused(api: Api) -> None:
    user = api.user()
    data(api.client.post("/api/auth/logout", json={"refreshToken": user.refresh_token}, headers=user.headers))
    assert refused(connect(api, user)).code == 1008


def test_bad_origin_is_refused_and_allowed_origins_connect(api: Api) -> None:
    user = api.user()
    assert refused(connect(api, user, origin="https://evil.example")).code == 1008
    with connect(api, user, origin="http://testserver") as ws:  # same origin as the API
        assert welcome(ws)["data"]["userId"] == user.id
    with connect(api, user) as ws:  # no Origin: not a browser
        welcome(ws)


def test_token_can_come_as_a_subprotocol(api: Api) -> None:
    user = api.user()
    with api.client.websocket_connect("/ws", subprotocols=["bearer", user.access_token]) as ws:
        assert welcome(ws)["data"]["userId"] == user.id
        assert ws.accepted_subprotocol == "bearer"


def test_socket_closes_when_its_token_expires_unless_renewed(api: Api) -> None:
    user = api.user()
    with connect(api, user) as ws:
        welcome(ws)
        api.clock.advance(timedelta(minutes=10))
        fresh = api.login(user.email)["accessToken"]
        ws.send_json({"type": "auth", "id": "renew", "token": fresh})
        ack = ws.receive_json()
        assert ack["type"] == "ack" and ack["data"]["expiresAt"] > 0
        api.clock.advance(timedelta(minutes=10))  # past the first token, within the second
        assert drain(ws) == []
        api.clock.advance(timedelta(minutes=6))
        ws.send_json({"type": "ping", "id": "late"})
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
        assert exc.value.code == 1008 and exc.value.reason == "token expired"


# --- live chat ------------------------------------------------------------------------------------


def test_rest_message_reaches_every_device_of_both_sides_live(api: Api, chat: Any) -> None:
    buyer, seller, conv = chat
    with connect(api, seller) as phone, connect(api, seller) as laptop, connect(api, buyer) as buyer_ws:
        for ws in (phone, laptop, buyer_ws):
            welcome(ws)
        sent = post(api, buyer, conv, "is it new?")
        for ws in (phone, laptop):
            [frame] = of_type(drain(ws), "new_message")
            assert frame["data"]["message"]["id"] == sent["id"]
            assert frame["data"]["message"]["body"] == "is it new?"
            assert frame["data"]["unread"][str(seller.id)] == 1
            assert frame["meta"]["timestamp"].endswith("Z")
        # The sender's own devices hear of it too (another tab shows the sent message).
        assert len(of_type(drain(buyer_ws), "new_message")) == 1


def test_message_sent_over_the_socket_is_stored_with_its_event(api: Api, chat: Any) -> None:
    buyer, seller, conv = chat
    with connect(api, buyer) as bws, connect(api, seller) as sws:
        welcome(bws), welcome(sws)
        bws.send_json({"type": "send_message", "id": 7, "conversationId": conv["id"], "body": "still there?"})
        frames = drain(bws)
        [ack] = [f for f in frames if f["type"] == "ack" and f["id"] == 7]
        message_id = ack["data"]["message"]["id"]
        [pushed] = of_type(drain(sws), "new_message")
        assert pushed["data"]["message"]["id"] == message_id
    stored = data(api.client.get(f"/api/conversations/{conv['id']}/messages", headers=seller.headers))
    assert [m["body"] for m in stored] == ["still there?"]
    [event] = api.events("message.sent")
    assert event.entity_id == message_id and event.actor_user_id == buyer.id
    assert event.request_id and event.request_id.startswith("ws-")
    summary = data(api.client.get(f"/api/conversations/{conv['id']}", headers=seller.headers))
    assert summary["unreadCount"] == 1


def test_outsider_cannot_send_or_type_into_a_conversation(api: Api, chat: Any) -> None:
    _, seller, conv = chat
    outsider = api.user()
    with connect(api, outsider) as ows, connect(api, seller) as sws:
        welcome(ows), welcome(sws)
        ows.send_json({"type": "send_message", "id": "x", "conversationId": conv["id"], "body": "spam"})
        ows.send_json({"type": "typing", "id": "y", "conversationId": conv["id"]})
        frames = drain(ows)
        errors = {f["id"]: f["error"] for f in frames if f["type"] == "error"}
        assert errors["x"]["code"] == "NOT_FOUND" and errors["y"]["code"] == "NOT_FOUND"
        assert drain(sws) == []
    assert api.count("messages") == 0


def test_blocked_user_cannot_message_or_type(api: Api, chat: Any) -> None:
    buyer, seller, conv = chat
    data(api.client.post(f"/api/conversations/{conv['id']}/block", headers=seller.headers))
    with connect(api, buyer) as bws, connect(api, seller) as sws:
        welcome(bws), welcome(sws)
        bws.send_json({"type": "send_message", "id": 1, "conversationId": conv["id"], "body": "hey"})
        bws.send_json({"type": "typing", "id": 2, "conversationId": conv["id"]})
        codes = {f["id"]: f["error"]["code"] for f in drain(bws) if f["type"] == "error"}
        assert codes == {1: "BLOCKED", 2: "BLOCKED"}
        assert drain(sws) == []


def test_typing_reaches_only_the_other_participant(api: Api, chat: Any) -> None:
    buyer, seller, conv = chat
    bystander = api.user()
    with connect(api, buyer) as bws, connect(api, seller) as sws, connect(api, bystander) as xws:
        welcome(bws), welcome(sws), welcome(xws)
        bws.send_json({"type": "typing", "conversationId": conv["id"], "isTyping": True})
        assert of_type(drain(bws), "typing") == []  # the ack of this ping: the typing frame was handled
        [typing] = of_type(drain(sws), "typing")
        assert typing["data"] == {"conversationId": conv["id"], "userId": buyer.id, "isTyping": True}
        assert drain(xws) == []
    assert api.events("message.sent") == []  # typing writes nothing


def test_read_receipt_and_counter_update_live(api: Api, chat: Any) -> None:
    buyer, seller, conv = chat
    for body in ("one", "two"):
        post(api, buyer, conv, body)
    with connect(api, buyer) as bws, connect(api, seller) as sws:
        welcome(bws), welcome(sws)
        sws.send_json({"type": "mark_read", "id": "r", "conversationId": conv["id"]})
        frames = drain(sws)
        [ack] = [f for f in frames if f["type"] == "ack"]
        assert ack["data"] == {"conversationId": conv["id"], "messagesRead": 2}
        assert of_type(frames, "read_receipt")[0]["data"]["unread"] == 0  # the reader's other devices
        [receipt] = of_type(drain(bws), "read_receipt")
        assert receipt["data"]["readerId"] == seller.id and receipt["data"]["messagesRead"] == 2
    summary = data(api.client.get(f"/api/conversations/{conv['id']}", headers=seller.headers))
    assert summary["unreadCount"] == 0


def test_rolled_back_message_is_never_pushed(api: Api, chat: Any) -> None:
    buyer, seller, conv = chat
    with connect(api, seller) as sws:
        welcome(sws)
        post(api, buyer, conv, "x" * 5000, 422)
        assert of_type(drain(sws), "new_message") == []


# --- frames, limits ---------------------------------------------------------------------------------


def test_bad_frames_get_error_frames_in_the_seed_format(api: Api) -> None:
    user = api.user()
    with connect(api, user) as ws:
        welcome(ws)
        ws.send_text("not json")
        ws.send_json({"type": "no_such_thing", "id": "u"})
        ws.send_json({"type": "send_message", "id": "v", "conversationId": "abc", "body": ""})
        frames = drain(ws)
        assert [f["type"] for f in frames] == ["error", "error", "error"]
        assert all(set(f["error"]) == {"code", "message", "details"} for f in frames)
        assert frames[1]["id"] == "u" and frames[1]["error"]["code"] == "VALIDATION_ERROR"
        assert {d["field"] for d in frames[2]["error"]["details"]} >= {"conversationId", "body"}


def test_oversized_frame_closes_the_socket(api: Api) -> None:
    user = api.user()
    with connect(api, user) as ws:
        welcome(ws)
        ws.send_text('{"type": "ping", "pad": "' + "x" * 70_000 + '"}')
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
        assert exc.value.code == 1009


def test_flood_closes_only_the_flooding_socket(api: Api) -> None:
    flooder, calm = api.user(), api.user()
    with connect(api, flooder) as fws, connect(api, calm) as cws:
        welcome(fws), welcome(cws)
        for i in range(200):  # the default budget is a burst of 60 at 20 per second
            fws.send_json({"type": "ping", "id": i})
        codes: list[str] = []

        def read_until_closed() -> None:
            while True:
                codes.append(fws.receive_json()["type"])

        with pytest.raises(WebSocketDisconnect) as exc:
            read_until_closed()
        assert exc.value.code == 1008 and exc.value.reason == "rate limit exceeded"
        assert 50 <= codes.count("ack") < 200
        assert drain(cws) == []  # the other socket still answers
    health = data(api.client.get("/health"))
    assert health["realtime"]["connections"] == 0


# --- topics: new_activity and metrics_update ------------------------------------------------------


def test_activity_feed_is_for_staff_and_for_owners_of_their_shop(api: Api) -> None:
    admin, owner, buyer = api.user("admin"), api.user(), api.user()
    shop = api.shop(owner)
    other_shop = api.shop(api.user())
    with connect(api, buyer) as bws, connect(api, owner) as ows, connect(api, admin) as aws:
        welcome(bws), welcome(ows), welcome(aws)
        bws.send_json({"type": "subscribe", "id": 1, "topic": "activity"})
        ows.send_json({"type": "subscribe", "id": 2, "topic": f"shop:{other_shop['id']}:activity"})
        ows.send_json({"type": "subscribe", "id": 3, "topic": f"shop:{shop['id']}:activity"})
        aws.send_json({"type": "subscribe", "id": 4, "topic": "activity"})
        assert drain(bws)[0]["error"]["code"] == "FORBIDDEN"
        first, second = drain(ows)
        assert first["error"]["code"] == "FORBIDDEN" and second["data"] == {
            "topic": f"shop:{shop['id']}:activity",
            "subscribed": True,
        }
        drain(aws)
        data(api.client.post(f"/api/shops/{shop['id']}/follow", headers=buyer.headers))
        data(api.client.post(f"/api/shops/{other_shop['id']}/follow", headers=buyer.headers))

        def activity(ws: WebSocketTestSession, want: int) -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            while len([i for i in items if i["eventType"] == "shop.followed"]) < want:
                frame = ws.receive_json()  # flushed every half second
                if frame["type"] == "new_activity":
                    items += frame["data"]["items"]
            return items

        admin_items = activity(aws, 2)
        assert {i["shopId"] for i in admin_items if i["eventType"] == "shop.followed"} == {
            shop["id"],
            other_shop["id"],
        }
        owner_items = activity(ows, 1)
        assert {i["shopId"] for i in owner_items} == {shop["id"]}


def test_metrics_update_reaches_subscribed_staff(api: Api, settings: Any, clock: Any, store: Any) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app

    fast = create_app(settings.model_copy(update={"metrics_update_seconds": 0.2}), clock=clock, store=store)
    with TestClient(fast) as client:
        local = Api(client, store, clock)
        analyst = local.user("analyst")
        buyer, seller = local.user(), local.user()
        shop = local.shop(seller)
        data(client.post("/api/conversations", json={"shopId": shop["id"]}, headers=buyer.headers), 201)
        with client.websocket_connect(f"/ws?token={analyst.access_token}") as ws:
            welcome(ws)
            ws.send_json({"type": "subscribe", "topic": "metrics"})
            while (frame := ws.receive_json())["type"] != "metrics_update":
                pass
        metrics = frame["data"]
        assert metrics["connections"] >= 1 and metrics["onlineUsers"] >= 1
        signups = len(local.events("user.registered"))
        assert signups >= 3 and metrics["signupsLastMinute"] == signups
        assert metrics["eventsLastMinute"] == local.event_count()


def test_health_reports_in_process_delivery_without_redis(api: Api) -> None:
    user = api.user()
    with connect(api, user) as ws:
        welcome(ws)
        realtime = data(api.client.get("/health"))["realtime"]
    assert realtime["mode"] == "in-process" and realtime["fanout"] == "not_configured"
    assert realtime["connections"] == 1 and realtime["users"] == 1
    assert "this process" in realtime["message"]


def test_group_commit_keeps_each_send_atomic(api: Api, chat: Any, app: Any) -> None:
    """Sends of one batch share a transaction; one that fails, even after writing, leaves nothing."""
    from api.conversations.live import _send
    from api.core.deps import Principal
    from api.core.errors import NotFound
    from api.realtime.dispatch import GroupCommit, WsContext

    buyer, seller, conv = chat
    outsider = api.user()

    def ctx(actor: Actor) -> WsContext:
        principal = Principal(user_id=actor.id, role=actor.role, session_id=actor.session_id)
        return WsContext(principal=principal, app=app, connection_id="t", bus=app.state.hub, reply=None)  # type: ignore[arg-type]

    def fails_after_writing(uow: Any, principal: Any, cid: int, body: str) -> None:
        _send(uow, principal, cid, body)
        raise RuntimeError("crash after the message was written")

    with connect(api, seller) as sws:
        welcome(sws)
        outcomes = GroupCommit(app)._run(
            [
                (ctx(buyer), _send, (conv["id"], "one"), None),
                (ctx(outsider), _send, (conv["id"], "intruder"), None),
                (ctx(buyer), fails_after_writing, (conv["id"], "lost"), None),
                (ctx(buyer), _send, (conv["id"], "two"), None),
            ]
        )
        assert [ok for ok, _ in outcomes] == [True, False, False, True]
        assert isinstance(outcomes[1][1], NotFound) and isinstance(outcomes[2][1], RuntimeError)
        frames = of_type(drain(sws), "new_message")
        assert [f["data"]["message"]["body"] for f in frames] == ["one", "two"]
    stored = data(api.client.get(f"/api/conversations/{conv['id']}/messages", headers=seller.headers))
    assert sorted(m["body"] for m in stored) == ["one", "two"]
    assert len(api.events("message.sent")) == 2
    assert (
        data(api.client.get(f"/api/conversations/{conv['id']}", headers=seller.headers))["unreadCount"] == 2
    )
