"""Customer segmentation: RFM plus behaviour features, scaled, k-means with k chosen by silhouette,
each segment named from its centroid's profile.

The features say how a buyer shops, not only how much: how often they buy what they look at, how dear
what they look at is against its category, how many price alerts they set, how faithful they are to a
few shops, how many items go in an order and how often they cancel. Rates are shrunk towards the
population's rate for buyers with little history, so a buyer with two views is not an extreme.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from ml.checks import require_columns

# What k-means sees (after the transforms in `_matrix`).
CLUSTER_FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "views",
    "views_per_day",
    "conversion",
    "view_rel_price",
    "alerts_per_view",
    "follows_per_view",
    "shop_concentration",
    "units_per_order",
    "cancel_rate",
    "chats",
    "tenure_days",
)
# Weights after scaling: how someone shops (rates, price level, session length) at full weight; how long
# they have been around and how much they bought at half, so lifecycle and volume do not split buyers
# who shop alike into separate segments.
FEATURE_WEIGHTS: dict[str, float] = {
    "recency_days": 0.5,
    "tenure_days": 0.5,
    "monetary": 0.5,
    "views": 0.5,
    "chats": 0.5,
}
# Pseudo-counts for the shrunk rates: a buyer's rate weighs in as their evidence reaches this size.
PRIOR_VIEWS = 10.0
PRIOR_ORDERS = 3.0


@dataclass
class Segmentation:
    """`users`: user_id, segment (int), segment_name, plus every feature. `profiles`: one row per
    segment: size, share and the mean of each feature. `metrics`: k, silhouette per k tried, seconds."""

    users: pd.DataFrame
    profiles: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    scaler: StandardScaler | None = None
    model: KMeans | None = None


# --- features ------------------------------------------------------------------------------------
def user_features(
    users: pd.DataFrame,
    orders: pd.DataFrame,
    views: pd.DataFrame,
    *,
    reference: dict[int, float],
    as_of: pd.Timestamp,
    messages: pd.DataFrame | None = None,
    price_alerts: pd.DataFrame | None = None,
    follows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per buyer (role 'buyer') who signed up by `as_of`, from what happened before `as_of`.

    Inputs (UTC times; only rows before `as_of` count):
    - users: user_id, role, created_at.
    - orders: order_id, buyer_id, created_at, status, total_amount (Decimal), units.
    - views: user_id, product_id, category_id, shop_id, viewed_at, price (Decimal at view time).
    - messages: user_id (the buyer who wrote), at. price_alerts: user_id, at. follows: user_id, at.
    - reference: category_id -> reference price (see `ml.price.category_reference`).

    Columns: tenure_days, recency_days (days since the last order; tenure when none), frequency
    (orders not cancelled), lifetime_orders (all placed), monetary (Decimal: value of orders paid and
    not cancelled), avg_order_value (Decimal), units_per_order, cancel_rate, views, active_days,
    views_per_day (views per day with any view: a session's length), conversion (frequency / views,
    shrunk), view_rel_price (median price / category reference of what
    they viewed), alerts, alerts_per_view, follows, follows_per_view, shop_concentration (share of views
    in their two most viewed shops), chats (messages written).
    """
    require_columns(users, ("user_id", "role", "created_at"), "users")
    require_columns(
        orders, ("order_id", "buyer_id", "created_at", "status", "total_amount", "units"), "orders"
    )
    require_columns(views, ("user_id", "product_id", "category_id", "shop_id", "viewed_at", "price"), "views")
    as_of = pd.Timestamp(as_of)
    u = users[
        (users["role"].astype(str) == "buyer") & (pd.to_datetime(users["created_at"], utc=True) < as_of)
    ]
    out = pd.DataFrame({"user_id": u["user_id"].astype("int64").to_numpy()}).set_index("user_id")
    out["tenure_days"] = (
        (as_of - pd.to_datetime(u["created_at"], utc=True)).dt.total_seconds() / 86400
    ).to_numpy()

    o = orders[pd.to_datetime(orders["created_at"], utc=True) < as_of].copy()
    o["cancelled"] = o["status"].astype(str) == "cancelled"
    o["created_at"] = pd.to_datetime(o["created_at"], utc=True)
    kept = o[~o["cancelled"]]
    paid_value = kept.groupby("buyer_id")["total_amount"].agg(
        lambda s: sum((Decimal(x) for x in s), Decimal(0))
    )
    g_all = o.groupby("buyer_id")
    out["lifetime_orders"] = g_all.size().reindex(out.index, fill_value=0)
    out["frequency"] = kept.groupby("buyer_id").size().reindex(out.index, fill_value=0)
    out["monetary"] = [paid_value.get(i, Decimal(0)) for i in out.index]
    last = kept.groupby("buyer_id")["created_at"].max()
    out["recency_days"] = ((as_of - last).dt.total_seconds() / 86400).reindex(out.index)
    out["recency_days"] = out["recency_days"].fillna(out["tenure_days"])
    out["avg_order_value"] = [
        (m / f).quantize(Decimal("0.01")) if f else Decimal(0)
        for m, f in zip(out["monetary"], out["frequency"], strict=True)
    ]
    units = g_all["units"].sum().reindex(out.index, fill_value=0)
    cancels = g_all["cancelled"].sum().reindex(out.index, fill_value=0)
    n = out["lifetime_orders"].astype(float)
    # Shrunk towards the population: one order of two items says little about a buyer.
    pop_units = float(units.sum() / n.sum()) if n.sum() else 1.0
    pop_cancel = float(cancels.sum() / n.sum()) if n.sum() else 0.0
    out["units_per_order"] = (units + PRIOR_ORDERS * pop_units) / (n + PRIOR_ORDERS)
    out["cancel_rate"] = (cancels + PRIOR_ORDERS * pop_cancel) / (n + PRIOR_ORDERS)

    v = views[pd.to_datetime(views["viewed_at"], utc=True) < as_of].dropna(subset=["user_id"]).copy()
    v["user_id"] = v["user_id"].astype("int64")
    v["rel"] = [float(p) for p in v["price"]] / v["category_id"].map(reference).astype(float)
    gv = v.groupby("user_id")
    out["views"] = gv.size().reindex(out.index, fill_value=0)
    # nunique over a day column, not a lambda: pandas casts a UDF's small integer results back to the
    # input's datetime dtype on few groups.
    v["day"] = pd.to_datetime(v["viewed_at"], utc=True).dt.floor("D")
    active_days = v.groupby("user_id")["day"].nunique()
    out["active_days"] = active_days.reindex(out.index, fill_value=0).astype("int64")
    nv = out["views"].astype(float)
    # views in a day they came: a session's length (window shoppers and bargain hunters browse longer)
    out["views_per_day"] = (nv / out["active_days"].clip(lower=1)).where(out["active_days"] > 0, 0.0)
    pop_conv = float(out["frequency"].sum() / nv.sum()) if nv.sum() else 0.0
    out["conversion"] = (out["frequency"] + PRIOR_VIEWS * pop_conv) / (nv + PRIOR_VIEWS)
    pop_rel = float(v["rel"].median()) if len(v) else 1.0
    med_rel = gv["rel"].median().reindex(out.index)
    out["view_rel_price"] = ((med_rel.fillna(pop_rel) * nv) + PRIOR_VIEWS * pop_rel) / (nv + PRIOR_VIEWS)
    top2 = gv["shop_id"].agg(lambda s: s.value_counts().head(2).sum()).reindex(out.index, fill_value=0)
    pop_conc = float(top2.sum() / nv.sum()) if nv.sum() else 0.0
    out["shop_concentration"] = (top2 + PRIOR_VIEWS * pop_conc) / (nv + PRIOR_VIEWS)

    for name, frame in (("alerts", price_alerts), ("follows", follows), ("chats", messages)):
        if frame is None or frame.empty:
            out[name] = 0
            continue
        require_columns(frame, ("user_id", "at"), name)
        f = frame[pd.to_datetime(frame["at"], utc=True) < as_of]
        out[name] = f.groupby("user_id").size().reindex(out.index, fill_value=0)
    for name in ("alerts", "follows"):
        pop = float(out[name].sum() / nv.sum()) if nv.sum() else 0.0
        out[f"{name}_per_view"] = (out[name] + PRIOR_VIEWS * pop) / (nv + PRIOR_VIEWS)
    int_cols = ["lifetime_orders", "frequency", "views", "active_days", "alerts", "follows", "chats"]
    out[int_cols] = out[int_cols].astype("int64")
    return out.reset_index()


def _matrix(features: pd.DataFrame) -> np.ndarray:
    """Counts and money on a log scale (a few heavy buyers must not own an axis), rates as they are."""
    f = features
    cols = {
        "recency_days": np.log1p(f["recency_days"].astype(float).clip(lower=0)),
        "frequency": np.log1p(f["frequency"].astype(float)),
        "monetary": np.log1p(np.array([float(x) for x in f["monetary"]])),
        "views": np.log1p(f["views"].astype(float)),
        "views_per_day": np.log1p(f["views_per_day"].astype(float)),
        "conversion": f["conversion"].astype(float),
        "view_rel_price": np.log(f["view_rel_price"].astype(float).clip(lower=0.05)),
        "alerts_per_view": f["alerts_per_view"].astype(float),
        "follows_per_view": f["follows_per_view"].astype(float),
        "shop_concentration": f["shop_concentration"].astype(float),
        "units_per_order": f["units_per_order"].astype(float),
        "cancel_rate": f["cancel_rate"].astype(float),
        "chats": np.log1p(f["chats"].astype(float)),
        "tenure_days": np.log1p(f["tenure_days"].astype(float).clip(lower=0)),
    }
    return np.column_stack([np.asarray(cols[c], dtype=float) for c in CLUSTER_FEATURES])


def _weights() -> np.ndarray:
    return np.array([FEATURE_WEIGHTS.get(c, 1.0) for c in CLUSTER_FEATURES])


# --- clustering ----------------------------------------------------------------------------------
def segment_users(
    features: pd.DataFrame,
    *,
    k_range: range = range(3, 9),
    seed: int = 0,
    sample: int = 5000,
) -> Segmentation:
    """Scales the features, tries k-means for every k in `k_range`, keeps the k with the best
    silhouette (computed on at most `sample` users), and names the segments from their profiles."""
    import time

    began = time.perf_counter()
    require_columns(features, ("user_id", *CLUSTER_FEATURES), "features")
    if len(features) < max(k_range) + 1:
        raise ValueError(f"{len(features)} users are too few to try up to {max(k_range)} segments")
    scaler = StandardScaler()
    x = scaler.fit_transform(_matrix(features)) * _weights()
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    scores: dict[int, float] = {}
    fitted: dict[int, KMeans] = {}
    for k in k_range:
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(x)
        scores[k] = float(silhouette_score(x[idx], km.labels_[idx]))
        fitted[k] = km
    best = max(scores, key=lambda k: (round(scores[k], 3), -k))  # ties go to the simpler model
    km = fitted[best]
    users = features.copy()
    users["segment"] = km.labels_.astype(int)
    profiles = _profiles(users)
    names = name_segments(profiles)
    users["segment_name"] = users["segment"].map(names)
    profiles["segment_name"] = profiles.index.map(names)
    metrics = {
        "k": best,
        "silhouette": scores[best],
        "silhouette_by_k": scores,
        "users": len(users),
        "seconds": round(time.perf_counter() - began, 3),
    }
    return Segmentation(users, profiles.reset_index(), metrics, scaler, km)


def _profiles(users: pd.DataFrame) -> pd.DataFrame:
    numeric = users.copy()
    numeric["monetary"] = [float(x) for x in numeric["monetary"]]
    g = numeric.groupby("segment")
    prof = g[list(CLUSTER_FEATURES)].mean()
    prof.insert(0, "size", g.size())
    prof.insert(1, "share", prof["size"] / prof["size"].sum())
    return prof


# Each archetype's traits, as weights on a segment's profile in population z-scores. A name's score is
# the weighted mean of the traits, so names with more traits do not outbid the others.
ARCHETYPES: dict[str, dict[str, float]] = {
    "champions": {"frequency": 1, "monetary": 1, "recency_days": -1},
    "loyal": {"shop_concentration": 1, "follows_per_view": 1, "frequency": 0.5},
    "big spenders": {"units_per_order": 1, "monetary": 0.5, "conversion": 0.5},
    "bargain hunters": {"alerts_per_view": 1, "view_rel_price": -1},
    "window shoppers": {"views": 1, "conversion": -2},
    "at risk": {"recency_days": 1, "frequency": 0.5, "views": -1},
    "new": {"tenure_days": -1, "views": -0.5},
    "suspicious": {"cancel_rate": 1, "frequency": 0.5, "views": -1, "tenure_days": -0.5},
}


def _name_scores(z: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            name: sum(w * z[f] for f, w in traits.items()) / sum(abs(w) for w in traits.values())
            for name, traits in ARCHETYPES.items()
        }
    )


def name_segments(profiles: pd.DataFrame) -> dict[int, str]:
    """Names each segment (index: segment id) by matching its profile against the named archetypes,
    one name per segment (Hungarian assignment); beyond eight segments names repeat with a number."""
    feats = profiles[list(CLUSTER_FEATURES)].astype(float)
    w = profiles["size"].astype(float)
    mean = (feats.mul(w, axis=0)).sum() / w.sum()
    std = np.sqrt((((feats - mean) ** 2).mul(w, axis=0)).sum() / w.sum()).replace(0, 1.0)
    scores = _name_scores((feats - mean) / std)
    names: dict[int, str] = {}
    remaining = list(scores.index)
    round_no = 1
    while remaining:
        s = scores.loc[remaining]
        rows, cols = linear_sum_assignment(-s.to_numpy())
        for r, c in zip(rows, cols, strict=True):
            label = str(s.columns[c])
            names[int(s.index[r])] = label if round_no == 1 else f"{label} {round_no}"
        remaining = [i for i in remaining if i not in names]
        round_no += 1
    return names


def assign_segments(segmentation: Segmentation, features: pd.DataFrame) -> pd.DataFrame:
    """Scores new users with a fitted segmentation: user_id, segment, segment_name."""
    if segmentation.scaler is None or segmentation.model is None:
        raise ValueError("the segmentation has no fitted model")
    if features.empty:  # e.g. the week before a platform's first week: nobody to score
        return pd.DataFrame({"user_id": [], "segment": [], "segment_name": []})
    labels = segmentation.model.predict(segmentation.scaler.transform(_matrix(features)) * _weights())
    names = dict(zip(segmentation.profiles["segment"], segmentation.profiles["segment_name"], strict=True))
    return pd.DataFrame({"user_id": features["user_id"].to_numpy(), "segment": labels}).assign(
        segment_name=lambda d: d["segment"].map(names)
    )


def persona_agreement(users: pd.DataFrame, personas: pd.Series) -> float:
    """Adjusted Rand index between the segments and planted personas (a Series user_id -> persona)."""
    known = users[users["user_id"].isin(personas.index)]
    return float(adjusted_rand_score(known["user_id"].map(personas), known["segment"]))


def segment_shifts(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Segment sizes in two runs (user_id, segment_name each): segment_name, before, after, change."""
    b = before.groupby("segment_name").size().rename("before")
    a = after.groupby("segment_name").size().rename("after")
    out = pd.concat([b, a], axis=1).fillna(0).astype("int64")
    out["change"] = out["after"] - out["before"]
    return out.reset_index().rename(columns={"index": "segment_name"})
