"""Fraud detection: point-in-time features per order and account, a supervised model (gradient
boosting) on labelled orders with an IsolationForest fallback when labels are too few, evaluated on a
time split, and `score_order` for the API to call while an order is being placed.

Every feature uses only what was known when the order was placed, so the offline features and the
ones the API computes at order time are the same numbers. `FEATURES` documents each one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier, IsolationForest
from sklearn.metrics import average_precision_score, precision_recall_curve, precision_score, recall_score

from ml.checks import require_columns

# name -> how to compute it at the moment the order is placed (t), for the buyer placing it
FEATURES: dict[str, str] = {
    "account_age_hours": "hours from the buyer's sign-up to t",
    "orders_last_hour": "the buyer's orders placed in [t - 1 h, t)",
    "orders_last_day": "the buyer's orders placed in [t - 24 h, t)",
    "failed_logins_last_day": "refused logins of the buyer's account in [t - 24 h, t)",
    "failed_logins_total": "refused logins of the buyer's account before t",
    "prior_orders": "the buyer's orders placed before t",
    "prior_cancellations": "the buyer's orders cancelled before t",
    "views_last_day": "the buyer's product views in [t - 24 h, t)",
    "log_value": "ln(1 + order total)",
    "value_vs_history": "order total / median total of the buyer's earlier orders (1 without any)",
    "units": "items in the order",
}
FEATURE_NAMES = tuple(FEATURES)
MIN_POSITIVES = 10  # fewer labelled frauds than this in training: the unsupervised fallback


@dataclass
class FraudModel:
    kind: str  # "gradient_boosting" or "isolation_forest"
    estimator: GradientBoostingClassifier | IsolationForest
    threshold: float  # scores at or above it are held for review
    features: tuple[str, ...] = FEATURE_NAMES
    metrics: dict[str, Any] = field(default_factory=dict)


# --- features ------------------------------------------------------------------------------------
def order_features(
    orders: pd.DataFrame,
    users: pd.DataFrame,
    *,
    failed_logins: pd.DataFrame | None = None,
    views: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per order: order_id, buyer_id, created_at and every feature in `FEATURES`.

    - orders: order_id, buyer_id, created_at, total_amount (Decimal), units, cancelled_at (nullable).
    - users: user_id, created_at.  failed_logins: user_id, at.  views: user_id, viewed_at.
    """
    require_columns(
        orders, ("order_id", "buyer_id", "created_at", "total_amount", "units", "cancelled_at"), "orders"
    )
    require_columns(users, ("user_id", "created_at"), "users")
    o = orders.copy()
    o["created_at"] = pd.to_datetime(o["created_at"], utc=True)
    o = o.sort_values(["created_at", "order_id"]).reset_index(drop=True)
    signup = pd.to_datetime(users.set_index("user_id")["created_at"], utc=True)
    o["account_age_hours"] = (o["created_at"] - o["buyer_id"].map(signup)).dt.total_seconds() / 3600
    o["value"] = [float(x) for x in o["total_amount"]]
    o["log_value"] = np.log1p(o["value"])
    o["units"] = o["units"].astype(float)
    t = _ns(o["created_at"])
    hour, day = 3600 * 10**9, 86400 * 10**9
    o["orders_last_hour"] = _count_before(o["buyer_id"], t, o["buyer_id"], t, hour)
    o["orders_last_day"] = _count_before(o["buyer_id"], t, o["buyer_id"], t, day)
    o["prior_orders"] = _count_before(o["buyer_id"], t, o["buyer_id"], t, None)
    cancelled = o.dropna(subset=["cancelled_at"])
    o["prior_cancellations"] = _count_before(
        cancelled["buyer_id"],
        _ns(pd.to_datetime(cancelled["cancelled_at"], utc=True)),
        o["buyer_id"],
        t,
        None,
    )
    if failed_logins is not None and len(failed_logins):
        fl = failed_logins.dropna(subset=["user_id"])
        ft = _ns(pd.to_datetime(fl["at"], utc=True))
        o["failed_logins_last_day"] = _count_before(fl["user_id"], ft, o["buyer_id"], t, day)
        o["failed_logins_total"] = _count_before(fl["user_id"], ft, o["buyer_id"], t, None)
    else:
        o["failed_logins_last_day"] = 0.0
        o["failed_logins_total"] = 0.0
    if views is not None and len(views):
        v = views.dropna(subset=["user_id"])
        o["views_last_day"] = _count_before(
            v["user_id"], _ns(pd.to_datetime(v["viewed_at"], utc=True)), o["buyer_id"], t, day
        )
    else:
        o["views_last_day"] = 0.0
    o["value_vs_history"] = _value_vs_history(o)
    cols = ["order_id", "buyer_id", "created_at", *FEATURE_NAMES]
    out = o[cols].copy()
    out[list(FEATURE_NAMES)] = out[list(FEATURE_NAMES)].astype(float)
    return out


def _ns(times: pd.Series) -> np.ndarray:
    return np.asarray(times.astype("datetime64[ns, UTC]").astype("int64"), dtype="int64")


def _count_before(
    ev_keys: pd.Series, ev_times: np.ndarray, keys: pd.Series, times: np.ndarray, window: int | None
) -> np.ndarray:
    """For each (key, time): how many events of that key happened in [time - window, time)."""
    out = np.zeros(len(keys))
    ev = pd.DataFrame({"k": np.asarray(ev_keys, dtype="int64"), "t": ev_times}).sort_values("t")
    by_key = {int(k): g["t"].to_numpy() for k, g in ev.groupby("k")}
    key_arr = np.asarray(keys, dtype="int64")
    for k in np.unique(key_arr):
        arr = by_key.get(int(k))
        if arr is None:
            continue
        idx = np.nonzero(key_arr == k)[0]
        hi = np.searchsorted(arr, times[idx], side="left")
        lo = 0 if window is None else np.searchsorted(arr, times[idx] - window, side="left")
        out[idx] = hi - lo
    return out


def _value_vs_history(o: pd.DataFrame) -> np.ndarray:
    out = np.ones(len(o))
    for _, g in o.groupby("buyer_id", sort=False):
        vals = g["value"].to_numpy()
        for j, i in enumerate(g.index):
            if j:
                med = float(np.median(vals[:j]))
                out[i] = vals[j] / med if med > 0 else 1.0
    return out


def label_orders(features: pd.DataFrame, fraudulent: set[int]) -> np.ndarray:
    labels: np.ndarray = features["order_id"].isin(list(fraudulent)).to_numpy(dtype=int)
    return labels


# --- training ------------------------------------------------------------------------------------
def train_fraud_model(
    features: pd.DataFrame,
    labels: np.ndarray,
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> FraudModel:
    """Evaluates on the last `test_fraction` of the time span (trained on the earlier orders), then
    refits on all orders for use. Supervised when the training part holds at least `MIN_POSITIVES`
    frauds, else an IsolationForest (labels, when any, only pick its threshold and score it).

    metrics: kind, pr_auc, precision, recall (at the threshold), base_rate, train/test orders and
    frauds, threshold, seconds.
    """
    began = time.perf_counter()
    x = features[list(FEATURE_NAMES)].to_numpy(dtype=float)
    y = np.asarray(labels, dtype=int)
    times = pd.to_datetime(features["created_at"], utc=True)
    cutoff = times.min() + (times.max() - times.min()) * (1 - test_fraction)
    tr = (times < cutoff).to_numpy()
    te = ~tr
    metrics: dict[str, Any] = {
        "cutoff": cutoff.isoformat(),
        "train_orders": int(tr.sum()),
        "test_orders": int(te.sum()),
        "train_frauds": int(y[tr].sum()),
        "test_frauds": int(y[te].sum()),
        "base_rate": float(y[te].mean()) if te.any() else float("nan"),
    }
    held = _fit(x[tr], y[tr], seed)
    if te.any():
        s = _scores(held, x[te])
        metrics["kind"] = held.kind
        if 0 < y[te].sum() < te.sum():
            metrics["pr_auc"] = float(average_precision_score(y[te], s))
            pred = (s >= held.threshold).astype(int)
            metrics["precision"] = float(precision_score(y[te], pred, zero_division=0))
            metrics["recall"] = float(recall_score(y[te], pred, zero_division=0))
    final = _fit(x, y, seed)
    metrics["kind"] = final.kind
    metrics["threshold"] = final.threshold
    metrics["seconds"] = round(time.perf_counter() - began, 3)
    final.metrics = metrics
    return final


def _fit(x: np.ndarray, y: np.ndarray, seed: int) -> FraudModel:
    if int(y.sum()) >= MIN_POSITIVES and int(y.sum()) < len(y):
        gb = GradientBoostingClassifier(
            n_estimators=150, max_depth=3, learning_rate=0.1, subsample=0.8, random_state=seed
        )
        gb.fit(x, y)
        model = FraudModel("gradient_boosting", gb, 0.5)
    else:
        iso = IsolationForest(n_estimators=200, contamination="auto", random_state=seed).fit(x)
        model = FraudModel("isolation_forest", iso, 0.6)
    model.threshold = _best_threshold(_scores(model, x), y, model.threshold)
    return model


def _best_threshold(scores: np.ndarray, y: np.ndarray, default: float) -> float:
    """The score that maximises F1 on the training orders (the default without labelled frauds)."""
    if y.sum() == 0 or y.sum() == len(y):
        return default
    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.clip(precision[:-1] + recall[:-1], 1e-12, None)
    return float(thresholds[int(np.argmax(f1))])


def _scores(model: FraudModel, x: np.ndarray) -> np.ndarray:
    if isinstance(model.estimator, GradientBoostingClassifier):
        return np.asarray(model.estimator.predict_proba(x)[:, 1], dtype=float)
    # score_samples is minus the anomaly score, which lies in (0, 1] (1: isolated at once)
    return np.asarray(-model.estimator.score_samples(x), dtype=float)


# --- scoring at order time -----------------------------------------------------------------------
def score_order(model: FraudModel, features: Mapping[str, float]) -> float:
    """The fraud score (0..1) of one order being placed; `features` maps every name in `FEATURES`.
    A missing feature counts as 0 (1 for value_vs_history), never as an error: scoring must not
    block an order."""
    row = np.array(
        [[_value(features, name) for name in model.features]],
        dtype=float,
    )
    return float(_scores(model, row)[0])


def _value(features: Mapping[str, float], name: str) -> float:
    v = features.get(name)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return 1.0 if name == "value_vs_history" else 0.0
    return float(v)


def score_orders(model: FraudModel, features: pd.DataFrame) -> np.ndarray:
    """Scores many orders at once (see `order_features`), e.g. to backfill scores or to evaluate."""
    return _scores(model, features[list(model.features)].to_numpy(dtype=float))


def is_suspicious(model: FraudModel, score: float) -> bool:
    return score >= model.threshold
