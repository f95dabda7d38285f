"""GET /api/ai/price/{productId} and GET /api/ai/insights over a store trained by the real train job
(tests/pipelines/trained.py): who may read what, the envelope and its camelCase money strings, the
model version and freshness, 404 for an unknown product and 503 before any training run."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import text

from api.core.settings import Settings
from ml import registry
from simulator.world import PASSWORD
from tests.helpers import Api, data, error
from tests.pipelines.simulated import store_api
from tests.pipelines.trained import TrainedMarket, private_copy, trained_market
from warehouse import ml_outputs
from warehouse.marts import open_marts

__all__ = ["trained_market"]


def _headers(api: Api, email: str) -> dict[str, str]:
    tokens = api.login(email, PASSWORD)
    return {"Authorization": f"Bearer {tokens['accessToken']}"}


def _priced_product(settings: Settings) -> tuple[int, int]:
    """A product the price model priced, and its shop."""
    with open_marts(settings) as reader:
        ((product_id, shop_id),) = reader.fetch(
            "SELECT product_id, shop_id FROM ml.price_suggestions ORDER BY product_id LIMIT 1"
        )
    return int(product_id), int(shop_id)


def _owners(api: Api) -> dict[int, str]:
    """shop id -> its owner's email (simulated sellers share the simulator's password)."""
    with api.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT s.id, u.email FROM shops s JOIN users u ON u.id = s.owner_id"))
        return {int(r[0]): str(r[1]) for r in rows}


def test_price_suggestion_for_owner_and_staff_only(trained_market: TrainedMarket, tmp_path: Path) -> None:
    s = private_copy(trained_market.settings, tmp_path / "market")  # the test registers users
    product_id, shop_id = _priced_product(s)
    with store_api(s) as api:
        owners = _owners(api)
        owner = _headers(api, owners[shop_id])
        other = _headers(api, next(e for shop, e in owners.items() if e != owners[shop_id]))
        analyst, admin, buyer = api.user("analyst"), api.user("admin"), api.user("buyer")
        url = f"/api/ai/price/{product_id}"
        body = api.client.get(url, headers=owner).json()
        assert body["success"] is True
        out: dict[str, Any] = body["data"]
        for headers in (analyst.headers, admin.headers):
            assert data(api.client.get(url, headers=headers))["recommendedPrice"] == out["recommendedPrice"]
        error(api.client.get(url, headers=other), 403, "FORBIDDEN")
        error(api.client.get(url, headers=buyer.headers), 403, "FORBIDDEN")
        error(api.client.get(url), 401)
        error(api.client.get("/api/ai/price/999999999", headers=analyst.headers), 404, "PRODUCT_NOT_FOUND")
        # listed after the training run: known to the store, not priced yet
        seller = api.user("seller")
        fresh = api.product(seller, api.shop(seller)["id"])
        error(
            api.client.get(f"/api/ai/price/{fresh['id']}", headers=seller.headers),
            404,
            "PRICE_SUGGESTION_NOT_FOUND",
        )
    assert out["productId"] == product_id and out["shopId"] == shop_id
    with open_marts(s) as reader:
        stored = ml_outputs.price_suggestion(reader, product_id)
    assert stored is not None
    # money as exact decimal strings, probabilities as numbers
    for key in ("currentPrice", "referencePrice", "recommendedPrice", "expectedRevenueChange"):
        assert isinstance(out[key], str), key
    assert Decimal(out["recommendedPrice"]) == stored.recommended_price
    assert Decimal(out["expectedRevenueChange"]) == (
        Decimal(out["recommendedRevenuePer100Views"]) - Decimal(out["revenuePer100Views"])
    )
    assert 0 <= out["purchaseProbability"] <= 1 and 0 <= out["recommendedPurchaseProbability"] <= 1
    assert isinstance(out["expectedRevenueChangePct"], float)
    assert s.models_dir is not None
    assert out["modelVersion"] == registry.latest_version(s.models_dir, "price")
    assert out["trainedAt"] is not None and out["currency"]
    assert out["freshness"]["source"] == "duckdb" and out["freshness"]["loadedAt"] is not None


def test_insights_for_staff_and_for_a_shop_owner(trained_market: TrainedMarket, tmp_path: Path) -> None:
    s = private_copy(trained_market.settings, tmp_path / "market")
    with open_marts(s) as reader:
        every = ml_outputs.insights(reader)
    shop_id = next(i.shop_id for i in every if i.shop_id is not None)
    with store_api(s) as api:
        owners = _owners(api)
        analyst = api.user("analyst")
        staff = data(api.client.get("/api/ai/insights", headers=analyst.headers))
        mine = data(api.client.get("/api/ai/insights", headers=_headers(api, owners[shop_id])))
        error(api.client.get("/api/ai/insights", headers=api.user("buyer").headers), 403, "FORBIDDEN")
    assert [i["rank"] for i in staff["insights"]] == [i.rank for i in every]
    assert staff["modelVersion"] and staff["generatedAt"] and staff["freshness"]["source"] == "duckdb"
    first = staff["insights"][0]
    assert set(first) >= {"rank", "kind", "title", "text", "score", "shopId", "productId", "numbers"}
    assert first["title"]
    # a seller sees the findings about their own shops, no one else's
    own = {shop for shop, email in owners.items() if email == owners[shop_id]}
    assert mine["insights"] and {i["shopId"] for i in mine["insights"]} <= own
    assert len(mine["insights"]) == sum(1 for i in every if i.shop_id in own)


def test_503_before_any_training_run(trained_market: TrainedMarket, tmp_path: Path) -> None:
    s = private_copy(trained_market.untrained, tmp_path / "market")
    with store_api(s) as api:
        analyst = api.user("analyst")
        with api.store.engine.connect() as conn:
            product_id = int(conn.execute(text("SELECT min(id) FROM products")).scalar_one())
        for url in (f"/api/ai/price/{product_id}", "/api/ai/insights"):
            resp = api.client.get(url, headers=analyst.headers)
            error(resp, 503, "WAREHOUSE_UNAVAILABLE")
            assert resp.headers["Retry-After"] == "60"
        # the unknown product is still a 404, not a 503
        error(api.client.get("/api/ai/price/999999999", headers=analyst.headers), 404, "PRODUCT_NOT_FOUND")
