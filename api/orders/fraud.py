"""Fraud scoring of an order while it is placed, inside the order's own transaction.

The features are exactly `ml.fraud.FEATURES`, computed for the buyer at the store clock's now with one
statement of index range scans (a row of counts for sign-up, orders, refused logins and views, then the
buyer's earlier orders for the value history and the cancellations), so the numbers the model sees
online are the ones `ml.fraud.order_features` computes offline from the same rows. The model comes from
a `ml.registry.ModelHolder` on `app.state` ("fraud" under `settings.models_dir`): no model serving
means no score and the order is placed as before.

A score at or above the model's threshold holds the order (`review_status = held`): it stays pending
but cannot be paid until staff release it (api/orders/review.py). The hold writes `order.held` and
`security.suspicious_order` and notifies every admin, in the same transaction as the order.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from sqlalchemy import (
    BindParameter,
    ColumnClause,
    ColumnElement,
    CompoundSelect,
    Float,
    ScalarSelect,
    String,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from api.auth.models import Role, User
from api.core.settings import Settings
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.orders.models import Order
from api.outbox.models import Event
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.tracking.models import ProductView
from ml.registry import LoadedModel, ModelHolder

if TYPE_CHECKING:  # ml.fraud imports sklearn and pandas: only loaded once a model is (by unpickling)
    from ml.fraud import FraudModel

log = structlog.get_logger("api.orders.fraud")

FRAUD_MODEL = "fraud"  # the registry name the ML pipeline saves the fraud model under
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
# A literal, not a bound parameter: SQLite uses the partial index ix_events_failed_login only when the
# query's term is the index's own WHERE.
_FAILED_LOGIN: ColumnClause[str] = literal_column("'user.login_failed'", String())


@dataclass(frozen=True)
class Verdict:
    score: float
    threshold: float
    held: bool
    model_version: str
    features: dict[str, float]


def new_holder(settings: Settings) -> ModelHolder:
    """The app's holder of the serving fraud model: loads the newest good version now, then checks the
    registry at most every `model_reload_seconds`, so a newly saved version serves without a restart."""
    assert settings.models_dir is not None  # filled in by the settings' validator
    holder = ModelHolder(settings.models_dir, FRAUD_MODEL, check_seconds=settings.model_reload_seconds)
    warm(holder)
    return holder


def describe(holder: ModelHolder | None) -> dict[str, Any]:
    """The serving version for /health (no registry check: health must stay cheap)."""
    loaded = holder.current if holder is not None else None
    if loaded is None:
        return {"status": "none"}
    return {"status": "ok", "version": loaded.version, "kind": getattr(loaded.model, "kind", None)}


# --- features ------------------------------------------------------------------------------------
def _count(*where: ColumnElement[bool]) -> ScalarSelect[int]:
    return select(func.count()).where(*where).scalar_subquery()


_BUYER: BindParameter[Any] = bindparam("buyer")
_NOW: BindParameter[Any] = bindparam("now")
_HOUR_AGO: BindParameter[Any] = bindparam("hour_ago")
_DAY_AGO: BindParameter[Any] = bindparam("day_ago")
_MINE = Order.buyer_id == _BUYER
_FAILED = (Event.event_type == _FAILED_LOGIN, Event.entity_id == _BUYER)
# Built once, with bound parameters: building these per order costs more than running them. Each count
# is a range scan of one index: ix_orders_buyer_created, ix_events_failed_login (partial),
# ix_product_views_user_created.
_COUNTS = select(
    select(User.created_at).where(User.id == _BUYER).scalar_subquery().label("signup"),
    _count(_MINE, Order.created_at < _NOW).label("prior"),
    _count(_MINE, Order.created_at >= _HOUR_AGO, Order.created_at < _NOW).label("hour"),
    _count(_MINE, Order.created_at >= _DAY_AGO, Order.created_at < _NOW).label("day"),
    _count(*_FAILED, Event.occurred_at < _NOW).label("failed_total"),
    _count(*_FAILED, Event.occurred_at >= _DAY_AGO, Event.occurred_at < _NOW).label("failed_day"),
    _count(
        ProductView.user_id == _BUYER, ProductView.created_at >= _DAY_AGO, ProductView.created_at < _NOW
    ).label("views_day"),
)
# The buyer's earlier orders, read once for the value history and the cancellations (the counts above
# stay in the index). Totals as doubles straight from the database: numeric -> double rounds to
# nearest, as float(Decimal) does offline, without building a Decimal per row.
_HISTORY = select(
    *(null() for _ in _COUNTS.selected_columns),
    cast(Order.total_amount, Float).label("total"),
    case((Order.cancelled_at < _NOW, 1), else_=0).label("cancelled"),
).where(_MINE, Order.created_at <= _NOW)
# One round trip: the counts row (total null) then one row per earlier order (total never null).
_FEATURES: CompoundSelect[Any] = union_all(
    _COUNTS.add_columns(null().label("total"), null().label("cancelled")), _HISTORY
)


def order_time_features(
    s: Session, buyer_id: int, now: datetime, total: Decimal, units: int
) -> dict[str, float]:
    """`ml.fraud.FEATURES` of an order of `buyer_id` at `now` that is not inserted yet.

    Counts are over [window start, now) like the offline `_count_before`; the value history is every
    earlier order of the buyer, which before the insert is every order created at or before now (the
    offline frame orders ties by id, and the new order's id is the largest). A cancellation is only
    ever after its order, so `cancelled_at < now` counts the offline prior cancellations."""
    params = {"buyer": buyer_id, "now": now, "hour_ago": now - HOUR, "day_ago": now - DAY}
    conn = s.connection()  # Core statements: no ORM work to do on these rows
    rows: list[Any] = list(conn.execute(_FEATURES, params))
    (c,) = [r for r in rows if r.total is None]
    history = [(float(r.total), int(r.cancelled)) for r in rows if r.total is not None]
    values = [total for total, _ in history]
    value = float(total)
    median = statistics.median(values) if values else 0.0
    signup: datetime = c.signup
    return {
        "account_age_hours": (now - signup).total_seconds() / 3600,
        "orders_last_hour": float(c.hour),
        "orders_last_day": float(c.day),
        "failed_logins_last_day": float(c.failed_day),
        "failed_logins_total": float(c.failed_total),
        "prior_orders": float(c.prior),
        "prior_cancellations": float(sum(cancelled for _, cancelled in history)),
        "views_last_day": float(c.views_day),
        "log_value": math.log1p(value),
        "value_vs_history": value / median if values and median > 0 else 1.0,
        "units": float(units),
    }


# --- scoring -------------------------------------------------------------------------------------
def check_order(
    loaded: LoadedModel | None, s: Session, buyer_id: int, now: datetime, total: Decimal, units: int
) -> Verdict | None:
    """The verdict of the serving model (`ModelHolder.get()`, taken before the order's first write) on
    an order about to be inserted, or None without a model. A scoring failure is logged and the order
    goes through unscored: fraud checks must never block a sale."""
    if loaded is None:
        return None
    features = order_time_features(s, buyer_id, now, total, units)
    try:
        score = score_loaded(loaded, features)
    except Exception:
        log.exception("fraud_scoring_failed", model_version=loaded.version)
        return None
    model: FraudModel = loaded.model
    return Verdict(score, float(model.threshold), score >= model.threshold, loaded.version, features)


def score_loaded(loaded: LoadedModel, features: dict[str, float]) -> float:
    """`ml.fraud.score_order`, on the model's trees flattened to Python lists: sklearn spends ~0.5 ms
    validating one row for the boosted model and ~20 ms for the 200-tree IsolationForest (a loop of
    validated calls per tree); walking the same trees here takes ~0.1 ms and gives the same number
    (checked against sklearn in tests/api/test_fraud.py). Other estimators go to sklearn."""
    model: FraudModel = loaded.model
    fast = _fast(loaded)
    if fast is None:
        from ml.fraud import score_order

        return score_order(model, features)
    from ml.fraud import _value

    # sklearn's trees compare float32 inputs with their thresholds: round the same way.
    row = np.asarray([_value(features, name) for name in model.features], dtype=np.float32).tolist()
    return fast.score(row)


_Tree = tuple[list[int], list[int], list[int], list[float], list[float]]


def _flatten(tree: Any, leaf: list[float], features: Any = None) -> _Tree:
    """A fitted sklearn tree as (left, right, feature, threshold, value per node) lists."""
    t = tree.tree_
    feature = [int(f) for f in t.feature]
    if features is not None:  # the tree was fit on a subset of the columns
        feature = [int(features[f]) if f >= 0 else f for f in feature]
    return (t.children_left.tolist(), t.children_right.tolist(), feature, t.threshold.tolist(), leaf)


def _leaf(tree: _Tree, x: list[float]) -> float:
    left, right, feature, threshold, value = tree
    node = 0
    while left[node] != -1:
        node = left[node] if x[feature[node]] <= threshold[node] else right[node]
    return value[node]


class _Forest:
    """IsolationForest: the score is 2 ** -(mean path length / c(max_samples)); each leaf holds the
    path length sklearn adds for it (depth + average path length of its samples - 1)."""

    def __init__(self, estimator: Any) -> None:
        subsample = estimator._max_features != estimator.n_features_in_
        self.trees = [
            _flatten(
                tree,
                (np.asarray(depths, dtype=float) + np.asarray(avg, dtype=float) - 1.0).tolist(),
                feats if subsample else None,
            )
            for tree, feats, depths, avg in zip(
                estimator.estimators_,
                estimator.estimators_features_,
                estimator._decision_path_lengths,
                estimator._average_path_length_per_tree,
                strict=True,
            )
        ]
        from sklearn.ensemble._iforest import _average_path_length

        self.denominator = len(self.trees) * float(_average_path_length([estimator._max_samples])[0])

    def score(self, x: list[float]) -> float:
        depth = 0.0
        for tree in self.trees:
            depth += _leaf(tree, x)
        return 1.0 if self.denominator == 0 else float(2 ** (-depth / self.denominator))


class _Boosted:
    """Binary GradientBoostingClassifier: sigmoid(prior log-odds + learning rate * sum of tree leaves)."""

    def __init__(self, estimator: Any) -> None:
        self.init = float(estimator._raw_predict_init(np.zeros((1, estimator.n_features_in_)))[0, 0])
        self.rate = float(estimator.learning_rate)
        self.trees = [_flatten(t, t.tree_.value[:, 0, 0].tolist()) for t in estimator.estimators_[:, 0]]

    def score(self, x: list[float]) -> float:
        raw = self.init
        for tree in self.trees:
            raw += self.rate * _leaf(tree, x)
        return float(1.0 / (1.0 + math.exp(-raw)))


_FAST: dict[str, _Forest | _Boosted | None] = {}


def _fast(loaded: LoadedModel) -> _Forest | _Boosted | None:
    key = f"{loaded.name}/{loaded.version}"
    if key not in _FAST:
        from sklearn.ensemble import GradientBoostingClassifier, IsolationForest

        estimator = getattr(loaded.model, "estimator", None)
        fast: _Forest | _Boosted | None = None
        if isinstance(estimator, IsolationForest):
            fast = _Forest(estimator)
        elif (
            isinstance(estimator, GradientBoostingClassifier)
            and estimator.n_trees_per_iteration_ == 1
            and estimator.init_ != "zero"
        ):
            fast = _Boosted(estimator)
        while len(_FAST) >= 4:  # the serving version and the few before it; the oldest goes first
            del _FAST[next(iter(_FAST))]
        _FAST[key] = fast
    return _FAST[key]


def warm(holder: ModelHolder) -> None:
    """Prepares the serving model's fast path ahead of the first order (start-up, after a swap)."""
    loaded = holder.current
    if loaded is not None:
        _fast(loaded)


# --- holding an order ----------------------------------------------------------------------------
def hold(uow: Uow, order: Order, verdict: Verdict) -> None:
    """The events and notifications of a held order, in the order's transaction."""
    score = round(verdict.score, 6)
    uow.emit(
        EventType.order_held,
        "order",
        order.id,
        {
            "buyerId": order.buyer_id,
            "score": score,
            "threshold": verdict.threshold,
            "modelVersion": verdict.model_version,
        },
        shop_id=order.shop_id,
        order_id=order.id,
    )
    uow.emit(
        EventType.security_suspicious_order,
        "user",
        order.buyer_id,
        {"orderId": order.id, "score": score, "features": verdict.features},
        shop_id=order.shop_id,
        order_id=order.id,
    )
    admins = uow.session.execute(
        select(User.id).where(User.role == Role.admin.value, User.is_active.is_(True)).order_by(User.id)
    ).scalars()
    for admin_id in admins.all():
        notify(
            uow,
            admin_id,
            NotificationType.system,
            f"Order #{order.id} held for fraud review",
            f"Fraud score {score:.3f} (threshold {verdict.threshold:.3f}): review it before it can be paid",
            {"orderId": order.id, "shopId": order.shop_id, "buyerId": order.buyer_id, "score": score},
        )
