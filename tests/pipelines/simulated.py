"""A small store made by the real simulator through the real API, shared by the pipeline tests: each test
copies it, points its own warehouse at the copy, and may add activity through the API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.core.clock import ManualClock
from api.core.settings import Environment, Settings
from api.db.engine import Store
from api.main import create_app
from simulator.engine import run_backfill
from simulator.profiles import get_profile
from tests.api.test_orders import market, place
from tests.conftest import TEST_SECRET
from tests.helpers import Api, data

SIM_START = date(2026, 3, 2)
SIM_DAYS = 3
SIM_SEED = 5
PAID = ("paid", "shipped", "delivered")


def simulate(directory: Path, template: Path) -> Path:
    """A migrated SQLite store with SIM_DAYS days of the `small` profile; returns its file."""
    db = directory / "store.db"
    shutil.copyfile(template, db)
    run_backfill(
        settings_for(directory, db), get_profile("small"), seed=SIM_SEED, days=SIM_DAYS, start=SIM_START
    )
    return db


def settings_for(directory: Path, store_db: Path, *, warehouse_url: str | None = None) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=f"sqlite:///{store_db}",
        jwt_secret=TEST_SECRET,
        auto_migrate=False,
        session_sweep_seconds=0,
        delivery_poll_seconds=0,
        call_sweep_seconds=0,
        search_event_flush_seconds=0,
        data_dir=directory / "data",
        warehouse_path=directory / "data" / "warehouse.duckdb",
        warehouse_url=warehouse_url,
        redis_url=None,
        _env_file=None,
    )


def copy_store(source: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "store.db"
    shutil.copyfile(source, db)
    return db


@contextmanager
def store_api(settings: Settings) -> Iterator[Api]:
    """The store's API over `settings`, in process, as the tests' `api` fixture builds it."""
    store = Store.from_settings(settings)
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0), tick=timedelta(milliseconds=1))
    try:
        with TestClient(
            create_app(settings, clock=clock, store=store), raise_server_exceptions=False
        ) as client:
            yield Api(client, store, clock)
    finally:
        store.engine.dispose()


def more_activity(settings: Settings) -> None:
    """A new shop with two products, a view of each and an order paid: new events, rows and revenue."""
    with store_api(settings) as api:
        m = market(api)
        for product in (m.p1, m.p2):
            body = {"productId": product["id"], "sessionId": "crash-test"}
            data(api.client.post("/api/track/view", json=body, headers=m.buyer.headers), 201)
        order = data(place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)]), 201)
        data(api.client.put(f"/api/orders/{order['id']}/pay", json=None, headers=m.buyer.headers))


def store_revenue_by_shop_day(store_db: Path) -> dict[tuple[int, date], Decimal]:
    """The contract's revenue rule computed straight from the store's orders, independently of dbt:
    orders placed that UTC day, paid and not cancelled since."""
    engine = create_engine(f"sqlite:///{store_db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT shop_id, created_at, total_amount, status, paid_at FROM orders"))
            revenue: dict[tuple[int, date], Decimal] = {}
            for shop_id, created_at, total, status, paid_at in rows.tuples():
                if paid_at is None or status not in PAID:
                    continue
                placed = datetime.fromisoformat(str(created_at))
                placed = placed.astimezone(UTC) if placed.tzinfo else placed
                key = (int(shop_id), placed.date())
                revenue[key] = revenue.get(key, Decimal(0)) + Decimal(str(total))
    finally:
        engine.dispose()
    return revenue


def mart_stats(rows: Any) -> dict[str, tuple[Any, ...]]:
    """Per marts table: its row count and the sum of each numeric column (doubles rounded), from a
    `rows(sql) -> list[tuple]` function over one warehouse. What a clean build and a recovered one must
    agree on."""
    tables = [
        r[0]
        for r in rows(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'marts' ORDER BY table_name"
        )
    ]
    stats: dict[str, tuple[Any, ...]] = {}
    for table in tables:
        columns = rows(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = 'marts' AND table_name = '{table}' ORDER BY column_name"
        )
        sums = []
        for name, kind in columns:
            kind = str(kind).upper()
            if kind.startswith(("DECIMAL", "NUMERIC", "BIGINT", "INTEGER", "HUGEINT", "SMALLINT")):
                sums.append(f'sum("{name}")')
            elif kind.startswith(("DOUBLE", "REAL", "FLOAT")):
                sums.append(f'round(cast(sum("{name}") as numeric), 6)')
        select = ", ".join(["count(*)", *sums])
        stats[table] = tuple(rows(f"SELECT {select} FROM marts.{table}")[0])
    return stats


def duckdb_rows(path: Path) -> Any:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        conn = duckdb.connect(str(path), read_only=True)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    return rows
