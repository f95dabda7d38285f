"""In-app notifications: the list, reading, the unread count and per-type/channel preferences."""

from typing import Any

import pytest

from tests.helpers import Actor, Api, data, error

TYPES = ["order_update", "new_message", "new_follower", "price_alert", "call", "system"]
CHANNELS = ["in_app", "email", "webhook", "telegram"]


def follow(api: Api, user: Actor, shop_id: int) -> Any:
    return data(api.client.post(f"/api/shops/{shop_id}/follow", headers=user.headers))


def notifications(api: Api, user: Actor, **params: Any) -> tuple[Any, Any]:
    resp = api.client.get("/api/notifications", params=params, headers=user.headers)
    return data(resp), resp.json()["meta"]["pagination"]


def unread(api: Api, user: Actor) -> Any:
    return data(api.client.get("/api/notifications/unread-count", headers=user.headers))["unreadCount"]


@pytest.fixture
def owner_with_followers(api):
    """A shop owner with three new_follower notifications (oldest first in `fans`)."""
    owner = api.user()
    shop = api.shop(owner)
    fans = [api.user() for _ in range(3)]
    for fan in fans:
        follow(api, fan, shop["id"])
    return owner, shop, fans


def test_follow_notifies_owner_newest_first(api, owner_with_followers):
    owner, shop, fans = owner_with_followers
    rows, page = notifications(api, owner)
    assert page == {"page": 1, "pageSize": 20, "total": 3, "pages": 1}
    assert [r["type"] for r in rows] == ["new_follower"] * 3
    assert [r["data"]["followerId"] for r in rows] == [f.id for f in reversed(fans)]
    first = rows[0]
    assert first["title"] == "New follower" and fans[-1].username in first["body"]
    assert first["isRead"] is False and first["readAt"] is None and first["data"]["shopId"] == shop["id"]
    assert unread(api, owner) == 3
    # Nobody else sees them.
    assert notifications(api, fans[0])[0] == []
    assert unread(api, fans[0]) == 0
    assert len(api.events("notification.created")) == 3


def test_pagination_and_filters(api, owner_with_followers):
    owner, _, _ = owner_with_followers
    rows, page = notifications(api, owner, page=2, pageSize=2)
    assert len(rows) == 1 and page == {"page": 2, "pageSize": 2, "total": 3, "pages": 2}
    assert notifications(api, owner, type="new_follower")[1]["total"] == 3
    assert notifications(api, owner, type="price_alert")[0] == []
    error(
        api.client.get("/api/notifications", params={"type": "bogus"}, headers=owner.headers),
        422,
        "VALIDATION_ERROR",
    )
    error(api.client.get("/api/notifications", params={"pageSize": 500}, headers=owner.headers), 422)

    newest = notifications(api, owner)[0][0]
    data(api.client.put(f"/api/notifications/{newest['id']}/read", headers=owner.headers))
    assert [r["id"] for r in notifications(api, owner, unread="true")[0]] == [
        r["id"] for r in notifications(api, owner)[0][1:]
    ]
    assert [r["id"] for r in notifications(api, owner, unread="false")[0]] == [newest["id"]]


def test_read_one_is_idempotent_and_owner_only(api, owner_with_followers):
    owner, _, fans = owner_with_followers
    note = notifications(api, owner)[0][0]
    url = f"/api/notifications/{note['id']}/read"
    error(api.client.put(url), 401, "UNAUTHORIZED")
    error(api.client.put(url, headers=fans[0].headers), 404, "NOT_FOUND")
    error(api.client.put("/api/notifications/99999/read", headers=owner.headers), 404, "NOT_FOUND")
    assert api.events("notification.read") == []

    read = data(api.client.put(url, headers=owner.headers))
    assert read["isRead"] is True and read["readAt"] is not None
    assert unread(api, owner) == 2
    again = data(api.client.put(url, headers=owner.headers))
    assert again["readAt"] == read["readAt"]
    [ev] = api.events("notification.read")
    assert ev.entity_id == note["id"] and ev.actor_user_id == owner.id
    assert unread(api, owner) == 2


def test_read_all_marks_only_own_and_emits_count(api, owner_with_followers):
    owner, shop, fans = owner_with_followers
    # A notification of someone else stays unread.
    other_shop = api.shop(fans[0])
    follow(api, fans[1], other_shop["id"])
    assert unread(api, fans[0]) == 1

    out = data(api.client.put("/api/notifications/read-all", headers=owner.headers))
    assert out == {"markedRead": 3, "unreadCount": 0}
    assert unread(api, owner) == 0
    assert all(r["isRead"] and r["readAt"] for r in notifications(api, owner)[0])
    assert unread(api, fans[0]) == 1
    out = data(api.client.put("/api/notifications/read-all", headers=owner.headers))
    assert out == {"markedRead": 0, "unreadCount": 0}
    assert [e.payload["count"] for e in api.events("notification.read")] == [3, 0]
    # New notifications arrive unread after a read-all.
    follow(api, fans[0], shop["id"])  # unfollow
    follow(api, fans[0], shop["id"])  # follow again
    assert unread(api, owner) == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/notifications"),
        ("get", "/api/notifications/unread-count"),
        ("put", "/api/notifications/read-all"),
        ("get", "/api/notifications/preferences"),
        ("put", "/api/notifications/preferences"),
    ],
)
def test_anonymous_is_401(api, method, path):
    kw = (
        {"json": {"preferences": [{"type": "system", "channel": "email", "enabled": False}]}}
        if method == "put" and path.endswith("preferences")
        else {}
    )
    error(getattr(api.client, method)(path, **kw), 401, "UNAUTHORIZED")


def test_preferences_default_on_for_every_type_and_channel(api):
    alice = api.user()
    prefs = data(api.client.get("/api/notifications/preferences", headers=alice.headers))
    assert len(prefs) == len(TYPES) * len(CHANNELS)
    assert {(p["type"], p["channel"]) for p in prefs} == {(t, c) for t in TYPES for c in CHANNELS}
    assert all(p["enabled"] for p in prefs)


def test_preferences_upsert_and_event(api):
    alice, bob = api.user(), api.user()
    url = "/api/notifications/preferences"
    body = {
        "preferences": [
            {"type": "new_follower", "channel": "in_app", "enabled": False},
            {"type": "price_alert", "channel": "email", "enabled": False},
        ]
    }
    prefs = data(api.client.put(url, json=body, headers=alice.headers))
    off = {(p["type"], p["channel"]) for p in prefs if not p["enabled"]}
    assert off == {("new_follower", "in_app"), ("price_alert", "email")}
    [ev] = api.events("notification.preferences_updated")
    assert ev.entity_id == alice.id
    assert {(c["type"], c["channel"], c["old"], c["new"]) for c in ev.payload["changes"]} == {
        ("new_follower", "in_app", True, False),
        ("price_alert", "email", True, False),
    }

    # Saving the same values again changes nothing and emits nothing; turning one back on updates it.
    data(api.client.put(url, json=body, headers=alice.headers))
    assert len(api.events("notification.preferences_updated")) == 1
    body = {"preferences": [{"type": "price_alert", "channel": "email", "enabled": True}]}
    prefs = data(api.client.put(url, json=body, headers=alice.headers))
    assert {(p["type"], p["channel"]) for p in prefs if not p["enabled"]} == {("new_follower", "in_app")}
    assert len(api.events("notification.preferences_updated")) == 2
    assert api.count("notification_preferences") == 2
    # Another user's preferences are their own.
    assert all(p["enabled"] for p in data(api.client.get(url, headers=bob.headers)))


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"preferences": []},
        {"preferences": [{"type": "bogus", "channel": "in_app", "enabled": False}]},
        {"preferences": [{"type": "system", "channel": "pigeon", "enabled": False}]},
        {"preferences": [{"type": "system", "channel": "in_app", "enabled": "no"}]},
        {"preferences": [{"type": "system", "channel": "in_app"}]},
        {"preferences": [{"type": "system", "channel": "in_app", "enabled": False, "extra": 1}]},
        {"preferences": [{"type": "system", "channel": "in_app", "enabled": False}], "extra": 1},
        {
            "preferences": [
                {"type": "system", "channel": "in_app", "enabled": False},
                {"type": "system", "channel": "in_app", "enabled": True},
            ]
        },
    ],
)
def test_preferences_validation(api, body):
    alice = api.user()
    error(
        api.client.put("/api/notifications/preferences", json=body, headers=alice.headers),
        422,
        "VALIDATION_ERROR",
    )
    assert api.count("notification_preferences") == 0
    assert api.events("notification.preferences_updated") == []


def test_in_app_off_stops_notifications_of_that_type(api):
    owner, fan1, fan2 = api.user(), api.user(), api.user()
    shop = api.shop(owner)
    url = "/api/notifications/preferences"
    off = {"preferences": [{"type": "new_follower", "channel": "in_app", "enabled": False}]}
    data(api.client.put(url, json=off, headers=owner.headers))
    assert follow(api, fan1, shop["id"])["following"] is True
    assert notifications(api, owner)[0] == []
    assert unread(api, owner) == 0
    assert api.events("notification.created") == []
    # Another channel off does not matter for in-app; turning in_app back on resumes.
    on = {
        "preferences": [
            {"type": "new_follower", "channel": "in_app", "enabled": True},
            {"type": "new_follower", "channel": "email", "enabled": False},
        ]
    }
    data(api.client.put(url, json=on, headers=owner.headers))
    follow(api, fan2, shop["id"])
    rows = notifications(api, owner)[0]
    assert [r["data"]["followerId"] for r in rows] == [fan2.id]
