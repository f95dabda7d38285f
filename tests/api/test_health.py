import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import REDIS_URL, service_missing
from tests.helpers import data, error


@pytest.fixture
def live_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing("Redis", str(exc))
    return REDIS_URL


def _client(settings, clock, store, redis_url):
    return TestClient(
        create_app(settings.model_copy(update={"redis_url": redis_url}), clock=clock, store=store)
    )


def test_health_without_redis_says_in_process(client):
    body = data(client.get("/health"))
    assert body["status"] == "ok"
    assert body["redis"]["status"] == "not_configured"
    assert body["redis"]["mode"] == "in-process fallback"
    assert body["uptimeSeconds"] >= 0 and body["version"] == "0.1.0"
    assert data(client.get("/api/health/redis"))["status"] == "not_configured"


def test_health_reports_the_database(client, settings):
    db = data(client.get("/api/health/database"))
    assert db["status"] == "ok"
    assert db["dialect"] == ("sqlite" if settings.is_sqlite else "postgresql")


def test_health_with_live_redis(settings, clock, store, live_redis):
    with _client(settings, clock, store, live_redis) as c:
        body = data(c.get("/health"))
        assert body["redis"]["status"] == "ok" and body["redis"]["mode"] == "redis"
        assert data(c.get("/api/health/redis"))["version"]


def test_health_with_redis_down_is_degraded_not_broken(settings, clock, store):
    with _client(settings, clock, store, "redis://127.0.0.1:1/0") as c:
        body = data(c.get("/health"))
        assert body["status"] == "degraded"
        assert body["redis"]["status"] == "down" and body["redis"]["mode"] == "in-process fallback"
        error(c.get("/api/health/redis"), 503, "SERVICE_UNAVAILABLE")
        # the rest of the API keeps working
        data(
            c.post(
                "/api/auth/register",
                json={"email": "r@example.com", "password": "long enough pw", "username": "redisless"},
            ),
            201,
        )
