from tests.helpers import data


def test_health_reports_database_and_in_process_redis(client):
    body = data(client.get("/health"))
    assert body["database"]["status"] == "ok"
    assert body["redis"]["mode"] == "in-process fallback"


def test_register_login_me(api):
    alice = api.user()
    me = data(api.client.get("/api/auth/me", headers=alice.headers))
    assert me["email"] == alice.email
    assert [e.event_type for e in api.events()][:2] == ["user.registered", "user.logged_in"]
