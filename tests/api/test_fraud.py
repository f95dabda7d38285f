"""Fraud scoring at POST /api/orders: holds, staff review, model hot swap, and online == offline features.

The model is a real `ml.fraud.train_fraud_model` fit on a frame of clear patterns (young accounts with
refused logins and bursts of dear orders are fraud), saved with `ml.registry.save_model` into the
app's `models_dir`, which the app re-checks on every order here (`model_reload_seconds=0`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from api.core.settings import Settings
from api.orders import fraud as order_fraud
from api.orders.models import Order
from ml.fraud import FEATURE_NAMES, FraudModel, order_features, score_order, train_fraud_model
from ml.registry import LoadedModel, save_model
from tests.api.test_orders import notifications, place, stock
from tests.helpers import PASSWORD, Actor, Api, data, error
from tests.ml.frames import read_frames

V1, V2, V3 = (f"2026010{d}T000000000000Z-00000{d}" for d in (1, 2, 3))


# --- the model -----------------------------------------------------------------------------------
def _pattern_frame(n_normal: int = 900, n_fraud: int = 120, seed: int = 7) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def rows(n: int, fraud: bool) -> pd.DataFrame:
        if fraud:
            failed_day = rng.integers(3, 11, n)
            cols = {
                "account_age_hours": rng.uniform(0, 3, n),
                "orders_last_hour": rng.integers(0, 6, n),
                "orders_last_day": rng.integers(0, 8, n),
                "failed_logins_last_day": failed_day,
                "failed_logins_total": failed_day + rng.integers(0, 3, n),
                "prior_orders": rng.integers(0, 8, n),
                "prior_cancellations": np.zeros(n),
                "views_last_day": rng.integers(0, 3, n),
                "log_value": np.log1p(rng.uniform(500, 5000, n)),
                "value_vs_history": rng.uniform(1, 20, n),
                "units": rng.integers(1, 6, n),
            }
        else:
            cols = {
                "account_age_hours": rng.uniform(24, 5000, n),
                "orders_last_hour": rng.integers(0, 2, n),
                "orders_last_day": rng.integers(0, 3, n),
                "failed_logins_last_day": rng.integers(0, 2, n),
                "failed_logins_total": rng.integers(0, 3, n),
                "prior_orders": rng.integers(0, 50, n),
                "prior_cancellations": rng.integers(0, 3, n),
                "views_last_day": rng.integers(0, 30, n),
                "log_value": np.log1p(rng.uniform(5, 300, n)),
                "value_vs_history": rng.uniform(0.5, 2, n),
                "units": rng.integers(1, 4, n),
            }
        return pd.DataFrame(cols).astype(float).assign(fraud=int(fraud))

    frame = pd.concat([rows(n_normal, False), rows(n_fraud, True)]).sample(frac=1, random_state=seed)
    frame = frame.reset_index(drop=True)
    frame["order_id"] = np.arange(1, len(frame) + 1)
    frame["created_at"] = [start + timedelta(minutes=int(i)) for i in range(len(frame))]
    return frame[["order_id", "created_at", *FEATURE_NAMES]], frame["fraud"].to_numpy()


@pytest.fixture(scope="module")
def fraud_model() -> FraudModel:
    features, labels = _pattern_frame()
    model = train_fraud_model(features, labels)
    assert model.kind == "gradient_boosting"
    return model


@pytest.fixture(scope="module")
def forest_model() -> FraudModel:
    features, _ = _pattern_frame(seed=11)
    model = train_fraud_model(features, np.zeros(len(features), dtype=int))  # no labels: the fallback
    assert model.kind == "isolation_forest"
    return model


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"model_reload_seconds": 0.0})


def models_dir(api: Api) -> Path:
    root = api.client.app.state.settings.models_dir  # type: ignore[attr-defined]
    assert isinstance(root, Path)
    return root


def publish(api: Api, model: Any, version: str) -> str:
    return save_model(
        models_dir(api), order_fraud.FRAUD_MODEL, model, features=FEATURE_NAMES, version=version
    )


# --- the store -----------------------------------------------------------------------------------
@pytest.fixture
def world(api: Api) -> SimpleNamespace:
    admin = api.user("admin")
    analyst = api.user("analyst")
    seller = api.user("seller")
    shop = api.shop(seller)
    cheap = api.product(seller, shop["id"], price="50.00", stock=100)
    dear = api.product(seller, shop["id"], price="1000.00", stock=100)
    return SimpleNamespace(admin=admin, analyst=analyst, seller=seller, shop=shop, cheap=cheap, dear=dear)


def fraudster(api: Api) -> Actor:
    """A brand-new account that got its password wrong five times first."""
    user = api.register()
    for _ in range(5):
        assert (
            api.client.post(
                "/api/auth/login", json={"email": user["email"], "password": "wrong!"}
            ).status_code
            == 401
        )
    t = api.login(user["email"], PASSWORD)
    return Actor(
        user["id"],
        user["email"],
        user["username"],
        "buyer",
        t["accessToken"],
        t["refreshToken"],
        t["sessionId"],
    )


def regular(api: Api) -> Actor:
    """An account a month old."""
    buyer = api.user()
    api.clock.advance(timedelta(days=30))
    t = api.login(buyer.email)
    buyer.access_token = t["accessToken"]
    return buyer


def burst(api: Api, w: SimpleNamespace, buyer: Actor) -> dict[str, Any]:
    """One cheap order, then dear ones within minutes: the last one's answer."""
    data(place(api, buyer, [(w.cheap["id"], 1)]), 201)
    for _ in range(3):
        api.clock.advance(timedelta(minutes=2))
        last: dict[str, Any] = data(place(api, buyer, [(w.dear["id"], 2)]), 201)
    return last


def order_row(api: Api, order_id: int) -> Order:
    with api.store.read() as db:
        order = db.get(Order, order_id)
        assert order is not None
        return order


def get(api: Api, actor: Actor, path: str, status: int = 200) -> Any:
    return data(api.client.get(path, headers=actor.headers), status)


def review(api: Api, actor: Actor, order_id: int, decision: str, note: str | None = None) -> Any:
    return api.client.put(
        f"/api/orders/{order_id}/review", json={"decision": decision, "note": note}, headers=actor.headers
    )


# --- tests ---------------------------------------------------------------------------------------
def test_fraud_like_order_is_held_with_events_and_admin_notification(api, world, fraud_model):
    publish(api, fraud_model, V1)
    bad = fraudster(api)
    held = burst(api, world, bad)
    assert held["reviewStatus"] == "held"
    assert held["fraudScore"] is None  # the buyer does not see the score
    row = order_row(api, held["id"])
    assert row.fraud_model_version == V1 and row.fraud_score is not None
    assert row.fraud_score >= fraud_model.threshold
    assert row.status == "pending" and row.review_status == "held"

    (ev,) = [e for e in api.events("order.held") if e.entity_id == held["id"]]
    assert ev.order_id == held["id"] and ev.shop_id == world.shop["id"]
    assert ev.payload["buyerId"] == bad.id and ev.payload["modelVersion"] == V1
    assert ev.payload["score"] == pytest.approx(row.fraud_score, abs=1e-6)
    (sec,) = [e for e in api.events("security.suspicious_order") if e.order_id == held["id"]]
    assert sec.entity_type == "user" and sec.entity_id == bad.id
    assert set(sec.payload["features"]) == set(FEATURE_NAMES)
    assert sec.payload["features"]["failed_logins_last_day"] == 5
    notes = [n for n in notifications(api, world.admin.id) if n.data.get("orderId") == held["id"]]
    assert len(notes) == 1 and notes[0].type == "system"

    # A held order cannot be paid; staff see the score.
    err = error(api.client.put(f"/api/orders/{held['id']}/pay", headers=bad.headers), 409, "ORDER_HELD")
    assert err["details"]["orderId"] == held["id"]
    assert order_row(api, held["id"]).status == "pending"
    seen = get(api, world.admin, f"/api/orders/{held['id']}")
    assert seen["fraudScore"] == pytest.approx(row.fraud_score) and seen["fraudModelVersion"] == V1

    # A regular buyer's ordinary order goes through, scored but not held.
    good = regular(api)
    ok_order = data(place(api, good, [(world.cheap["id"], 1)]), 201)
    assert ok_order["reviewStatus"] is None
    clean = order_row(api, ok_order["id"])
    assert clean.fraud_score is not None and clean.fraud_score < fraud_model.threshold
    assert not [e for e in api.events("order.held") if e.entity_id == ok_order["id"]]
    data(api.client.put(f"/api/orders/{ok_order['id']}/pay", headers=good.headers))


def test_review_queue_release_and_reject(api, world, fraud_model):
    publish(api, fraud_model, V1)
    bad = fraudster(api)
    burst(api, world, bad)
    queue = data(api.client.get("/api/orders/review-queue", headers=world.analyst.headers))
    held_ids = [o["id"] for o in queue]
    assert len(held_ids) >= 2 and all(o["reviewStatus"] == "held" for o in queue)
    assert all(o["fraudScore"] is not None for o in queue)
    page = api.client.get("/api/orders/review-queue?pageSize=1&page=2", headers=world.admin.headers)
    assert page.json()["meta"]["pagination"]["total"] == len(held_ids)
    assert [o["id"] for o in data(page)] == held_ids[1:2]
    error(api.client.get("/api/orders/review-queue", headers=bad.headers), 403)
    error(review(api, bad, held_ids[0], "release"), 403)
    error(review(api, world.seller, held_ids[0], "release"), 403)

    # Release: the event, the buyer told, and the order can be paid.
    first, second = held_ids[0], held_ids[1]
    released = data(review(api, world.analyst, first, "release", "called the buyer"))
    assert released["reviewStatus"] == "released" and released["status"] == "pending"
    (ev,) = [e for e in api.events("order.released") if e.entity_id == first]
    assert ev.actor_user_id == world.analyst.id and ev.payload == {
        "buyerId": bad.id,
        "note": "called the buyer",
    }
    row = order_row(api, first)
    assert row.reviewed_by == world.analyst.id and row.reviewed_at is not None
    assert any(n.data.get("orderId") == first for n in notifications(api, bad.id))
    data(api.client.put(f"/api/orders/{first}/pay", headers=bad.headers))
    error(review(api, world.admin, first, "reject"), 409, "ORDER_NOT_HELD")

    # Reject: cancelled through the cancel path, stock back, review rejected.
    before = stock(api, world.dear["id"])
    rejected = data(review(api, world.admin, second, "reject", "stolen card"))
    assert rejected["status"] == "cancelled" and rejected["reviewStatus"] == "rejected"
    assert rejected["cancelReason"] == "stolen card"
    assert stock(api, world.dear["id"]) == before + 2
    (cancel,) = [e for e in api.events("order.cancelled") if e.entity_id == second]
    assert cancel.actor_user_id == world.admin.id
    assert cancel.payload["by"] == "staff" and cancel.payload["review"] == "rejected"
    assert cancel.payload["stockReleased"] == [{"productId": world.dear["id"], "quantity": 2}]
    assert any(n.data.get("orderId") == second for n in notifications(api, world.seller.id))
    error(review(api, world.admin, second, "release"), 409, "ORDER_NOT_HELD")
    left = [o["id"] for o in data(api.client.get("/api/orders/review-queue", headers=world.admin.headers))]
    assert first not in left and second not in left
    error(review(api, world.admin, 999_999, "release"), 404)


def test_model_swap_and_corrupt_artifact_keep_serving(api, world, fraud_model, forest_model):
    publish(api, fraud_model, V1)
    buyer = regular(api)

    def version_of_next_order() -> str | None:
        order = data(place(api, buyer, [(world.cheap["id"], 1)]), 201)
        return order_row(api, order["id"]).fraud_model_version

    assert version_of_next_order() == V1
    health = data(api.client.get("/health"))
    assert health["models"]["fraud"] == {"status": "ok", "version": V1, "kind": "gradient_boosting"}

    publish(api, forest_model, V2)  # no restart: the next order is scored by V2
    assert version_of_next_order() == V2
    assert data(api.client.get("/health"))["models"]["fraud"]["version"] == V2

    publish(api, fraud_model, V3)
    artifact = models_dir(api) / order_fraud.FRAUD_MODEL / V3 / "model.joblib"
    artifact.write_bytes(b"not a model")  # lands broken: V2 keeps serving
    assert version_of_next_order() == V2
    assert version_of_next_order() == V2


def test_without_a_model_orders_are_placed_unscored(api, world):
    assert data(api.client.get("/health"))["models"]["fraud"] == {"status": "none"}
    bad = fraudster(api)
    last = burst(api, world, bad)
    assert last["reviewStatus"] is None
    row = order_row(api, last["id"])
    assert row.fraud_score is None and row.fraud_model_version is None and row.review_status is None
    assert not api.events("order.held")
    data(api.client.put(f"/api/orders/{last['id']}/pay", headers=bad.headers))


def test_online_features_equal_offline_features(api, world, fraud_model, monkeypatch):
    """The features computed while placing each order equal `ml.fraud.order_features` on the store's rows."""
    publish(api, fraud_model, V1)
    seen: dict[tuple[int, datetime], dict[str, float]] = {}
    compute = order_fraud.order_time_features

    def recording(s: Any, buyer_id: int, now: datetime, total: Any, units: int) -> dict[str, float]:
        out = compute(s, buyer_id, now, total, units)
        seen[(buyer_id, now)] = out
        return out

    monkeypatch.setattr(order_fraud, "order_time_features", recording)
    odd = api.product(world.seller, world.shop["id"], price="33.33333337", stock=100)  # not a round float
    a, b = fraudster(api), regular(api)
    for step in range(8):
        for buyer in (a, b):
            buyer.access_token = api.login(buyer.email)["accessToken"]  # the clock outran the last one
            if step % 3 == 0:
                api.client.post(
                    "/api/track/view", json={"productId": world.cheap["id"]}, headers=buyer.headers
                )
            if step == 4 and buyer is b:
                api.client.post("/api/auth/login", json={"email": b.email, "password": "nope"})
            items = [(world.cheap["id"], 1 + step % 3)] + ([(world.dear["id"], 1)] if step % 4 == 1 else [])
            items += [(odd["id"], 1 + step % 2)] if step % 2 else []
            order = data(place(api, buyer, items), 201)
            if step == 2:
                move = api.client.put(f"/api/orders/{order['id']}/cancel", headers=buyer.headers)
                assert move.status_code == 200
        api.clock.advance(timedelta(minutes=[5, 50, 200, 600, 1500, 20, 3000, 1][step]))

    frames = read_frames(api.store.engine)
    offline = order_features(
        frames.orders, frames.users, failed_logins=frames.failed_logins, views=frames.views
    )
    assert len(offline) == len(seen) == 16
    for rec in offline.to_dict("records"):
        online = seen[(int(rec["buyer_id"]), rec["created_at"].to_pydatetime())]
        for name in FEATURE_NAMES:
            assert online[name] == pytest.approx(rec[name], rel=1e-9, abs=1e-9), (name, rec["order_id"])
    # The history really varied: these are not all defaults.
    assert offline["failed_logins_total"].max() == 5 and offline["prior_cancellations"].max() == 1
    assert offline["views_last_day"].max() >= 1 and offline["value_vs_history"].nunique() > 3
    assert offline["orders_last_hour"].max() >= 1


def test_fast_scoring_equals_sklearn(forest_model, fraud_model):
    """The serving fast path (the trees walked in Python) gives sklearn's own scores, both kinds."""
    features, _ = _pattern_frame(seed=3)
    rows = [
        {name: float(rec[name]) for name in FEATURE_NAMES} for rec in features.head(300).to_dict("records")
    ]
    rows.append({})  # every feature missing: the defaults of score_order
    for model in (forest_model, fraud_model):
        loaded = LoadedModel("fraud", model.kind, model)
        assert order_fraud._fast(loaded) is not None
        for row in rows:
            assert order_fraud.score_loaded(loaded, row) == pytest.approx(score_order(model, row), abs=1e-12)
    held = [order_fraud.score_loaded(LoadedModel("fraud", "g", fraud_model), r) for r in rows]
    assert all(math.isfinite(h) for h in held)


def test_order_review_migration_downgrades_and_upgrades_again(tmp_path):
    from sqlalchemy import create_engine, inspect

    from api.db.migrate import downgrade, upgrade

    url = f"sqlite:///{tmp_path / 'migrate.db'}"

    def shape() -> tuple[set[str], set[str | None]]:
        engine = create_engine(url)
        insp = inspect(engine)
        cols = {c["name"] for c in insp.get_columns("orders")}
        idx = {i["name"] for t in ("orders", "events", "product_views") for i in insp.get_indexes(t)}
        engine.dispose()
        return cols, idx

    upgrade(url)
    cols, idx = shape()
    assert {"fraud_score", "fraud_model_version", "review_status", "reviewed_by", "reviewed_at"} <= cols
    assert {"ix_orders_review_status", "ix_events_failed_login", "ix_product_views_user_created"} <= idx
    downgrade(url, "0005")
    cols2, idx2 = shape()
    assert "review_status" not in cols2 and "ix_events_failed_login" not in idx2
    upgrade(url)
    assert shape() == (cols, idx)


def test_held_orders_show_only_to_staff_with_score(api, world, fraud_model):
    publish(api, fraud_model, V1)
    bad = fraudster(api)
    held = burst(api, world, bad)
    mine = get(api, bad, f"/api/orders/{held['id']}")
    assert mine["reviewStatus"] == "held" and mine["fraudScore"] is None
    theirs = get(api, world.seller, f"/api/orders/{held['id']}")
    assert theirs["reviewStatus"] == "held" and theirs["fraudScore"] is None
    with api.store.read() as db:
        assert db.execute(select(Order.id).where(Order.review_status == "held")).first() is not None
