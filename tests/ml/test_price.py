"""The price response learnt from view -> purchase observations, scored on later views, and the
revenue-maximising prices it recommends."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from ml.price import PriceModel, category_reference, label_purchases, recommend_prices, train_price_model
from tests.ml.conftest import Market
from tests.ml.frames import reference_prices


@pytest.fixture(scope="module")
def labelled(market: Market) -> pd.DataFrame:
    return label_purchases(market.frames.views, market.frames.order_lines)


@pytest.fixture(scope="module")
def model(market: Market, labelled: pd.DataFrame) -> PriceModel:
    return train_price_model(labelled, category_reference(market.frames.products))


def test_purchases_are_tied_to_the_view_before_them(market: Market, labelled: pd.DataFrame) -> None:
    bought = labelled[labelled["purchased"]]
    lines = market.frames.order_lines
    assert 0 < len(bought) <= len(lines)
    # every order line a signed-in buyer placed after viewing the product names exactly one view
    pairs = lines.merge(labelled, left_on=["buyer_id", "product_id"], right_on=["user_id", "product_id"])
    gap = pd.to_datetime(pairs["created_at"]) - pd.to_datetime(pairs["viewed_at"])
    followed = pairs[(gap >= pd.Timedelta(0)) & (gap <= pd.Timedelta(hours=2))]
    assert len(bought) == followed.drop_duplicates(["order_id", "product_id"]).shape[0]


def test_reference_prices_match_the_planted_ones(market: Market) -> None:
    ours = category_reference(market.frames.products)
    planted = reference_prices(market.truth)
    for cat, price in planted.items():
        assert abs(ours[cat] / float(price) - 1) < 0.25, (cat, ours[cat], price)


def test_price_model_beats_the_no_price_baseline_on_later_views(model: PriceModel) -> None:
    m = model.metrics
    assert m["test_views"] > 500 and m["test_purchases"] > 50, m
    assert m["log_loss"] < m["log_loss_baseline"], m
    assert m["auc"] > m["auc_baseline"] + 0.03, m


def test_learnt_response_falls_with_price_as_planted(market: Market, model: PriceModel) -> None:
    # The simulator scales purchases by (reference / price) ** elasticity, steeply for bargain hunters.
    assert model.slope < 0
    for cat in model.categories:
        p = model.purchase_probability(cat, np.array([0.6, 0.8, 1.0, 1.25]))
        assert p[0] > p[1] > p[2] > p[3], (cat, p)


def test_recommended_prices_raise_expected_revenue_within_bounds(market: Market, model: PriceModel) -> None:
    prices = recommend_prices(model, market.frames.products, max_change=0.3)
    active = market.frames.products[market.frames.products["is_active"]]
    assert len(prices) == len(active)
    for r in prices.itertuples(index=False):
        assert isinstance(
            r.recommended_price, Decimal
        ) and r.recommended_price == r.recommended_price.quantize(Decimal("0.01"))
        assert Decimal("0.69") * r.price <= r.recommended_price <= Decimal("1.31") * r.price
        assert r.expected_revenue_change >= -1e-9
        assert r.recommended_revenue_per_100_views >= r.revenue_per_100_views
    # cheap products lose little by dearer prices, dear ones gain buyers by cheaper ones: the
    # recommendations move prices towards where the response says revenue is
    assert prices["expected_revenue_change"].max() > 0
