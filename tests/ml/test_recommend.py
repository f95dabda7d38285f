"""Recommendations: seed 001 §3 exactly, the blended model against popularity on later behaviour, only
products the user can buy, cold start, and rows the store's product_recommendations table accepts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import text

from ml.recommend import (
    REASON_CATEGORY,
    REASON_TRENDING,
    Recommender,
    evaluate,
    fit_recommender,
    interactions_from,
    recommend_blended,
    recommend_seed,
    recommendation_rows,
    tune_blend,
)
from tests.ml.conftest import Market


@pytest.fixture(scope="module")
def interactions(market: Market) -> pd.DataFrame:
    return interactions_from(market.frames.views, market.frames.order_lines)


@pytest.fixture(scope="module")
def rec(market: Market, interactions: pd.DataFrame) -> Recommender:
    return fit_recommender(market.frames.products, interactions, as_of=market.end)


def _seed_by_sql(market: Market, user_id: int) -> list[int]:
    """Seed 001 §3 written out independently, straight from the store's tables."""
    with market.engine.connect() as conn:
        cats = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT DISTINCT p.category_id FROM product_views v"
                    " JOIN products p ON p.id = v.product_id WHERE v.user_id = :u"
                ),
                {"u": user_id},
            )
        }
        touched = {
            r[0]
            for r in conn.execute(
                text("SELECT product_id FROM product_views WHERE user_id = :u"), {"u": user_id}
            )
        } | {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT i.product_id FROM orders o JOIN order_items i ON i.order_id = o.id"
                    " WHERE o.buyer_id = :u AND o.status != 'cancelled'"
                ),
                {"u": user_id},
            )
        }
        rows: list[Any] = list(
            conn.execute(
                text(
                    "SELECT p.id, p.category_id, p.views, p.sales_count, p.rating, p.is_active, p.stock,"
                    " s.owner_id FROM products p JOIN shops s ON s.id = p.shop_id"
                )
            )
        )

    def norm(values: list[float]) -> list[float]:
        lo, hi = min(values), max(values)
        return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]

    views = norm([float(r.views) for r in rows])
    sales = norm([float(r.sales_count) for r in rows])
    rating = norm([float(r.rating) for r in rows])
    scored = [
        (-(0.3 * v + 0.5 * s + 0.2 * g), r.id)
        for r, v, s, g in zip(rows, views, sales, rating, strict=True)
        if r.category_id in cats
        and r.id not in touched
        and r.is_active
        and r.stock > 0
        and r.owner_id != user_id
    ]
    return [pid for _, pid in sorted(scored)[:20]]


def test_seed_baseline_is_the_seeds_algorithm_exactly(market: Market, rec: Recommender) -> None:
    users = sorted(rec.histories)[:25]
    assert users
    for u in users:
        got = recommend_seed(rec, u)
        assert len(got) == 20
        expected = _seed_by_sql(market, u)
        head = [p for p, _, why in got if why == REASON_CATEGORY]
        assert head == expected[: len(head)] and len(head) == min(20, len(expected)), u
        # trending products fill the rest, never one already listed or viewed
        tail = [p for p, _, why in got if why == REASON_TRENDING]
        assert len(head) + len(tail) == 20
        assert not set(tail) & (set(head) | set(rec.histories[u]["product_id"]))


def test_blended_model_doubles_popularitys_precision_on_later_behaviour(
    market: Market, interactions: pd.DataFrame
) -> None:
    cutoff = market.end - pd.Timedelta(days=14)
    blend, scores = tune_blend(market.frames.products, interactions, cutoff=cutoff)
    r = evaluate(market.frames.products, interactions, cutoff=cutoff, blend=blend)
    assert r["users"] >= 50, r
    assert r["precision_at_10_blended"] >= 2 * r["precision_at_10_popularity"], (r, scores)
    assert r["precision_at_10_blended"] >= r["precision_at_10_seed"], r
    assert r["recall_at_10_blended"] > r["recall_at_10_popularity"], r
    assert r["coverage_blended"] > r["coverage_popularity"], r


def test_never_a_product_the_user_cannot_buy(market: Market, interactions: pd.DataFrame) -> None:
    products = market.frames.products.copy()
    user = int(interactions.dropna(subset=["user_id"])["user_id"].value_counts().index[0])
    first = fit_recommender(products, interactions, as_of=market.end)
    top = [p for p, _, _ in recommend_blended(first, user)]
    inactive, empty, own = top[0], top[1], top[2]
    products.loc[products["product_id"] == inactive, "is_active"] = False
    products.loc[products["product_id"] == empty, "stock"] = 0
    # the user opens a shop that holds the third product
    products.loc[products["product_id"] == own, "owner_id"] = user
    again = fit_recommender(products, interactions, as_of=market.end)
    for fn in (recommend_blended, recommend_seed):
        listed = {p for p, _, _ in fn(again, user)}
        assert not listed & {inactive, empty, own}
        assert not listed & set(again.histories[user]["product_id"])


def test_cold_start_gets_trending_products(rec: Recommender) -> None:
    newcomer = 10**9
    got = recommend_blended(rec, newcomer)
    assert len(got) == 20
    assert {why for _, _, why in got} == {REASON_TRENDING}
    assert [s for _, s, _ in got] == sorted((s for _, s, _ in got), reverse=True)


def test_rows_fit_the_stores_product_recommendations_table(market: Market, rec: Recommender) -> None:
    rec.version = "test-1"
    users = sorted(rec.histories)[:10]
    rows = recommendation_rows(rec, users)
    assert len(rows) == 20 * len(users)
    assert (rows.groupby("user_id")["rank"].apply(list) == [list(range(1, 21))] * len(users)).all()
    now = datetime.now(UTC).replace(tzinfo=None)
    with market.engine.begin() as conn:
        conn.execute(text("DELETE FROM product_recommendations"))
        conn.execute(
            text(
                "INSERT INTO product_recommendations"
                " (user_id, product_id, score, reason, model_version, created_at)"
                " VALUES (:user_id, :product_id, :score, :reason, :model_version, :created_at)"
            ),
            [{**r, "created_at": now} for r in rows.drop(columns="rank").to_dict("records")],
        )
        stored: int = conn.execute(text("SELECT COUNT(*) FROM product_recommendations")).scalar_one()
        conn.execute(text("DELETE FROM product_recommendations"))
    assert stored == len(rows)
