"""warehouse.marts on both targets: a DuckDB file read through its published snapshot, and a PostgreSQL
database read directly. The marts here are tables with the contract's columns, filled by the test; the
API tests build them through the real pipeline as well.

`MartsWarehouse` (a writer of such a warehouse), `make_warehouse` and the `pg_warehouse_database`
fixture are shared with tests/api/test_analytics.py and tests/api/test_metrics.py."""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.core.settings import Environment, Settings
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, service_missing
from warehouse import marts
from warehouse.duckdb import WarehouseUnavailable, connect_write, publish_snapshot, read_connection
from warehouse.settings import WarehouseLocation

# The contract's columns (docs: /work/briefs/contract.md, "Marts read by the API and dashboard").
MART_COLUMNS: dict[str, str] = {
    "mart_shop_daily": """shop_id BIGINT, "date" DATE, currency VARCHAR, views BIGINT,
        unique_visitors BIGINT, product_views BIGINT, messages_received BIGINT, orders BIGINT,
        paid_orders BIGINT, revenue DECIMAL(38, 8), new_followers BIGINT, conversion_rate FLOAT8,
        avg_order_value DECIMAL(38, 8)""",
    "mart_platform_daily": """"date" DATE, active_users BIGINT, new_users BIGINT, buyers BIGINT,
        orders BIGINT, paid_orders BIGINT, revenue DECIMAL(38, 8), avg_order_value DECIMAL(38, 8),
        conversion_rate FLOAT8, churned_users BIGINT, churn_rate FLOAT8""",
    "mart_revenue_daily": """"date" DATE, currency VARCHAR, orders BIGINT, paid_orders BIGINT,
        revenue DECIMAL(38, 8), avg_order_value DECIMAL(38, 8), cumulative_revenue DECIMAL(38, 8)""",
    # The columns of these two facts that the top products read (dbt_project/models/marts/core.yml).
    "fct_order_items": """order_item_id BIGINT, order_id BIGINT, product_id BIGINT, shop_id BIGINT,
        currency VARCHAR, quantity INTEGER, placed_date DATE, counts_as_revenue BOOLEAN,
        revenue_amount DECIMAL(38, 8)""",
    "fct_product_views": "event_id VARCHAR, product_id BIGINT, shop_id BIGINT, view_date DATE",
}
META_DDL = (
    "CREATE SCHEMA IF NOT EXISTS meta",
    """CREATE TABLE IF NOT EXISTS meta.load_state (stream VARCHAR PRIMARY KEY,
        high_water_mark BIGINT NOT NULL DEFAULT 0, source_count BIGINT, rows_total BIGINT NOT NULL DEFAULT 0,
        rows_loaded BIGINT NOT NULL DEFAULT 0, loaded_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS meta.snapshots (table_name VARCHAR PRIMARY KEY, row_count BIGINT NOT NULL,
        loaded_at TIMESTAMPTZ NOT NULL)""",
    "INSERT INTO meta.load_state (stream) VALUES ('events') ON CONFLICT DO NOTHING",
)
_PARAM = re.compile(r"(?<![:\w]):(\w+)(?!:)")
# SQL with :name parameters, and one row of parameters or many.
Statement = tuple[str, Mapping[str, Any] | Sequence[Mapping[str, Any]]]


def shop_row(shop_id: int, day: date, **values: Any) -> dict[str, Any]:
    """A mart_shop_daily row: zeros unless given; the ratios follow the contract's definitions."""
    row: dict[str, Any] = {
        "shop_id": shop_id,
        "date": day,
        "currency": "USDT",
        "views": 0,
        "unique_visitors": 0,
        "product_views": 0,
        "messages_received": 0,
        "orders": 0,
        "paid_orders": 0,
        "revenue": Decimal(0),
        "new_followers": 0,
        **values,
    }
    row["conversion_rate"] = row["orders"] / row["unique_visitors"] if row["unique_visitors"] else None
    row["avg_order_value"] = (
        (Decimal(row["revenue"]) / row["orders"]).quantize(Decimal("0.00000001")) if row["orders"] else None
    )
    return row


def platform_row(day: date, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "date": day,
        "active_users": 0,
        "new_users": 0,
        "buyers": 0,
        "orders": 0,
        "paid_orders": 0,
        "revenue": Decimal(0),
        "churned_users": 0,
        "churn_rate": None,
        **values,
    }
    row["conversion_rate"] = row["buyers"] / row["active_users"] if row["active_users"] else None
    row["avg_order_value"] = (
        (Decimal(row["revenue"]) / row["orders"]).quantize(Decimal("0.00000001")) if row["orders"] else None
    )
    return row


class MartsWarehouse:
    """Writes a warehouse as the pipeline leaves it (meta bookkeeping, marts), on either target, and
    publishes the DuckDB snapshot after every write as the pipeline does."""

    def __init__(self, *, path: Path | None = None, url: str | None = None) -> None:
        assert (path is None) != (url is None)
        self.path = path
        self.url = url
        self.target = marts.DUCKDB if path else marts.POSTGRES

    def settings_update(self) -> dict[str, Any]:
        return (
            {"warehouse_path": self.path, "warehouse_url": None} if self.path else {"warehouse_url": self.url}
        )

    def write(self, statements: Sequence[Statement]) -> None:
        """Run the statements in one transaction, then publish (DuckDB)."""
        if self.path is not None:
            location = WarehouseLocation(self.path)
            conn = connect_write(location.path)
            try:
                conn.execute("BEGIN TRANSACTION")
                for sql, params in statements:
                    for p in [params] if isinstance(params, Mapping) else params:
                        conn.execute(_PARAM.sub(r"$\1", sql), dict(p))
                conn.execute("COMMIT")
                publish_snapshot(conn, location)
            finally:
                conn.close()
            return
        assert self.url is not None
        engine = create_engine(self.url)
        try:
            with engine.begin() as pg:
                for sql, params in statements:
                    batch = [dict(params)] if isinstance(params, Mapping) else [dict(p) for p in params]
                    if batch:
                        pg.execute(text(sql), batch)
        finally:
            engine.dispose()

    def build(self, *, loaded_at: datetime | None = None, with_marts: bool = True) -> None:
        """The schemas and empty marts; with `loaded_at`, a committed events load at that time."""
        ddl: list[tuple[str, Mapping[str, Any]]] = [(s, {}) for s in META_DDL]
        if with_marts:
            ddl.append(("CREATE SCHEMA IF NOT EXISTS marts", {}))
            ddl += [(f"CREATE TABLE marts.{t} ({cols})", {}) for t, cols in MART_COLUMNS.items()]
        self.write(ddl)
        if loaded_at is not None:
            self.loaded(loaded_at)

    def loaded(self, at: datetime, *, rows: int = 100, tables: Mapping[str, int] | None = None) -> None:
        """A committed load at `at`: the events stream and snapshots of `tables`."""
        statements: list[Statement] = [
            (
                """UPDATE meta.load_state SET high_water_mark = :rows, source_count = :rows,
                   rows_total = :rows, rows_loaded = :rows, loaded_at = :at WHERE stream = 'events'""",
                {"rows": rows, "at": at},
            )
        ]
        for table, count in (tables or {}).items():
            statements.append(
                (
                    """INSERT INTO meta.snapshots (table_name, row_count, loaded_at) VALUES (:t, :n, :at)
                       ON CONFLICT (table_name) DO UPDATE SET row_count = excluded.row_count,
                       loaded_at = excluded.loaded_at""",
                    {"t": table, "n": count, "at": at},
                )
            )
        self.write(statements)

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], *, replace: bool = False) -> None:
        if not rows:
            return
        columns = list(rows[0])
        names = ", ".join(f'"{c}"' for c in columns)
        values = ", ".join(f":{c}" for c in columns)
        statements: list[Statement] = []
        if replace:
            statements.append((f"DELETE FROM marts.{table}", {}))
        statements.append((f"INSERT INTO marts.{table} ({names}) VALUES ({values})", rows))
        self.write(statements)


@pytest.fixture(scope="session")
def pg_warehouse_database() -> Iterator[str]:
    """A PostgreSQL database for warehouse tests, emptied by each test that uses it."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"warehouse_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    marts.dispose_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _empty_postgres(url: str) -> None:
    marts.dispose_engines()  # no pooled connection may see the old relations
    engine = create_engine(url)
    with engine.begin() as conn:
        for schema in ("marts", "meta", "raw", "staging", "intermediate"):
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def make_warehouse(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> MartsWarehouse:
    """An empty warehouse target (nothing built): a DuckDB file path, or an emptied PostgreSQL database.
    Modules that use it define a `warehouse` fixture over both kinds with it."""
    if kind == marts.DUCKDB:
        return MartsWarehouse(path=tmp_path / "data" / "warehouse.duckdb")
    url: str = request.getfixturevalue("pg_warehouse_database")
    _empty_postgres(url)
    request.addfinalizer(marts.dispose_engines)
    return MartsWarehouse(url=url)


@pytest.fixture(params=[marts.DUCKDB, marts.POSTGRES])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> MartsWarehouse:
    return make_warehouse(request.param, tmp_path, request)


@pytest.fixture
def wh_settings(warehouse: MartsWarehouse, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        data_dir=tmp_path / "data",
        jwt_secret=TEST_SECRET,
        _env_file=None,
        **warehouse.settings_update(),
    )


D = date(2026, 3, 10)
DAY = timedelta(days=1)
LOADED = datetime(2026, 3, 12, 8, 30, tzinfo=UTC)


def test_nothing_built_is_unavailable_with_run_the_pipeline(
    warehouse: MartsWarehouse, wh_settings: Settings
) -> None:
    with pytest.raises(WarehouseUnavailable, match="pipeline"):
        marts.published_identity(wh_settings)
    with pytest.raises(WarehouseUnavailable, match="pipeline"), marts.open_marts(wh_settings) as reader:
        marts.shop_days(reader, 1, D, D)


def test_loaded_but_no_marts_yet_is_unavailable(warehouse: MartsWarehouse, wh_settings: Settings) -> None:
    warehouse.build(loaded_at=LOADED, with_marts=False)
    with marts.open_marts(wh_settings) as reader:
        # The load bookkeeping alone can be read (the system metrics show it before dbt has run).
        fresh = marts.freshness(reader, wh_settings, marts=False)
    assert fresh.loaded_at == LOADED
    with (
        pytest.raises(WarehouseUnavailable, match=r"not built yet.*pipeline"),
        marts.open_marts(wh_settings) as r,
    ):
        marts.shop_days(r, 1, D, D)


def test_shop_days_cover_every_day_with_the_marts_rows_and_zeros(
    warehouse: MartsWarehouse, wh_settings: Settings
) -> None:
    warehouse.build(loaded_at=LOADED)
    first = shop_row(
        7,
        D,
        views=10,
        unique_visitors=4,
        product_views=3,
        orders=2,
        paid_orders=1,
        revenue=Decimal("12.34500000"),
        messages_received=5,
        new_followers=1,
    )
    third = shop_row(
        7,
        D + timedelta(days=2),
        views=3,
        unique_visitors=3,
        orders=1,
        paid_orders=1,
        revenue=Decimal("0.00000001"),
    )
    other_shop = shop_row(8, D, views=99, unique_visitors=50, orders=9, revenue=Decimal(5))
    outside = shop_row(7, D + timedelta(days=5), views=1000)
    warehouse.insert("mart_shop_daily", [first, third, other_shop, outside])

    with marts.open_marts(wh_settings) as reader:
        days = marts.shop_days(reader, 7, D - timedelta(days=1), D + timedelta(days=3))
    assert [d.day for d in days] == [D + timedelta(days=i) for i in range(-1, 4)]
    assert [d.views for d in days] == [0, 10, 0, 3, 0]
    assert days[1] == marts.ShopDay(
        7, D, "USDT", 10, 4, 3, 5, 2, 1, Decimal("12.34500000"), 1, 0.5, Decimal("6.17250000")
    )
    assert days[3].revenue == Decimal("0.00000001")
    assert days[0] == marts.ShopDay.empty(7, D - timedelta(days=1))
    assert days[0].currency is None and days[0].conversion_rate is None and days[0].avg_order_value is None

    totals = marts.shop_totals(days)
    assert (totals.views, totals.unique_visitors, totals.orders, totals.paid_orders) == (13, 7, 3, 2)
    assert (totals.messages_received, totals.new_followers, totals.product_views) == (5, 1, 3)
    assert totals.revenue == Decimal("12.34500001") and totals.currency == "USDT"
    # Recomputed from the sums, not averaged over days (the days' own rates are 0.5 and 0.333...).
    assert totals.conversion_rate == 3 / 7
    assert totals.avg_order_value == Decimal("4.11500000")  # 12.34500001 / 3, to 8 places


def test_revenue_in_several_currencies_is_never_added_up(
    warehouse: MartsWarehouse, wh_settings: Settings
) -> None:
    warehouse.build(loaded_at=LOADED)
    warehouse.insert(
        "mart_shop_daily",
        [
            shop_row(1, D, orders=1, unique_visitors=1, revenue=Decimal(10), currency="USDT"),
            shop_row(
                1, D + timedelta(days=1), orders=1, unique_visitors=2, revenue=Decimal(1), currency="BTC"
            ),
        ],
    )
    with marts.open_marts(wh_settings) as reader:
        totals = marts.shop_totals(marts.shop_days(reader, 1, D, D + timedelta(days=1)))
    assert totals.revenue_by_currency == {"USDT": Decimal(10), "BTC": Decimal(1)}
    assert totals.revenue is None and totals.currency is None and totals.avg_order_value is None
    assert totals.conversion_rate == 2 / 3


def test_platform_revenue_and_top_shops(warehouse: MartsWarehouse, wh_settings: Settings) -> None:
    warehouse.build(loaded_at=LOADED)
    warehouse.insert(
        "mart_platform_daily",
        [
            platform_row(
                D,
                active_users=10,
                new_users=3,
                buyers=2,
                orders=3,
                paid_orders=2,
                revenue=Decimal("30.5"),
                churned_users=1,
                churn_rate=0.1,
            ),
            platform_row(
                D + timedelta(days=1),
                active_users=20,
                buyers=1,
                orders=1,
                revenue=Decimal(0),
                churn_rate=0.05,
            ),
        ],
    )
    warehouse.insert(
        "mart_revenue_daily",
        [
            {
                "date": D,
                "currency": "USDT",
                "orders": 3,
                "paid_orders": 2,
                "revenue": Decimal("30.5"),
                "avg_order_value": Decimal("10.16666667"),
                "cumulative_revenue": Decimal("130.5"),
            },
        ],
    )
    warehouse.insert(
        "mart_shop_daily",
        [
            shop_row(1, D, orders=1, unique_visitors=5, revenue=Decimal(5)),
            shop_row(2, D, orders=2, unique_visitors=5, revenue=Decimal("25.5")),
            shop_row(3, D, views=4, unique_visitors=2),
            shop_row(4, D),  # nothing happened: not ranked
            shop_row(1, D + timedelta(days=1), orders=1, unique_visitors=1, revenue=Decimal(1)),
        ],
    )
    end = D + timedelta(days=2)
    with marts.open_marts(wh_settings) as reader:
        days = marts.platform_days(reader, D, end)
        revenue = marts.revenue_days(reader, D, end)
        ranks = marts.top_shops(reader, D, end, limit=10)
        fresh = marts.freshness(reader, wh_settings)

    assert [d.active_users for d in days] == [10, 20, 0]
    assert days[2] == marts.PlatformDay.empty(end)
    totals = marts.platform_totals(days)
    assert (totals.active_user_days, totals.peak_daily_active_users, totals.buyers) == (30, 20, 3)
    assert totals.avg_daily_active_users == 10.0
    assert totals.conversion_rate == 3 / 30
    assert totals.churn_rate is None  # the last day of the period has no row
    assert marts.platform_totals(days[:2]).churn_rate == 0.05

    assert [(r.day, r.revenue, r.cumulative_revenue) for r in revenue] == [
        (D, Decimal("30.50000000"), Decimal("130.50000000"))
    ]
    (usdt,) = marts.revenue_by_currency(revenue)
    assert (usdt.orders, usdt.revenue, usdt.avg_order_value) == (3, Decimal("30.5"), Decimal("10.16666667"))

    assert [(r.shop_id, r.orders, r.revenue) for r in ranks] == [
        (2, 2, Decimal("25.5")),
        (1, 2, Decimal(6)),
        (3, 0, Decimal(0)),
    ]
    assert ranks[1].conversion_rate == 2 / 6

    assert fresh.target == warehouse.target
    assert fresh.loaded_at == LOADED and fresh.events_loaded_at == LOADED
    assert fresh.data_through == D + timedelta(days=1)
    assert (fresh.published_at is not None) == (warehouse.target == marts.DUCKDB)


def test_top_products_of_a_period(warehouse: MartsWarehouse, wh_settings: Settings) -> None:
    warehouse.build(loaded_at=LOADED)

    def line(
        item: int, order: int, product: int, qty: int, revenue: str | None, day: date = D
    ) -> dict[str, Any]:
        return {
            "order_item_id": item, "order_id": order, "product_id": product, "shop_id": product // 10,
            "currency": "USDT", "quantity": qty, "placed_date": day,
            "counts_as_revenue": revenue is not None, "revenue_amount": Decimal(revenue or 0),
        }  # fmt: skip

    warehouse.insert(
        "fct_order_items",
        [
            line(1, 1, 11, 2, "20"),
            line(2, 1, 12, 1, "5"),  # two products in one order
            line(3, 2, 12, 4, "20"),
            line(4, 3, 12, 7, None),  # cancelled: counted as an order, not as sold
            line(5, 4, 13, 1, "1000", day=D - DAY),  # before the period
            line(6, 5, 21, 1, "0.5"),
        ],
    )
    warehouse.insert(
        "fct_product_views",
        [{"event_id": f"e{i}", "product_id": 12, "shop_id": 1, "view_date": D} for i in range(3)]
        + [{"event_id": "late", "product_id": 12, "shop_id": 1, "view_date": D + DAY}],
    )
    with marts.open_marts(wh_settings) as reader:
        ranks = marts.top_products(reader, D, D, limit=2)
        everything = marts.top_products(reader, D - DAY, D + DAY)
    assert ranks == [
        marts.ProductRank(12, 1, "USDT", units_sold=5, orders=3, revenue=Decimal(25), views=3),
        marts.ProductRank(11, 1, "USDT", units_sold=2, orders=1, revenue=Decimal(20), views=0),
    ]
    assert [(r.product_id, r.views) for r in everything] == [(13, 0), (12, 4), (11, 0), (21, 0)]


def test_freshness_is_the_latest_load_of_any_stream_or_table(
    warehouse: MartsWarehouse, wh_settings: Settings
) -> None:
    warehouse.build(loaded_at=LOADED)
    later = LOADED + timedelta(minutes=5)
    warehouse.loaded(LOADED, tables={"orders": 12, "shops": 3})
    warehouse.write([("UPDATE meta.snapshots SET loaded_at = :at WHERE table_name = 'shops'", {"at": later})])
    with marts.open_marts(wh_settings) as reader:
        fresh = marts.freshness(reader, wh_settings)
        streams, tables = marts.pipeline_loads(reader)
    assert fresh.loaded_at == later and fresh.events_loaded_at == LOADED
    assert fresh.age_seconds(later + timedelta(seconds=90)) == 90.0
    assert [(s.stream, s.rows_total, s.loaded_at) for s in streams] == [("events", 100, LOADED)]
    assert [(t.table_name, t.row_count, t.loaded_at) for t in tables] == [
        ("orders", 12, LOADED),
        ("shops", 3, later),
    ]


def test_the_published_identity_changes_with_every_publish(
    warehouse: MartsWarehouse, wh_settings: Settings
) -> None:
    warehouse.build(loaded_at=LOADED)
    first = marts.published_identity(wh_settings)
    assert marts.published_identity(wh_settings) == first  # reading changes nothing
    warehouse.loaded(LOADED + timedelta(minutes=1))
    second = marts.published_identity(wh_settings)
    assert second != first
    # A dbt rebuild alone (no new load): the marts' relations change.
    warehouse.write(
        [
            ("DROP TABLE marts.mart_platform_daily", {}),
            (f"CREATE TABLE marts.mart_platform_daily ({MART_COLUMNS['mart_platform_daily']})", {}),
        ]
    )
    assert marts.published_identity(wh_settings) != second


def test_warehouse_size(warehouse: MartsWarehouse, wh_settings: Settings) -> None:
    if warehouse.path is not None:  # no file yet (a PostgreSQL database exists before any load)
        with pytest.raises(WarehouseUnavailable):
            marts.warehouse_size(wh_settings)
    warehouse.build(loaded_at=LOADED)
    size = marts.warehouse_size(wh_settings)
    assert size.target == warehouse.target and size.bytes > 0
    if warehouse.path is not None:
        assert size.bytes == WarehouseLocation(warehouse.path).snapshot.stat().st_size
        assert size.writer_bytes == warehouse.path.stat().st_size


def test_postgres_reads_see_one_moment_and_never_write(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue("pg_warehouse_database")
    _empty_postgres(url)
    wh = MartsWarehouse(url=url)
    wh.build(loaded_at=LOADED)
    wh.insert("mart_shop_daily", [shop_row(1, D, views=1)])
    settings = Settings(
        environment=Environment.test,
        data_dir=tmp_path,
        jwt_secret=TEST_SECRET,
        warehouse_url=url,
        _env_file=None,
    )
    with marts.open_marts(settings) as reader:
        assert marts.shop_days(reader, 1, D, D)[0].views == 1
        # A load that commits meanwhile is not seen by this reader's later reads (one snapshot).
        wh.insert("mart_shop_daily", [shop_row(1, D, views=2)], replace=True)
        assert marts.shop_days(reader, 1, D, D)[0].views == 1
        with pytest.raises(Exception, match="read-only"):
            reader.fetch("CREATE TABLE marts.nope (x INT)")
    with marts.open_marts(settings) as reader:
        assert marts.shop_days(reader, 1, D, D)[0].views == 2
    marts.dispose_engines()


def test_duckdb_reads_never_fail_while_the_pipeline_writes(tmp_path: Path) -> None:
    wh = MartsWarehouse(path=tmp_path / "warehouse.duckdb")
    wh.build(loaded_at=LOADED)
    wh.insert("mart_shop_daily", [shop_row(1, D, views=0, unique_visitors=0)])
    settings = Settings(
        environment=Environment.test,
        data_dir=tmp_path,
        jwt_secret=TEST_SECRET,
        warehouse_path=wh.path,
        _env_file=None,
    )
    location = WarehouseLocation(tmp_path / "warehouse.duckdb")
    stop = threading.Event()
    published: list[int] = [0]
    failures: list[BaseException] = []

    def pipeline() -> None:
        # One writer holding the lock throughout, committing and publishing load after load.
        try:
            conn = connect_write(location.path)
            try:
                n = 0
                while not stop.is_set() and n < 5000:
                    n += 1
                    conn.execute("BEGIN TRANSACTION")
                    conn.execute("UPDATE marts.mart_shop_daily SET views = ?, unique_visitors = ?", [n, n])
                    conn.execute("COMMIT")
                    publish_snapshot(conn, location)
                    published.append(n)
            finally:
                conn.close()
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=pipeline)
    writer.start()
    seen: list[int] = []
    try:
        while len(seen) < 60 and writer.is_alive():
            with marts.open_marts(settings) as reader:
                (day,) = marts.shop_days(reader, 1, D, D)
            # Every read sees one whole published state: views and visitors were updated together.
            assert day.views == day.unique_visitors
            seen.append(day.views)
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not failures, failures
    assert seen == sorted(seen), "a reader never goes back to an older snapshot"
    assert len(set(seen)) > 1, ("the reads saw the writer's progress", seen, len(published))
    with read_connection(location) as conn:
        assert conn.execute("SELECT views FROM marts.mart_shop_daily").fetchall() == [(published[-1],)]


def test_a_reader_opened_after_a_publish_sees_it_while_an_older_reader_is_open(tmp_path: Path) -> None:
    # Overlapping requests in one process: DuckDB would hand the second one the database instance the
    # first one opened (the old file) if readers connected to the snapshot's path.
    wh = MartsWarehouse(path=tmp_path / "warehouse.duckdb")
    wh.build(loaded_at=LOADED)
    wh.insert("mart_shop_daily", [shop_row(1, D, views=1)])
    settings = Settings(
        environment=Environment.test,
        data_dir=tmp_path,
        jwt_secret=TEST_SECRET,
        warehouse_path=wh.path,
        _env_file=None,
    )
    with marts.open_marts(settings) as old:
        assert marts.shop_days(old, 1, D, D)[0].views == 1
        wh.insert("mart_shop_daily", [shop_row(1, D, views=2)], replace=True)  # the next run publishes
        with marts.open_marts(settings) as new:
            assert marts.shop_days(new, 1, D, D)[0].views == 2
        assert marts.shop_days(old, 1, D, D)[0].views == 1  # the old reader keeps its snapshot
