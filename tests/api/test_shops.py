import pytest

from tests.helpers import data, error


def test_create_shop_makes_owner_a_seller_and_emits_event(api):
    alice = api.user()
    shop = api.shop(alice, name="Alice's Gadgets", latitude=52.52, longitude=13.405, address="Berlin")
    assert shop["ownerId"] == alice.id and shop["followerCount"] == 0
    assert shop["latitude"] == pytest.approx(52.52)
    me = data(api.client.get("/api/auth/me", headers=alice.headers))
    assert me["role"] == "seller"
    [ev] = api.events("shop.created")
    assert ev.shop_id == shop["id"] and ev.actor_user_id == alice.id
    assert data(api.client.get(f"/api/shops/{shop['id']}"))["name"] == "Alice's Gadgets"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"name": "Ok shop", "latitude": 91, "longitude": 0},
        {"name": "Ok shop", "latitude": 10},
        {"name": "Ok shop", "owner": 5},
        {"name": "Ok shop", "deliveryAvailable": "yes"},
    ],
)
def test_create_shop_rejects_bad_input(api, body):
    alice = api.user()
    error(api.client.post("/api/shops", json=body, headers=alice.headers), 422, "VALIDATION_ERROR")
    assert api.count("shops") == 0


def test_create_shop_requires_login(api):
    error(api.client.post("/api/shops", json={"name": "Nope"}), 401, "UNAUTHORIZED")


def test_get_unknown_shop_is_404(api):
    error(api.client.get("/api/shops/999"), 404, "NOT_FOUND")


def test_patch_shop_owner_other_anonymous_admin(api):
    owner, other, admin = api.user(), api.user(), api.user("admin")
    shop = api.shop(owner)
    url = f"/api/shops/{shop['id']}"
    error(api.client.patch(url, json={"name": "Hijacked"}), 401)
    error(api.client.patch(url, json={"name": "Hijacked"}, headers=other.headers), 403, "FORBIDDEN")
    updated = data(
        api.client.patch(url, json={"name": "Renamed", "deliveryAvailable": False}, headers=owner.headers)
    )
    assert updated["name"] == "Renamed" and updated["deliveryAvailable"] is False
    data(api.client.patch(url, json={"description": "By admin"}, headers=admin.headers))
    events = api.events("shop.updated")
    assert [e.payload["changes"] for e in events] == [
        {"name": {"old": shop["name"], "new": "Renamed"}, "delivery_available": {"old": True, "new": False}},
        {"description": {"old": "", "new": "By admin"}},
    ]
    assert data(api.client.get(url))["name"] == "Renamed"
    error(api.client.patch("/api/shops/999", json={"name": "X y"}, headers=owner.headers), 404)


def test_patch_shop_with_nothing_or_half_location_is_422(api):
    owner = api.user()
    shop = api.shop(owner)
    error(api.client.patch(f"/api/shops/{shop['id']}", json={}, headers=owner.headers), 422)
    error(api.client.patch(f"/api/shops/{shop['id']}", json={"latitude": 1.0}, headers=owner.headers), 422)
    assert api.events("shop.updated") == []


def test_follow_toggles_counts_and_notifies_owner(api):
    owner, fan, fan2 = api.user(), api.user(), api.user()
    shop = api.shop(owner)
    url = f"/api/shops/{shop['id']}/follow"
    assert data(api.client.post(url, headers=fan.headers)) == {"following": True, "followerCount": 1}
    assert data(api.client.post(url, headers=fan2.headers)) == {"following": True, "followerCount": 2}
    assert data(api.client.post(url, headers=fan.headers)) == {"following": False, "followerCount": 1}
    assert data(api.client.get(f"/api/shops/{shop['id']}"))["followerCount"] == 1
    assert [
        e.event_type for e in api.events() if e.event_type.startswith("shop.") and "follow" in e.event_type
    ] == ["shop.followed", "shop.followed", "shop.unfollowed"]
    notes = [e for e in api.events("notification.created") if e.payload["type"] == "new_follower"]
    assert len(notes) == 2 and all(n.payload["userId"] == owner.id for n in notes)
    assert api.count("shop_followers") == 1


def test_follow_errors(api):
    owner, fan = api.user(), api.user()
    shop = api.shop(owner)
    error(api.client.post(f"/api/shops/{shop['id']}/follow"), 401)
    error(api.client.post("/api/shops/999/follow", headers=fan.headers), 404)
    error(
        api.client.post(f"/api/shops/{shop['id']}/follow", headers=owner.headers),
        422,
        "CANNOT_FOLLOW_OWN_SHOP",
    )
    assert api.count("shop_followers") == 0


def test_followers_list_is_the_owners(api):
    owner, fan, other, admin = api.user(), api.user(), api.user(), api.user("admin")
    shop = api.shop(owner)
    data(api.client.post(f"/api/shops/{shop['id']}/follow", headers=fan.headers))
    url = f"/api/shops/{shop['id']}/followers"
    resp = api.client.get(url, headers=owner.headers)
    rows = data(resp)
    assert [r["userId"] for r in rows] == [fan.id] and rows[0]["username"] == fan.username
    assert resp.json()["meta"]["pagination"] == {"page": 1, "pageSize": 20, "total": 1, "pages": 1}
    data(api.client.get(url, headers=admin.headers))
    error(api.client.get(url, headers=other.headers), 403)
    error(api.client.get(url), 401)
    error(api.client.get(url + "?pageSize=101", headers=owner.headers), 422)
