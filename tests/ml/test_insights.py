"""Insights computed from the simulated market's own numbers, checked against SQL over the store."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
from sqlalchemy import text

from ml.forecast import daily_demand
from ml.insights import Insight, order_anomalies, rank, revenue_changes, segment_changes, sell_outs
from ml.segments import segment_shifts
from tests.ml.conftest import Market


def _sales(market: Market) -> pd.DataFrame:
    """Revenue per shop, category and day: lines of orders paid and not cancelled (the marts' metric)."""
    lines = market.frames.order_lines
    paid = lines[lines["status"].isin(["paid", "shipped", "delivered"])].copy()
    paid["revenue"] = [Decimal(p) * q for p, q in zip(paid["unit_price"], paid["quantity"], strict=True)]
    paid["date"] = pd.to_datetime(paid["created_at"]).dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return paid.groupby(["date", "shop_id", "category_id"], as_index=False)["revenue"].agg(
        lambda s: sum(s, Decimal(0))
    )


def test_revenue_change_names_the_shop_and_the_category_behind_it(market: Market) -> None:
    found = revenue_changes(_sales(market), as_of=market.end)
    assert found
    top = rank(found, limit=1)[0]
    shop = top.subject["shop_id"]
    week = "o.created_at >= :a AND o.created_at < :b"
    sql = (
        "SELECT COALESCE(SUM(o.total_amount), 0) FROM orders o WHERE o.shop_id = :s AND "
        + week
        + " AND o.status IN ('paid', 'shipped', 'delivered')"
    )
    with market.engine.connect() as conn:

        def total(start: pd.Timestamp, stop: pd.Timestamp) -> Decimal:
            a, b = start.tz_localize(None).isoformat(sep=" "), stop.tz_localize(None).isoformat(sep=" ")
            return Decimal(str(conn.execute(text(sql), {"s": shop, "a": a, "b": b}).scalar_one())).quantize(
                Decimal("0.01")
            )

        this_week = total(market.end - pd.Timedelta(days=7), market.end)
        last_week = total(market.end - pd.Timedelta(days=14), market.end - pd.Timedelta(days=7))
    assert top.numbers["revenue_this_week"] == this_week
    assert top.numbers["revenue_last_week"] == last_week
    assert top.numbers["change"] == this_week - last_week
    assert f"Shop {shop}" in top.title and ("rose" in top.title) == (this_week > last_week)
    # the named category moved the same way as the shop, and by the most
    assert (top.numbers["driver_change"] > 0) == (top.numbers["change"] > 0)


def test_anomaly_flags_a_day_far_outside_a_shops_usual_orders(market: Market) -> None:
    daily = daily_demand(market.frames.order_lines, end=market.end - pd.Timedelta(days=1))
    shops = daily[daily["kind"] == "shop"].rename(columns={"key": "shop_id", "ds": "date"})
    assert not order_anomalies(shops, as_of=market.end, threshold=50)  # nothing is that far out
    spiked = shops.copy()
    target = int(spiked["shop_id"].iloc[0])
    last = spiked["date"].max()
    spiked.loc[(spiked["shop_id"] == target) & (spiked["date"] == last), "orders"] += 200
    found = order_anomalies(spiked, as_of=market.end)
    assert [i.subject["shop_id"] for i in found if i.numbers["orders"] >= 200] == [target]


def test_segment_and_sell_out_findings_carry_their_numbers() -> None:
    before = pd.DataFrame({"user_id": range(10), "segment_name": ["loyal"] * 6 + ["new"] * 4})
    after = pd.DataFrame({"user_id": range(12), "segment_name": ["loyal"] * 3 + ["new"] * 9})
    shifts = segment_changes(segment_shifts(before, after))
    by_name = {i.subject["segment"]: i for i in shifts}
    assert by_name["new"].numbers == {"before": 4, "after": 9, "change": 5, "change_pct": 1.25}
    assert "grew by 5" in by_name["new"].title and "shrank by 3" in by_name["loyal"].title
    restock = pd.DataFrame(
        {
            "product_id": [1, 2],
            "shop_id": [7, 7],
            "stock": [3, 40],
            "daily_demand": [1.5, 1.0],
            "days_of_cover": [2.0, 40.0],
            "suggested_quantity": [30, 5],
        }
    )
    outs = sell_outs(restock, horizon_days=14)
    assert [i.subject["product_id"] for i in outs] == [1]
    ranked = rank([*shifts, *outs, Insight("anomaly", "x", 0.0)])
    assert [i.score for i in ranked] == sorted((i.score for i in ranked), reverse=True)
