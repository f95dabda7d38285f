"""Price response: the chance that a product view ends in a purchase, as a function of the product's
price relative to its category's reference price; and the revenue-maximising price per product.

The model is a logistic regression on the log of the relative price (with a square term, so the
response may bend) plus the category and the day of the week; the baseline is the same regression
without the price terms. Both are fitted on the earlier views and scored on the later ones (a time
split), so "the price model beats the baseline" means price carries information the calendar and the
category do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from ml.checks import require_columns

FEATURES = ("log_rel_price", "log_rel_price_sq")
# Relative prices outside this band are clipped: the catalogue (and so the evidence) lies inside it.
REL_MIN, REL_MAX = 0.4, 2.5
CENT = Decimal("0.01")


@dataclass
class PriceModel:
    """A fitted price response. `categories` are the one-hot columns it knows (others count as none)."""

    model: LogisticRegression
    categories: list[int]
    reference: dict[int, float]
    metrics: dict[str, Any] = field(default_factory=dict)
    slope: float = 0.0  # d log-odds / d log relative price at the reference: < 0 means dearer sells less

    def purchase_probability(
        self, category_id: int, rel_price: np.ndarray, weekday: int | None = None
    ) -> np.ndarray:
        """P(buy | view) at each relative price, averaged over the week unless `weekday` is given."""
        rel = np.asarray(rel_price, dtype=float)
        days = [weekday] if weekday is not None else list(range(7))
        probs = np.zeros(len(rel))
        for d in days:
            frame = pd.DataFrame({"rel_price": rel, "category_id": category_id, "weekday": d})
            probs += self.model.predict_proba(_design(frame, self.categories, with_price=True))[:, 1]
        return probs / len(days)


# --- input ---------------------------------------------------------------------------------------
def category_reference(products: pd.DataFrame) -> dict[int, float]:
    """Each category's reference price: the median price of its active products.

    `products`: product_id, category_id, price (Decimal), is_active."""
    require_columns(products, ("category_id", "price", "is_active"), "products")
    p = products[products["is_active"].astype(bool)].dropna(subset=["category_id"])
    med = p.groupby("category_id")["price"].agg(lambda s: float(np.median([float(x) for x in s])))
    return {int(k): float(v) for k, v in med.items() if v > 0}


def label_purchases(
    views: pd.DataFrame, order_lines: pd.DataFrame, *, window: pd.Timedelta = pd.Timedelta(hours=2)
) -> pd.DataFrame:
    """Marks each view that led to a purchase: an order line of the same user and product placed within
    `window` after the view, attributed to the latest such view (one purchase, one converting view).

    `views`: one row per signed-in product view: user_id, product_id, category_id, viewed_at (UTC),
    price (Decimal: the product's price at that moment).
    `order_lines`: order_id, buyer_id, product_id, created_at (UTC).
    Returns `views` (sorted by time) with a boolean `purchased` column.
    """
    require_columns(views, ("user_id", "product_id", "category_id", "viewed_at", "price"), "views")
    require_columns(order_lines, ("order_id", "buyer_id", "product_id", "created_at"), "order_lines")
    v = views.dropna(subset=["user_id"]).sort_values("viewed_at").reset_index(drop=True)
    v["_row"] = np.arange(len(v))
    o = order_lines.rename(columns={"buyer_id": "user_id"})[["user_id", "product_id", "created_at"]]
    o = o.dropna().sort_values("created_at")
    left = o.astype({"user_id": "int64", "product_id": "int64"})
    right = v[["user_id", "product_id", "viewed_at", "_row"]].astype(
        {"user_id": "int64", "product_id": "int64"}
    )
    matched = pd.merge_asof(
        left,
        right,
        left_on="created_at",
        right_on="viewed_at",
        by=["user_id", "product_id"],
        direction="backward",
        tolerance=window,
    )
    hits = set(matched["_row"].dropna().astype(int))
    v["purchased"] = v["_row"].isin(hits)
    return v.drop(columns="_row")


def _relative(views: pd.DataFrame, reference: dict[int, float]) -> pd.DataFrame:
    f = views.dropna(subset=["category_id"]).copy()
    f["category_id"] = f["category_id"].astype("int64")
    ref = f["category_id"].map(reference)
    f = f[ref.notna()].copy()
    f["rel_price"] = [float(p) for p in f["price"]] / f["category_id"].map(reference).astype(float)
    f["weekday"] = pd.to_datetime(f["viewed_at"], utc=True).dt.day_of_week
    return f


def _design(frame: pd.DataFrame, categories: list[int], *, with_price: bool) -> np.ndarray:
    cols: list[np.ndarray] = []
    if with_price:
        lr = np.log(np.clip(frame["rel_price"].to_numpy(dtype=float), REL_MIN, REL_MAX))
        cols += [lr, lr**2]
    cat = frame["category_id"].to_numpy()
    cols += [(cat == c).astype(float) for c in categories[1:]]  # first category is the intercept's
    wd = frame["weekday"].to_numpy()
    cols += [(wd == d).astype(float) for d in range(1, 7)]
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


# --- training and evaluation ---------------------------------------------------------------------
def train_price_model(
    views: pd.DataFrame,
    reference: dict[int, float],
    *,
    test_fraction: float = 0.25,
) -> PriceModel:
    """Fits the price response on labelled views (see `label_purchases`), evaluated on the last
    `test_fraction` of the time span, then refitted on every view for use.

    metrics: log_loss, auc (price model) and log_loss_baseline, auc_baseline (no price), on held-out
    views; train_views, test_views, test_purchases, cutoff; slope (log-odds per log relative price at
    the reference) and the purchase rate by relative-price band on the held-out views.
    """
    require_columns(views, ("purchased",), "views")
    f = _relative(views, reference)
    if f["purchased"].nunique() < 2:
        raise ValueError("the views need both purchases and non-purchases")
    times = pd.to_datetime(f["viewed_at"], utc=True)
    cutoff = times.min() + (times.max() - times.min()) * (1 - test_fraction)
    train, test = f[times < cutoff], f[times >= cutoff]
    categories = sorted(int(c) for c in f["category_id"].unique())
    metrics: dict[str, Any] = {
        "cutoff": cutoff.isoformat(),
        "train_views": len(train),
        "test_views": len(test),
        "test_purchases": int(test["purchased"].sum()),
    }
    if train["purchased"].nunique() == 2 and test["purchased"].nunique() == 2:
        y_test = test["purchased"].to_numpy(dtype=int)
        for name, with_price in (("", True), ("_baseline", False)):
            m = _fit(train, categories, with_price)
            p = m.predict_proba(_design(test, categories, with_price=with_price))[:, 1]
            metrics[f"log_loss{name}"] = float(log_loss(y_test, p, labels=[0, 1]))
            metrics[f"auc{name}"] = float(roc_auc_score(y_test, p))
        metrics["log_loss_gain"] = metrics["log_loss_baseline"] - metrics["log_loss"]
        bands = pd.cut(test["rel_price"], [0, 0.8, 0.95, 1.05, 1.25, np.inf])
        metrics["held_out_rate_by_band"] = {
            str(k): round(float(v), 4)
            for k, v in test.groupby(bands, observed=True)["purchased"].mean().items()
        }
    model = _fit(f, categories, True)
    slope = float(model.coef_[0][0])  # d/dx of b1*x + b2*x^2 at x = log(1) = 0
    metrics["slope"] = slope
    return PriceModel(model, categories, dict(reference), metrics, slope)


def _fit(frame: pd.DataFrame, categories: list[int], with_price: bool) -> LogisticRegression:
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(_design(frame, categories, with_price=with_price), frame["purchased"].to_numpy(dtype=int))
    return model


# --- pricing -------------------------------------------------------------------------------------
def recommend_prices(
    model: PriceModel,
    products: pd.DataFrame,
    *,
    max_change: float = 0.3,
    steps: int = 25,
) -> pd.DataFrame:
    """The revenue-maximising price per product, searched within +-`max_change` of today's price.

    Expected revenue per view at price x is P(buy | x / reference) * x (quantity per order does not
    depend on price in the model). `products`: product_id, category_id, price (Decimal), is_active.

    Returns one row per priced product: product_id, category_id, price, recommended_price (Decimal,
    cents), rel_price, recommended_rel_price, purchase_probability, recommended_purchase_probability,
    revenue_per_100_views, recommended_revenue_per_100_views (Decimal), expected_revenue_change
    (fraction, e.g. 0.12 = +12 %).
    """
    require_columns(products, ("product_id", "category_id", "price", "is_active"), "products")
    factors = np.linspace(1 - max_change, 1 + max_change, steps)
    p = products[products["is_active"].astype(bool)].dropna(subset=["category_id"]).copy()
    p["category_id"] = p["category_id"].astype("int64")
    p["ref"] = p["category_id"].map(model.reference)
    p = p[p["ref"].notna() & (p["price"].map(lambda x: Decimal(x) > 0))]
    if p.empty:
        return pd.DataFrame()
    price = np.array([float(x) for x in p["price"]])
    grid = price[:, None] * factors[None, :]  # one row per product, one column per candidate price
    flat = pd.DataFrame(
        {
            "rel_price": (grid / p["ref"].to_numpy(dtype=float)[:, None]).ravel(),
            "category_id": np.repeat(p["category_id"].to_numpy(), steps),
        }
    )
    summed = np.zeros(len(flat))
    for day in range(7):  # averaged over the week, as a price holds every day
        design = _design(flat.assign(weekday=day), model.categories, with_price=True)
        summed += model.model.predict_proba(design)[:, 1]
    prob = (summed / 7).reshape(len(p), steps)
    revenue = prob * grid
    now = int(np.argmin(np.abs(factors - 1.0)))
    best = revenue.argmax(axis=1)
    rows = np.arange(len(p))
    best_price = [Decimal(str(v)).quantize(CENT, ROUND_HALF_UP) for v in grid[rows, best]]
    ref = p["ref"].to_numpy(dtype=float)
    now_rev, best_rev = revenue[:, now], revenue[rows, best]
    return pd.DataFrame(
        {
            "product_id": p["product_id"].astype("int64").to_numpy(),
            "category_id": p["category_id"].to_numpy(),
            "price": [Decimal(x) for x in p["price"]],
            "recommended_price": best_price,
            "rel_price": price / ref,
            "recommended_rel_price": np.array([float(b) for b in best_price]) / ref,
            "purchase_probability": prob[:, now],
            "recommended_purchase_probability": prob[rows, best],
            "revenue_per_100_views": [_money(100 * v) for v in now_rev],
            "recommended_revenue_per_100_views": [_money(100 * v) for v in best_rev],
            "expected_revenue_change": np.where(
                now_rev > 0, best_rev / np.where(now_rev > 0, now_rev, 1) - 1, 0.0
            ),
        }
    )


def _money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 2))).quantize(CENT, ROUND_HALF_UP)
