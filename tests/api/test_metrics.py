"""GET /metrics (Prometheus text) and GET /api/metrics (JSON for staff): requests counted per route
template, latency and errors, the pipeline's freshness and the warehouse's size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import SecretStr

from api.core.settings import Settings
from tests.helpers import Api, data, error
from tests.warehouse.test_marts import (
    MartsWarehouse,
    make_warehouse,
    pg_warehouse_database,  # noqa: F401 (a fixture)
)
from warehouse import marts
from warehouse.settings import WarehouseLocation

# The store's backend does not matter to these tests: SQLite only.
sqlite_store = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=[marts.DUCKDB, marts.POSTGRES])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> MartsWarehouse:
    return make_warehouse(request.param, tmp_path, request)


@pytest.fixture
def extra_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings a test sets (indirect parametrization), e.g. the optional `metrics_enabled`."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(settings: Settings, extra_settings: dict[str, Any], request: pytest.FixtureRequest) -> Settings:
    """The shared test settings; on the parametrized warehouse for the tests that ask for one."""
    update = dict(extra_settings)
    if "warehouse" in request.fixturenames:
        warehouse: MartsWarehouse = request.getfixturevalue("warehouse")
        update.update(warehouse.settings_update())
    return settings.model_copy(update=update)


def scrape(api: Api, **headers: str) -> dict[str, list[Sample]]:
    resp = api.client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float | None:
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1, found
    return found[0] if found else None


@sqlite_store
def test_prometheus_text_counts_requests_per_route_template(api: Api) -> None:
    owner = api.user("seller")
    shop = api.shop(owner)
    for _ in range(3):
        data(api.client.get(f"/api/shops/{shop['id']}"))
    for missing in (999_991, 999_992):
        error(api.client.get(f"/api/shops/{missing}"), 404)
    error(api.client.get("/no/such/page"), 404)

    samples = scrape(api)
    route = "/api/shops/{shop_id}"
    assert value(samples, "store_http_requests_total", method="GET", route=route, status="200") == 3
    assert value(samples, "store_http_requests_total", method="GET", route=route, status="404") == 2
    assert value(samples, "store_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert value(samples, "store_http_requests_total", method="POST", route="/api/shops", status="201") == 1
    assert value(samples, "store_http_request_duration_seconds_count", method="GET", route=route) == 5
    inf = value(samples, "store_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf")
    assert inf == 5
    # Route templates only: a raw path never becomes a label (the number of series stays bounded).
    routes = {s.labels["route"] for s in samples["store_http_requests_total"]}
    assert not any(str(shop["id"]) in r or "999991" in r or "/no/such" in r for r in routes), routes
    # The process's own metrics, and the scrape itself is counted by the next one.
    assert value(samples, "process_cpu_seconds_total") is not None
    assert value(scrape(api), "store_http_requests_total", method="GET", route="/metrics", status="200") == 1


@sqlite_store
def test_api_metrics_is_for_analysts_and_admins(api: Api) -> None:
    error(api.client.get("/api/metrics"), 401, "UNAUTHORIZED")
    for role in ("buyer", "seller"):
        error(api.client.get("/api/metrics", headers=api.user(role).headers), 403, "FORBIDDEN")
    for role in ("analyst", "admin"):
        assert (
            data(api.client.get("/api/metrics", headers=api.user(role).headers))["process"]["pid"]
            == os.getpid()
        )


@sqlite_store
def test_api_metrics_reports_rates_latency_and_errors_per_route(api: Api) -> None:
    analyst = api.user("analyst")
    owner = api.user("seller")
    shop = api.shop(owner)
    for _ in range(4):
        data(api.client.get(f"/api/shops/{shop['id']}"))
    # Analytics before the first pipeline run: 503s, counted as server errors of their route.
    for _ in range(2):
        error(api.client.get(f"/api/analytics/shop/{shop['id']}", headers=owner.headers), 503)

    body = data(api.client.get("/api/metrics", headers=analyst.headers))
    for view in ("window", "lifetime"):
        routes = {(r["method"], r["route"]): r for r in body[view]["routes"]}
        shops = routes[("GET", "/api/shops/{shop_id}")]
        assert (shops["requests"], shops["serverErrors"], shops["clientErrors"]) == (4, 0, 0)
        latency = shops["latencyMs"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] and latency["mean"] > 0
        analytics = routes[("GET", "/api/analytics/shop/{shop_id}")]
        assert (analytics["requests"], analytics["serverErrors"], analytics["errorRate"]) == (2, 2, 1.0)
        assert body[view]["requests"] >= 4 + 2 + 2  # and the sign-ups, logins, shop creation
    window = body["window"]
    assert window["scope"] == "process" and 0 < window["seconds"] <= 60
    shops = next(r for r in window["routes"] if r["route"] == "/api/shops/{shop_id}")
    assert shops["ratePerSecond"] == pytest.approx(4 / window["seconds"], rel=1e-3)
    assert body["process"]["multiprocess"] is False and body["lifetime"]["scope"] == "process"


@sqlite_store
def test_pipeline_freshness_and_warehouse_size(api: Api, warehouse: MartsWarehouse) -> None:
    analyst = api.user("analyst")
    body = data(api.client.get("/api/metrics", headers=analyst.headers))
    pipeline = body["pipeline"]
    assert pipeline["status"] == "unavailable" and "pipeline" in pipeline["message"]
    assert pipeline["loadedAt"] is None and pipeline["streams"] == []
    assert body["warehouse"]["target"] == warehouse.target
    samples = scrape(api)
    assert value(samples, "store_warehouse_up") == 0

    loaded = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    warehouse.build()
    pipeline = data(api.client.get("/api/metrics", headers=analyst.headers))["pipeline"]
    assert pipeline["status"] == "never_loaded"  # built, no load committed yet
    warehouse.loaded(loaded, rows=250, tables={"orders": 40, "users": 12})

    body = data(api.client.get("/api/metrics", headers=analyst.headers))
    pipeline = body["pipeline"]
    assert pipeline["status"] == "ok" and pipeline["message"] is None
    assert datetime.fromisoformat(pipeline["loadedAt"]) == loaded
    assert 180 <= pipeline["ageSeconds"] < 180 + 60
    assert [(s["stream"], s["rowsTotal"], s["lagRows"]) for s in pipeline["streams"]] == [("events", 250, 0)]
    assert [(t["table"], t["rows"]) for t in pipeline["tables"]] == [("orders", 40), ("users", 12)]
    size = body["warehouse"]
    if warehouse.path is not None:
        snapshot = WarehouseLocation(warehouse.path).snapshot
        assert size["sizeBytes"] == snapshot.stat().st_size
        assert size["writerSizeBytes"] == warehouse.path.stat().st_size
        assert pipeline["publishedAt"] is not None
    else:
        assert size["sizeBytes"] > 0 and size["writerSizeBytes"] is None

    samples = scrape(api)
    assert value(samples, "store_warehouse_up") == 1
    assert value(samples, "store_warehouse_last_load_timestamp_seconds") == loaded.timestamp()
    age = value(samples, "store_warehouse_load_age_seconds")
    assert age is not None and 180 <= age < 240
    assert value(samples, "store_warehouse_rows", table="events") == 250
    assert value(samples, "store_warehouse_rows", table="orders") == 40
    file = "snapshot" if warehouse.path is not None else "database"
    assert value(samples, "store_warehouse_size_bytes", file=file) == size["sizeBytes"]


@sqlite_store
@pytest.mark.parametrize("extra_settings", [{"metrics_enabled": False}], indirect=True)
def test_the_prometheus_endpoint_can_be_turned_off(api: Api) -> None:
    err = error(api.client.get("/metrics"), 404, "NOT_FOUND")
    assert "STORE_METRICS_ENABLED" in err["details"]["hint"]


@sqlite_store
@pytest.mark.parametrize("extra_settings", [{"metrics_token": SecretStr("scrape-secret")}], indirect=True)
def test_the_prometheus_endpoint_may_require_a_token(api: Api) -> None:
    error(api.client.get("/metrics"), 401, "INVALID_TOKEN")
    error(api.client.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "INVALID_TOKEN")
    assert value(scrape(api, Authorization="Bearer scrape-secret"), "store_warehouse_up") == 0


# Worker processes of one server in prometheus_client's multiprocess mode: each records requests into
# the shared directory; /metrics in any of them exports the sum.
WORKER = textwrap.dedent(
    """
    import sys
    from api.metrics.recorder import RequestMetrics

    class Route:
        path = "/api/shops/{shop_id}"

    metrics = RequestMetrics()
    for i in range(int(sys.argv[1])):
        metrics.observe({"method": "GET", "route": Route()}, 500 if i == 0 else 200, 0.002)
    """
)
EXPORT = textwrap.dedent(
    """
    import json
    from prometheus_client import generate_latest
    from api.metrics.recorder import RequestMetrics

    metrics = RequestMetrics()
    (stats,) = metrics.lifetime()
    print(json.dumps({"requests": stats.requests, "errors": stats.server_errors,
                      "text": generate_latest(metrics.exposition_registry()).decode()}))
    """
)


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    def run(script: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(WORKER, "3")
    run(WORKER, "5")
    exported: dict[str, Any] = json.loads(run(EXPORT))
    assert (exported["requests"], exported["errors"]) == (8, 2)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(exported["text"])
        for s in f.samples
    }
    key = (("method", "GET"), ("route", "/api/shops/{shop_id}"), ("status", "200"))
    assert samples[("store_http_requests_total", key)] == 6
