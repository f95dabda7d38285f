"""The simulator's backfill through the real API, checked against the ground truth it writes.

SQLite only for this first slice: one backfill of the `small` profile is shared by the module (it
takes seconds, not milliseconds); the Postgres path is still to be covered."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from api.core.settings import Environment, Settings
from simulator.engine import BackfillResult, run_backfill
from simulator.profiles import get_profile
from simulator.world import build_world
from tests.conftest import TEST_SECRET

START = date(2026, 3, 2)  # a Monday
DAYS = 7
SEED = 7


@dataclass
class Run:
    result: BackfillResult
    engine: Engine
    truth: dict[str, Any]


def _settings(tmp: Path, template: Path) -> Settings:
    shutil.copyfile(template, tmp / "store.db")
    return Settings(
        environment=Environment.test,
        database_url=f"sqlite:///{tmp / 'store.db'}",
        jwt_secret=TEST_SECRET,
        auto_migrate=False,
        data_dir=tmp / "data",
        redis_url=None,
        _env_file=None,
    )


def _run(tmp: Path, template: Path, days: int) -> Run:
    settings = _settings(tmp, template)
    result = run_backfill(settings, get_profile("small"), seed=SEED, days=days, start=START)
    truth = json.loads(result.truth_path.read_text())
    return Run(result, create_engine(settings.database_url), truth)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path):
    r = _run(tmp_path_factory.mktemp("sim"), sqlite_template, DAYS)
    yield r
    r.engine.dispose()


def _rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params))


def _aware(value: Any) -> datetime:
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def test_same_seed_plans_the_same_world() -> None:
    a = build_world(get_profile("small"), 3, START, 5)
    b = build_world(get_profile("small"), 3, START, 5)
    c = build_world(get_profile("small"), 4, START, 5)
    assert [(u.persona, u.preferred, u.signup_day) for u in a.buyers] == [
        (u.persona, u.preferred, u.signup_day) for u in b.buyers
    ]
    assert [p.price for p in a.products] == [p.price for p in b.products]
    assert [p.price for p in a.products] != [p.price for p in c.products]


def test_backfill_writes_history_spread_over_the_simulated_days(run: Run) -> None:
    begin = datetime.combine(START, datetime.min.time(), UTC)
    end = begin + timedelta(days=DAYS)
    orders = _rows(run.engine, "SELECT created_at FROM orders")
    assert len(orders) == run.result.orders > 50
    order_days = {(_aware(o.created_at) - begin).days for o in orders}
    assert len(order_days) >= DAYS - 1, order_days  # nearly every day sells something
    events = _rows(run.engine, "SELECT event_type, occurred_at FROM events")
    times = [_aware(e.occurred_at) for e in events]
    assert begin <= min(times) and max(times) < end + timedelta(hours=1)
    assert len({(t - begin).days for t in times}) >= DAYS
    kinds = Counter(e.event_type for e in events)
    for kind in (
        "user.registered",
        "user.login_failed",
        "product.viewed",
        "order.placed",
        "order.paid",
        "order.shipped",
        "order.delivered",
        "order.cancelled",
    ):
        assert kinds[kind] > 0, (kind, kinds)
    assert run.result.requests_per_second > 0


def test_bargain_hunters_buy_less_when_dearer_than_the_category_reference(run: Run) -> None:
    hunters = {u["userId"] for u in run.truth["users"] if u["persona"] == "bargain_hunter"}
    reference = {c["categoryId"]: c["referencePrice"] for c in run.truth["categories"]}
    products = {
        r.id: float(r.price) / reference[r.category_id]
        for r in _rows(run.engine, "SELECT id, price, category_id FROM products")
    }
    views: Counter[str] = Counter()
    bought: Counter[str] = Counter()

    def bucket(product_id: int) -> str:
        ratio = products[product_id]
        return "cheap" if ratio < 0.9 else "dear" if ratio > 1.1 else "middle"

    for r in _rows(run.engine, "SELECT user_id, product_id FROM product_views WHERE user_id IS NOT NULL"):
        if r.user_id in hunters:
            views[bucket(r.product_id)] += 1
    sql = "SELECT o.buyer_id, i.product_id FROM orders o JOIN order_items i ON i.order_id = o.id"
    for r in _rows(run.engine, sql):
        if r.buyer_id in hunters:
            bought[bucket(r.product_id)] += 1
    assert views["cheap"] > 30 and views["dear"] > 30, views
    cheap = bought["cheap"] / views["cheap"]
    dear = bought["dear"] / views["dear"]
    assert cheap > 2 * dear, (cheap, dear, views, bought)


def test_fraudulent_orders_in_the_ground_truth_are_in_the_store(run: Run) -> None:
    fraud = run.truth["fraudulentOrders"]
    assert fraud, "the small profile plants fraudsters"
    fraudsters = {u["userId"] for u in run.truth["users"] if u["persona"] == "fraudster"}
    rows = {r.id: r.buyer_id for r in _rows(run.engine, "SELECT id, buyer_id FROM orders")}
    for order_id in fraud:
        assert order_id in rows
        assert rows[order_id] in fraudsters
    # and no fraudster order is missing from the truth
    assert {o for o, b in rows.items() if b in fraudsters} == set(fraud)
    failed = _rows(run.engine, "SELECT COUNT(*) AS n FROM events WHERE event_type = 'user.login_failed'")
    assert failed[0].n >= 3 * len(fraudsters)


def test_truth_describes_every_user_and_category(run: Run) -> None:
    users = {r.id for r in _rows(run.engine, "SELECT id FROM users WHERE role != 'admin'")}
    assert {u["userId"] for u in run.truth["users"]} == users
    assert {u["persona"] for u in run.truth["users"]} >= {
        "window_shopper",
        "bargain_hunter",
        "loyal_buyer",
        "big_spender",
        "fraudster",
        "seller",
    }
    for c in run.truth["categories"]:
        assert len(c["demandCurve"]) == DAYS
    assert run.truth["seed"] == SEED
    assert run.result.truth_path.parent.name == "data"


def test_same_seed_gives_the_same_truth_and_orders(tmp_path: Path, sqlite_template: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = _run(tmp_path / "a", sqlite_template, 2)
    b = _run(tmp_path / "b", sqlite_template, 2)
    try:
        assert a.result.truth_path.read_text() == b.result.truth_path.read_text()
        count = "SELECT COUNT(*) AS n FROM orders"
        assert _rows(a.engine, count)[0].n == _rows(b.engine, count)[0].n == a.result.orders > 0
    finally:
        a.engine.dispose()
        b.engine.dispose()
