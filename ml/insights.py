"""Plain-language findings from the marts and the models, ranked, each with the numbers behind it.

Kinds: a shop's revenue change week over week and the category that drove it, segments growing or
shrinking, products likely to sell out (from the demand forecast), and days far outside a shop's
usual orders (anomalies). Each finding's `score` (0..1) says how much it matters, comparable across
kinds: the share of the platform's weekly revenue it moves, the share of buyers, the closeness of a
sell-out, the strength of an anomaly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd

from ml.checks import require_columns

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Insight:
    kind: str  # revenue_change, segment_shift, sell_out, anomaly
    title: str  # one sentence a shop owner or an analyst reads as is
    score: float
    subject: dict[str, Any] = field(default_factory=dict)  # shop_id / product_id / segment
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def _dec_sum(values: pd.Series) -> Decimal:
    return sum((Decimal(v) for v in values), Decimal(0))


def revenue_changes(
    sales: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    min_change: Decimal = Decimal("0"),
    category_names: dict[int, str] | None = None,
    shop_names: dict[int, str] | None = None,
) -> list[Insight]:
    """Each shop's revenue over the 7 days before `as_of` against the 7 days before that, and the
    category whose change explains most of it.

    `sales`: one row per shop, category and day: date (UTC day), shop_id, category_id, revenue
    (Decimal; paid, not cancelled orders, as in the marts' metric definition)."""
    require_columns(sales, ("date", "shop_id", "category_id", "revenue"), "sales")
    end = pd.Timestamp(as_of).tz_localize(None) if pd.Timestamp(as_of).tzinfo else pd.Timestamp(as_of)
    end = end.normalize()
    d = (
        pd.to_datetime(sales["date"]).dt.tz_localize(None)
        if pd.to_datetime(sales["date"]).dt.tz is not None
        else pd.to_datetime(sales["date"])
    )
    frame = sales.assign(_d=d.dt.normalize())
    this_week = frame[(frame["_d"] >= end - pd.Timedelta(days=7)) & (frame["_d"] < end)]
    last_week = frame[
        (frame["_d"] >= end - pd.Timedelta(days=14)) & (frame["_d"] < end - pd.Timedelta(days=7))
    ]
    platform = _dec_sum(this_week["revenue"]) + _dec_sum(last_week["revenue"])
    if platform <= 0:
        return []
    out = []
    for shop in sorted(set(this_week["shop_id"]) | set(last_week["shop_id"])):
        now_rows = this_week[this_week["shop_id"] == shop]
        before_rows = last_week[last_week["shop_id"] == shop]
        now, before = _dec_sum(now_rows["revenue"]), _dec_sum(before_rows["revenue"])
        change = now - before
        if change == 0 or abs(change) < min_change:
            continue
        by_cat_now = now_rows.groupby("category_id")["revenue"].agg(_dec_sum)
        by_cat_before = before_rows.groupby("category_id")["revenue"].agg(_dec_sum)
        cats = set(by_cat_now.index) | set(by_cat_before.index)
        deltas = {int(c): by_cat_now.get(c, Decimal(0)) - by_cat_before.get(c, Decimal(0)) for c in cats}
        driver = max(deltas, key=lambda c: deltas[c] if change > 0 else -deltas[c])
        share = float(deltas[driver] / change) if change else 0.0
        pct = float(change / before) if before > 0 else None
        shop_label = (shop_names or {}).get(int(shop), f"Shop {int(shop)}")
        cat_label = (category_names or {}).get(driver, f"category {driver}")
        direction = "rose" if change > 0 else "fell"
        pct_text = f" ({pct:+.0%})" if pct is not None else " (from nothing)"
        title = (
            f"{shop_label}'s revenue {direction} by {abs(_money(change))}{pct_text} week over week; "
            f"{cat_label} accounts for {min(max(share, 0.0), 9.99):.0%} of the change."
        )
        out.append(
            Insight(
                "revenue_change",
                title,
                min(1.0, float(abs(change) / platform)),
                {"shop_id": int(shop), "category_id": driver},
                {
                    "revenue_this_week": _money(now),
                    "revenue_last_week": _money(before),
                    "change": _money(change),
                    "change_pct": pct,
                    "driver_change": _money(deltas[driver]),
                    "driver_share": share,
                },
            )
        )
    return out


def segment_changes(shifts: pd.DataFrame, *, min_change: int = 1) -> list[Insight]:
    """Segments that grew or shrank between two segmentation runs (see `ml.segments.segment_shifts`:
    segment_name, before, after, change)."""
    require_columns(shifts, ("segment_name", "before", "after", "change"), "shifts")
    total = max(1, int(shifts["after"].sum()))
    out = []
    for r in shifts.itertuples(index=False):
        change = int(r.change)
        if abs(change) < min_change:
            continue
        pct = change / int(r.before) if int(r.before) else None
        verb = "grew" if change > 0 else "shrank"
        pct_text = f" ({pct:+.0%})" if pct is not None else " (new)"
        out.append(
            Insight(
                "segment_shift",
                f"The {r.segment_name} segment {verb} by {abs(change)} buyers{pct_text} to {int(r.after)}.",
                min(1.0, abs(change) / total),
                {"segment": str(r.segment_name)},
                {"before": int(r.before), "after": int(r.after), "change": change, "change_pct": pct},
            )
        )
    return out


def sell_outs(restock: pd.DataFrame, *, horizon_days: int = 14) -> list[Insight]:
    """Products the forecast expects to sell out within `horizon_days` (see
    `ml.forecast.restock_suggestions`)."""
    require_columns(
        restock,
        ("product_id", "shop_id", "stock", "daily_demand", "days_of_cover", "suggested_quantity"),
        "restock",
    )
    out = []
    for r in restock.itertuples(index=False):
        cover = float(r.days_of_cover)
        if cover > horizon_days:
            continue
        out.append(
            Insight(
                "sell_out",
                (
                    f"Product {int(r.product_id)} is likely to sell out in about {max(cover, 0):.0f} days "
                    f"({int(r.stock)} left, about {float(r.daily_demand):.1f} sold a day); "
                    f"restock about {int(r.suggested_quantity)}."
                ),
                max(0.0, 1.0 - cover / horizon_days),
                {"product_id": int(r.product_id), "shop_id": int(r.shop_id)},
                {
                    "stock": int(r.stock),
                    "daily_demand": float(r.daily_demand),
                    "days_of_cover": cover,
                    "suggested_quantity": int(r.suggested_quantity),
                },
            )
        )
    return out


def order_anomalies(
    daily: pd.DataFrame, *, as_of: pd.Timestamp, window_days: int = 28, threshold: float = 3.5
) -> list[Insight]:
    """Shops whose orders on the last day before `as_of` sit far outside their previous `window_days`:
    a robust z-score (median and MAD) beyond `threshold`.

    `daily`: one row per shop and day: date, shop_id, orders (zero-filled, as mart_shop_daily)."""
    require_columns(daily, ("date", "shop_id", "orders"), "daily")
    day = (
        pd.Timestamp(as_of).tz_localize(None) if pd.Timestamp(as_of).tzinfo else pd.Timestamp(as_of)
    ).normalize()
    d = pd.to_datetime(daily["date"])
    d = d.dt.tz_localize(None) if d.dt.tz is not None else d
    frame = daily.assign(_d=d.dt.normalize())
    last = day - pd.Timedelta(days=1)
    out = []
    for shop, g in frame.groupby("shop_id"):
        hist = g[(g["_d"] < last) & (g["_d"] >= last - pd.Timedelta(days=window_days))]["orders"].to_numpy(
            dtype=float
        )
        today = g[g["_d"] == last]["orders"].to_numpy(dtype=float)
        if len(hist) < 14 or not len(today):
            continue
        med = float(np.median(hist))
        mad = float(np.median(np.abs(hist - med))) * 1.4826
        spread = max(mad, float(np.sqrt(max(med, 1.0))))  # counts: never tighter than Poisson noise
        z = (float(today[0]) - med) / spread
        if abs(z) < threshold:
            continue
        word = "far more" if z > 0 else "far fewer"
        out.append(
            Insight(
                "anomaly",
                f"Shop {int(shop)} had {word} orders than usual on {last.date()}: "
                f"{int(today[0])} against a typical {med:.0f}.",
                min(1.0, abs(z) / 10.0),
                {"shop_id": int(shop), "date": last.date().isoformat()},
                {"orders": int(today[0]), "typical": med, "robust_z": z},
            )
        )
    return out


def rank(insights: list[Insight], limit: int | None = 20) -> list[Insight]:
    """Most important first; ties by kind and title so the order is stable."""
    ordered = sorted(insights, key=lambda i: (-i.score, i.kind, i.title))
    return ordered[:limit] if limit is not None else ordered
