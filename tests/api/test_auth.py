from datetime import timedelta

import jwt
import pytest

from tests.conftest import TEST_SECRET
from tests.helpers import PASSWORD, data, error


def test_register_returns_user_without_secrets_and_emits_event(api):
    resp = api.client.post(
        "/api/auth/register", json={"email": "Ann@Example.com", "password": PASSWORD, "username": "ann"}
    )
    user = data(resp, 201)
    assert user["email"] == "ann@example.com"
    assert user["role"] == "buyer"
    assert "password" not in resp.text and "passwordHash" not in user
    [ev] = api.events("user.registered")
    assert ev.entity_id == user["id"] and ev.actor_user_id == user["id"]
    assert ev.occurred_at.tzinfo is not None


def test_password_is_stored_as_argon2id(api, store):
    user = api.register()
    with store.read() as db:
        from api.auth.models import User

        stored = db.get(User, user["id"])
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "username": "bob"}, "email"),
        ({"email": "b@example.com", "password": "short", "username": "bob"}, "password"),
        ({"email": "b@example.com", "password": PASSWORD, "username": "b"}, "username"),
        ({"email": "b@example.com", "password": PASSWORD, "username": "bob", "isAdmin": True}, "isAdmin"),
        ({"email": "b@example.com", "password": PASSWORD, "username": "bob", "role": "admin"}, "role"),
        ({"email": "b@example.com", "password": PASSWORD}, "username"),
    ],
)
def test_register_rejects_bad_input_with_field_details(api, body, field):
    err = error(api.client.post("/api/auth/register", json=body), 422, "VALIDATION_ERROR")
    assert field in [d["field"] for d in err["details"]]
    assert api.count("users") == 0 and api.event_count() == 0


def test_register_duplicate_email_is_409(api):
    api.register(email="dup@example.com")
    err = error(
        api.client.post(
            "/api/auth/register", json={"email": "DUP@example.com", "password": PASSWORD, "username": "other"}
        ),
        409,
        "ALREADY_EXISTS",
    )
    assert err["details"] == {"field": "email"}
    assert api.count("users") == 1


def test_login_returns_tokens_and_creates_session_with_device_and_ip(api):
    user = api.register()
    tokens = api.login(user["email"], deviceInfo={"platform": "ios", "app": "mini-app"})
    assert tokens["tokenType"] == "bearer"
    assert tokens["expiresIn"] == 15 * 60
    claims = jwt.decode(tokens["accessToken"], TEST_SECRET, algorithms=["HS256"])
    assert {"exp", "iat", "sub", "sid"} <= set(claims)
    sessions = data(
        api.client.get("/api/sessions", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
    )
    assert len(sessions) == 1
    s = sessions[0]
    assert s["deviceInfo"]["platform"] == "ios" and s["ipAddress"] == "testclient"
    assert s["isOnline"] is True and s["current"] is True


def test_wrong_password_is_401_counts_failure_and_emits_event(api):
    user = api.register()
    err = error(
        api.client.post("/api/auth/login", json={"email": user["email"], "password": "wrong-password"}),
        401,
        "INVALID_CREDENTIALS",
    )
    assert "password" in err["message"].lower()
    [ev] = api.events("user.login_failed")
    assert ev.entity_id == user["id"] and ev.payload["failedLoginCount"] == 1
    error(
        api.client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "whatever1"}),
        401,
        "INVALID_CREDENTIALS",
    )
    assert len(api.events("user.login_failed")) == 2


def test_token_signed_with_other_algorithm_or_key_is_rejected(api):
    alice = api.user()
    claims = jwt.decode(alice.access_token, TEST_SECRET, algorithms=["HS256"])
    forged_key = jwt.encode(claims, "another-secret-" + "y" * 40, algorithm="HS256")
    forged_alg = jwt.encode(claims, TEST_SECRET, algorithm="HS512")
    unsigned = jwt.encode(claims, "", algorithm="none")
    for token in (forged_key, forged_alg, unsigned, "garbage"):
        error(
            api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}), 401, "INVALID_TOKEN"
        )
    no_exp = jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_SECRET, algorithm="HS256")
    error(api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {no_exp}"}), 401, "INVALID_TOKEN")


def test_access_token_expires(api):
    alice = api.user()
    api.clock.advance(timedelta(minutes=14))
    data(api.client.get("/api/auth/me", headers=alice.headers))
    api.clock.advance(timedelta(minutes=2))
    error(api.client.get("/api/auth/me", headers=alice.headers), 401, "TOKEN_EXPIRED")


def test_refresh_rotates_the_refresh_token_and_rejects_reuse(api):
    alice = api.user()
    fresh = data(api.client.post("/api/auth/refresh", json={"refreshToken": alice.refresh_token}))
    assert fresh["refreshToken"] != alice.refresh_token and fresh["sessionId"] == alice.session_id
    data(api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh['accessToken']}"}))
    error(
        api.client.post("/api/auth/refresh", json={"refreshToken": alice.refresh_token}), 401, "INVALID_TOKEN"
    )
    assert len(api.events("session.refreshed")) == 1


def test_logout_ends_the_session(api):
    alice = api.user()
    data(api.client.post("/api/auth/logout", headers=alice.headers))
    error(api.client.get("/api/auth/me", headers=alice.headers), 401, "SESSION_ENDED")
    error(
        api.client.post("/api/auth/refresh", json={"refreshToken": alice.refresh_token}), 401, "INVALID_TOKEN"
    )
    [ev] = api.events("user.logged_out")
    assert ev.entity_id == alice.session_id
    error(api.client.post("/api/auth/logout"), 401, "UNAUTHORIZED")


def test_session_expires_after_30_minutes_idle_with_event(api):
    alice = api.user()
    api.clock.advance(timedelta(minutes=10))
    data(api.client.get("/api/sessions", headers=alice.headers))  # activity keeps it alive
    api.clock.advance(timedelta(minutes=25))
    # 35 minutes after login but only 25 idle: still alive, through a refreshed access token
    fresh = data(api.client.post("/api/auth/refresh", json={"refreshToken": alice.refresh_token}))
    api.clock.advance(timedelta(minutes=31))
    error(api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh['accessToken']}"}), 401)
    error(
        api.client.post("/api/auth/refresh", json={"refreshToken": fresh["refreshToken"]}),
        401,
        "SESSION_EXPIRED",
    )
    [ev] = api.events("session.expired")
    assert ev.entity_id == alice.session_id and ev.payload["reason"] == "expired"


def test_idle_sweeper_expires_sessions_once(api, store, settings):
    from api.auth.service import expire_idle_sessions

    a, b = api.user(), api.user()
    api.clock.advance(timedelta(minutes=12))
    data(api.client.get("/api/sessions", headers=b.headers))
    api.clock.advance(timedelta(minutes=20))
    assert expire_idle_sessions(store, settings, api.clock.now()) == 1
    assert expire_idle_sessions(store, settings, api.clock.now()) == 0
    [ev] = api.events("session.expired")
    assert ev.entity_id == a.session_id
    data(api.client.post("/api/auth/refresh", json={"refreshToken": b.refresh_token}))
    error(api.client.post("/api/auth/refresh", json={"refreshToken": a.refresh_token}), 401, "INVALID_TOKEN")


def test_last_activity_moves_with_requests(api):
    alice = api.user()
    before = data(api.client.get("/api/sessions", headers=alice.headers))[0]["lastActivity"]
    api.clock.advance(timedelta(minutes=5))
    after = data(api.client.get("/api/sessions", headers=alice.headers))[0]["lastActivity"]
    assert after > before


def test_sessions_list_only_own_and_revoke_authorization(api):
    alice, bob = api.user(), api.user()
    second = api.login(alice.email, deviceInfo={"platform": "android"})
    mine = data(api.client.get("/api/sessions", headers=alice.headers))
    assert {s["id"] for s in mine} == {alice.session_id, second["sessionId"]}
    # another user cannot see or revoke it; anonymous cannot either
    error(api.client.delete(f"/api/sessions/{second['sessionId']}", headers=bob.headers), 404, "NOT_FOUND")
    error(api.client.delete(f"/api/sessions/{second['sessionId']}"), 401)
    assert all(
        s["userId"] != alice.id
        for s in data(api.client.get("/api/sessions", headers=bob.headers))
        if "userId" in s
    )
    revoked = data(api.client.delete(f"/api/sessions/{second['sessionId']}", headers=alice.headers))
    assert revoked["endReason"] == "revoked" and revoked["isOnline"] is False
    error(
        api.client.get("/api/auth/me", headers={"Authorization": f"Bearer {second['accessToken']}"}),
        401,
        "SESSION_ENDED",
    )
    data(api.client.get("/api/auth/me", headers=alice.headers))
    ended = data(api.client.get("/api/sessions?includeEnded=true", headers=alice.headers))
    assert len(ended) == 2
    [ev] = api.events("session.revoked")
    assert ev.entity_id == second["sessionId"]


def test_admin_can_revoke_any_session(api):
    alice, admin = api.user(), api.user("admin")
    data(api.client.delete(f"/api/sessions/{alice.session_id}", headers=admin.headers))
    error(api.client.get("/api/auth/me", headers=alice.headers), 401)


def test_bad_authorization_scheme_is_401(api):
    error(api.client.get("/api/auth/me", headers={"Authorization": "Basic abc"}), 401, "INVALID_TOKEN")


def test_only_admins_grant_roles(api):
    alice, bob, admin = api.user(), api.user(), api.user("admin")
    url = f"/api/admin/users/{bob.id}/role"
    error(api.client.put(url, json={"role": "analyst"}), 401)
    error(api.client.put(url, json={"role": "admin"}, headers=alice.headers), 403, "FORBIDDEN")
    error(api.client.put(url, json={"role": "emperor"}, headers=admin.headers), 422)
    error(api.client.put("/api/admin/users/999/role", json={"role": "analyst"}, headers=admin.headers), 404)
    assert data(api.client.put(url, json={"role": "analyst"}, headers=admin.headers))["role"] == "analyst"
    ev = api.events("user.role_changed")[-1]
    assert ev.entity_id == bob.id and ev.payload == {"old": "buyer", "new": "analyst"}
    assert ev.actor_user_id == admin.id
