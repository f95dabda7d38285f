"""Reads of the marts for the API and the dashboard, on either warehouse target.

`open_marts(settings)` yields a `MartReader`: on the published DuckDB snapshot by default (see
`warehouse.duckdb`), or on the PostgreSQL warehouse when `settings.warehouse_url` is set, inside one
REPEATABLE READ, read-only transaction so that every read of a request sees the same moment, as a
snapshot file does. The read functions below take a reader and return plain dataclasses; their SQL is
written once, in what both targets understand, with `:name` parameters.

A warehouse that does not exist yet, has no marts yet, or cannot be reached raises
`WarehouseUnavailable` (from `warehouse.duckdb`): callers answer "run the pipeline", never crash.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Protocol

import duckdb
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api.core.settings import Settings
from warehouse.duckdb import READ_WAIT_SECONDS, WarehouseUnavailable, open_snapshot
from warehouse.settings import warehouse_location

DUCKDB = "duckdb"
POSTGRES = "postgres"
MARTS = "marts"
MONEY_PLACES = Decimal("0.00000001")  # DECIMAL(38,8), the marts' money type
RUN_PIPELINE = "run the pipeline first (`store pipeline`, or the Dagster job)"

# PostgreSQL errors that mean "not built yet" rather than a bug: undefined table, undefined schema.
_MISSING_SQLSTATES = frozenset({"42P01", "3F000"})
# `:name` but not the `::` of a cast (the same rule as SQLAlchemy's text()).
_PARAM = re.compile(r"(?<![:\w]):(\w+)(?!:)")
_PG_STATEMENT_TIMEOUT_MS = 15_000


class MartReader(Protocol):
    """One open, consistent view of the warehouse."""

    @property
    def target(self) -> str: ...

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


class _DuckDbReader:
    target = DUCKDB

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(_PARAM.sub(r"$\1", sql), dict(params or {})).fetchall()
        except duckdb.CatalogException as exc:
            raise WarehouseUnavailable(_not_built(exc)) from exc


class _PostgresReader:
    target = POSTGRES

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self._conn.execute(text(sql), dict(params or {}))]
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in _MISSING_SQLSTATES:
                raise WarehouseUnavailable(_not_built(exc.orig)) from exc
            raise


def _not_built(exc: BaseException | None) -> str:
    return f"the warehouse is not built yet ({_first_line(exc)}): {RUN_PIPELINE}"


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else "unknown error"


def _driver_url(url: str) -> str:
    """`postgresql://...` with the psycopg (3) driver the project ships, unless one is named."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def postgres_engine(url: str) -> Engine:
    """This process's pool for a PostgreSQL warehouse: small, since analytics reads are few and mostly
    served from a cache."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = create_engine(
                _driver_url(url),
                pool_size=4,
                max_overflow=4,
                pool_pre_ping=True,
                pool_recycle=600,
                # Readers never write, and a runaway query must not hold a connection for long.
                # UTC sessions: days are UTC days, as on DuckDB (warehouse.duckdb sets the same).
                connect_args={
                    "options": "-c default_transaction_read_only=on -c TimeZone=UTC"
                    f" -c statement_timeout={_PG_STATEMENT_TIMEOUT_MS}"
                },
            )
        return engine


def dispose_engines() -> None:
    """Close this process's pooled PostgreSQL warehouse connections (tests, shutdown)."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.dispose()


@contextmanager
def open_marts(settings: Settings) -> Iterator[MartReader]:
    """A short-lived reader of the warehouse `settings` name: open one per request or page render."""
    if settings.warehouse_url:
        engine = postgres_engine(settings.warehouse_url)
        try:
            conn = engine.connect()
        except DBAPIError as exc:
            raise WarehouseUnavailable(
                f"the PostgreSQL warehouse is unreachable ({_first_line(exc.orig)})"
            ) from exc
        with conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield _PostgresReader(conn)
        return
    with snapshot_connection(warehouse_location(settings).snapshot) as duck:
        yield _DuckDbReader(duck)


@contextmanager
def snapshot_connection(
    snapshot: Path, *, wait_seconds: float = READ_WAIT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The published snapshot as it is now (see `warehouse.duckdb.open_snapshot`)."""
    if not snapshot.exists():
        raise WarehouseUnavailable(f"no warehouse at {snapshot}: {RUN_PIPELINE}")
    with open_snapshot(snapshot, wait_seconds=wait_seconds) as conn:
        yield conn


# --- identity and freshness ----------------------------------------------------------------------


def published_identity(settings: Settings) -> str:
    """What changes whenever the data readers see may have changed, cheaply: the key of caches.

    DuckDB: the read snapshot's inode, mtime and size (every publish renames a new file over it), read
    without opening it. PostgreSQL: the last load times, and the relations of the built schemas with
    their change counters (dbt rebuilds a table as a new relation; incremental models add rows)."""
    if settings.warehouse_url:
        with open_marts(settings) as reader:
            rows = reader.fetch(
                """SELECT
                    (SELECT CAST(max(loaded_at) AS TEXT) FROM meta.load_state),
                    (SELECT CAST(max(loaded_at) AS TEXT) FROM meta.snapshots),
                    (SELECT string_agg(CAST(s.relid AS TEXT) || '+'
                                       || CAST(s.n_tup_ins + s.n_tup_upd + s.n_tup_del AS TEXT), ','
                                       ORDER BY s.relid)
                       FROM pg_stat_user_tables s
                       WHERE s.schemaname IN ('staging', 'intermediate', 'marts'))"""
            )
        return "pg:" + "|".join(str(v) for v in rows[0])
    snapshot = warehouse_location(settings).snapshot
    try:
        st = snapshot.stat()
    except FileNotFoundError:
        raise WarehouseUnavailable(f"no warehouse at {snapshot}: {RUN_PIPELINE}") from None
    return f"duckdb:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"


@dataclass(frozen=True)
class Freshness:
    """How fresh what a reader sees is. `loaded_at`: the last committed load of any stream or table;
    `events_loaded_at`: of the events stream; `data_through`: the last day in the platform mart;
    `published_at`: when the DuckDB read snapshot was published (None on PostgreSQL)."""

    target: str
    loaded_at: datetime | None
    events_loaded_at: datetime | None
    data_through: date | None
    published_at: datetime | None

    def age_seconds(self, now: datetime) -> float | None:
        return None if self.loaded_at is None else max(0.0, (now - self.loaded_at).total_seconds())


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def freshness(reader: MartReader, settings: Settings, *, marts: bool = True) -> Freshness:
    """The reader's freshness; `marts=False` reads only the load bookkeeping (before dbt has built)."""
    (loaded, events_loaded, snapshots_loaded), *_ = reader.fetch(
        """SELECT
            (SELECT max(loaded_at) FROM meta.load_state),
            (SELECT max(loaded_at) FROM meta.load_state WHERE stream = 'events'),
            (SELECT max(loaded_at) FROM meta.snapshots)"""
    )
    through = None
    if marts:
        ((through,),) = reader.fetch('SELECT max("date") FROM marts.mart_platform_daily')
    stamps = [t for t in (_utc(loaded), _utc(snapshots_loaded)) if t is not None]
    published = _mtime(warehouse_location(settings).snapshot) if reader.target == DUCKDB else None
    return Freshness(
        target=reader.target,
        loaded_at=max(stamps) if stamps else None,
        events_loaded_at=_utc(events_loaded),
        data_through=through,
        published_at=published,
    )


@dataclass(frozen=True)
class StreamLoad:
    """meta.load_state: how far an incremental stream (the store's events) has been loaded."""

    stream: str
    high_water_mark: int
    source_count: int | None  # rows at the source when the last load read it
    rows_total: int
    rows_loaded: int  # by the last load
    loaded_at: datetime | None


@dataclass(frozen=True)
class TableLoad:
    """meta.snapshots: the last full copy of a store table."""

    table_name: str
    row_count: int
    loaded_at: datetime | None


def pipeline_loads(reader: MartReader) -> tuple[list[StreamLoad], list[TableLoad]]:
    streams = reader.fetch(
        """SELECT stream, high_water_mark, source_count, rows_total, rows_loaded, loaded_at
           FROM meta.load_state ORDER BY stream"""
    )
    tables = reader.fetch("SELECT table_name, row_count, loaded_at FROM meta.snapshots ORDER BY table_name")
    return (
        [
            StreamLoad(
                stream=r[0],
                high_water_mark=int(r[1] or 0),
                source_count=None if r[2] is None else int(r[2]),
                rows_total=int(r[3] or 0),
                rows_loaded=int(r[4] or 0),
                loaded_at=_utc(r[5]),
            )
            for r in streams
        ],
        [TableLoad(table_name=r[0], row_count=int(r[1] or 0), loaded_at=_utc(r[2])) for r in tables],
    )


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    except FileNotFoundError:
        return None


@dataclass(frozen=True)
class WarehouseSize:
    target: str
    bytes: int  # the read snapshot (DuckDB) or the whole database (PostgreSQL)
    writer_bytes: int | None  # DuckDB: the writer's file next to the snapshot


def warehouse_size(settings: Settings) -> WarehouseSize:
    if settings.warehouse_url:
        with open_marts(settings) as reader:
            ((size,),) = reader.fetch("SELECT pg_database_size(current_database())")
        return WarehouseSize(target=POSTGRES, bytes=int(size), writer_bytes=None)
    location = warehouse_location(settings)
    try:
        snapshot = location.snapshot.stat().st_size
    except FileNotFoundError:
        raise WarehouseUnavailable(f"no warehouse at {location.snapshot}: {RUN_PIPELINE}") from None
    writer = location.path.stat().st_size if location.path.exists() else None
    return WarehouseSize(target=DUCKDB, bytes=snapshot, writer_bytes=writer)


# --- money and ratios -----------------------------------------------------------------------------


def money(value: Decimal | int | None) -> Decimal:
    """A mart amount at the marts' scale (8 places), exactly."""
    return Decimal(value or 0).quantize(MONEY_PLACES, rounding=ROUND_HALF_EVEN)


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def average(total: Decimal, count: int) -> Decimal | None:
    return money(total / count) if count else None


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# --- shop days ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShopDay:
    """One row of marts.mart_shop_daily (or a day without a row: zeros, no currency)."""

    shop_id: int
    day: date
    currency: str | None
    views: int
    unique_visitors: int
    product_views: int
    messages_received: int
    orders: int
    paid_orders: int
    revenue: Decimal
    new_followers: int
    conversion_rate: float | None
    avg_order_value: Decimal | None

    @classmethod
    def empty(cls, shop_id: int, day: date) -> ShopDay:
        return cls(shop_id, day, None, 0, 0, 0, 0, 0, 0, money(0), 0, None, None)


_SHOP_DAY_COLUMNS = """shop_id, "date", currency, views, unique_visitors, product_views, messages_received,
    orders, paid_orders, revenue, new_followers, conversion_rate, avg_order_value"""


def _shop_day(row: Sequence[Any]) -> ShopDay:
    return ShopDay(
        shop_id=int(row[0]),
        day=row[1],
        currency=row[2],
        views=int(row[3] or 0),
        unique_visitors=int(row[4] or 0),
        product_views=int(row[5] or 0),
        messages_received=int(row[6] or 0),
        orders=int(row[7] or 0),
        paid_orders=int(row[8] or 0),
        revenue=money(row[9]),
        new_followers=int(row[10] or 0),
        conversion_rate=None if row[11] is None else float(row[11]),
        avg_order_value=None if row[12] is None else money(row[12]),
    )


def shop_days(reader: MartReader, shop_id: int, start: date, end: date) -> list[ShopDay]:
    """Every day from `start` to `end` (inclusive) for one shop: the mart's row, or zeros where the mart
    has none (before the shop existed, or after the last loaded day)."""
    rows = reader.fetch(
        f"""SELECT {_SHOP_DAY_COLUMNS} FROM marts.mart_shop_daily
            WHERE shop_id = :shop_id AND "date" BETWEEN :start AND :end ORDER BY "date", currency""",  # noqa: S608
        {"shop_id": shop_id, "start": start, "end": end},
    )
    by_day: dict[date, ShopDay] = {}
    for row in rows:
        day = _shop_day(row)
        by_day.setdefault(day.day, day)  # the contract's one row per shop and day
    return [by_day.get(d) or ShopDay.empty(shop_id, d) for d in days_between(start, end)]


@dataclass(frozen=True)
class ShopTotals:
    """Sums over days. `unique_visitors` adds each day's distinct visitors (visitor-days: the mart keeps
    no cross-day identity); the ratios are recomputed from the sums, never averaged."""

    days: int
    views: int
    unique_visitors: int
    product_views: int
    messages_received: int
    orders: int
    paid_orders: int
    new_followers: int
    revenue_by_currency: Mapping[str, Decimal] = field(default_factory=dict)

    @property
    def currency(self) -> str | None:
        """The one currency of the period's revenue (None: none, or several)."""
        return next(iter(self.revenue_by_currency)) if len(self.revenue_by_currency) == 1 else None

    @property
    def revenue(self) -> Decimal | None:
        """Total revenue, if it is in one currency (zero when there was none); None when mixed."""
        if len(self.revenue_by_currency) > 1:
            return None
        return money(sum(self.revenue_by_currency.values(), Decimal(0)))

    @property
    def conversion_rate(self) -> float | None:
        return ratio(self.orders, self.unique_visitors)

    @property
    def avg_order_value(self) -> Decimal | None:
        revenue = self.revenue
        return None if revenue is None else average(revenue, self.orders)


def shop_totals(days: Sequence[ShopDay]) -> ShopTotals:
    revenue: dict[str, Decimal] = {}
    for d in days:
        if d.currency is not None:
            revenue[d.currency] = money(revenue.get(d.currency, Decimal(0)) + d.revenue)
    return ShopTotals(
        days=len(days),
        views=sum(d.views for d in days),
        unique_visitors=sum(d.unique_visitors for d in days),
        product_views=sum(d.product_views for d in days),
        messages_received=sum(d.messages_received for d in days),
        orders=sum(d.orders for d in days),
        paid_orders=sum(d.paid_orders for d in days),
        new_followers=sum(d.new_followers for d in days),
        revenue_by_currency=revenue,
    )


@dataclass(frozen=True)
class ShopRank:
    shop_id: int
    currency: str | None
    orders: int
    paid_orders: int
    revenue: Decimal
    views: int
    unique_visitors: int

    @property
    def conversion_rate(self) -> float | None:
        return ratio(self.orders, self.unique_visitors)


def top_shops(reader: MartReader, start: date, end: date, *, limit: int = 10) -> list[ShopRank]:
    """Shops by revenue (then orders) over the days, one line per shop and currency."""
    rows = reader.fetch(
        """SELECT shop_id, currency,
                  CAST(sum(orders) AS BIGINT), CAST(sum(paid_orders) AS BIGINT),
                  CAST(sum(revenue) AS DECIMAL(38, 8)),
                  CAST(sum(views) AS BIGINT), CAST(sum(unique_visitors) AS BIGINT)
           FROM marts.mart_shop_daily
           WHERE "date" BETWEEN :start AND :end
           GROUP BY shop_id, currency
           HAVING sum(orders) > 0 OR sum(views) > 0
           ORDER BY sum(revenue) DESC, sum(orders) DESC, shop_id
           LIMIT :limit""",
        {"start": start, "end": end, "limit": limit},
    )
    return [
        ShopRank(
            shop_id=int(r[0]),
            currency=r[1],
            orders=int(r[2] or 0),
            paid_orders=int(r[3] or 0),
            revenue=money(r[4]),
            views=int(r[5] or 0),
            unique_visitors=int(r[6] or 0),
        )
        for r in rows
    ]


# --- the platform ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformDay:
    """One row of marts.mart_platform_daily (zeros for a day without one)."""

    day: date
    active_users: int
    new_users: int
    buyers: int
    orders: int
    paid_orders: int
    revenue: Decimal
    avg_order_value: Decimal | None
    conversion_rate: float | None
    churned_users: int
    churn_rate: float | None

    @classmethod
    def empty(cls, day: date) -> PlatformDay:
        return cls(day, 0, 0, 0, 0, 0, money(0), None, None, 0, None)


def platform_days(reader: MartReader, start: date, end: date) -> list[PlatformDay]:
    """Every day from `start` to `end`: the mart's row or zeros."""
    rows = reader.fetch(
        """SELECT "date", active_users, new_users, buyers, orders, paid_orders, revenue, avg_order_value,
                  conversion_rate, churned_users, churn_rate
           FROM marts.mart_platform_daily WHERE "date" BETWEEN :start AND :end ORDER BY "date" """,
        {"start": start, "end": end},
    )
    by_day = {
        r[0]: PlatformDay(
            day=r[0],
            active_users=int(r[1] or 0),
            new_users=int(r[2] or 0),
            buyers=int(r[3] or 0),
            orders=int(r[4] or 0),
            paid_orders=int(r[5] or 0),
            revenue=money(r[6]),
            avg_order_value=None if r[7] is None else money(r[7]),
            conversion_rate=None if r[8] is None else float(r[8]),
            churned_users=int(r[9] or 0),
            churn_rate=None if r[10] is None else float(r[10]),
        )
        for r in rows
    }
    return [by_day.get(d) or PlatformDay.empty(d) for d in days_between(start, end)]


@dataclass(frozen=True)
class PlatformTotals:
    """Over a period: sums of the daily counts (`buyers` and `active_user_days` count a user once per
    day), the average and peak of daily active users, the ratios from the sums, and the churn rate of
    the period's last day (a churn rate is a state, not a flow)."""

    days: int
    active_user_days: int
    avg_daily_active_users: float
    peak_daily_active_users: int
    new_users: int
    buyers: int
    orders: int
    paid_orders: int
    churned_users: int
    churn_rate: float | None

    @property
    def conversion_rate(self) -> float | None:
        return ratio(self.buyers, self.active_user_days)


def platform_totals(days: Sequence[PlatformDay]) -> PlatformTotals:
    active = [d.active_users for d in days]
    return PlatformTotals(
        days=len(days),
        active_user_days=sum(active),
        avg_daily_active_users=sum(active) / len(days) if days else 0.0,
        peak_daily_active_users=max(active, default=0),
        new_users=sum(d.new_users for d in days),
        buyers=sum(d.buyers for d in days),
        orders=sum(d.orders for d in days),
        paid_orders=sum(d.paid_orders for d in days),
        churned_users=sum(d.churned_users for d in days),
        churn_rate=days[-1].churn_rate if days else None,
    )


@dataclass(frozen=True)
class RevenueDay:
    """One row of marts.mart_revenue_daily: a day's orders and revenue in one currency."""

    day: date
    currency: str
    orders: int
    paid_orders: int
    revenue: Decimal
    avg_order_value: Decimal | None
    cumulative_revenue: Decimal


def revenue_days(reader: MartReader, start: date, end: date) -> list[RevenueDay]:
    """The mart's rows in the period (days without orders may have no row)."""
    rows = reader.fetch(
        """SELECT "date", currency, orders, paid_orders, revenue, avg_order_value, cumulative_revenue
           FROM marts.mart_revenue_daily WHERE "date" BETWEEN :start AND :end ORDER BY "date", currency""",
        {"start": start, "end": end},
    )
    return [
        RevenueDay(
            day=r[0],
            currency=r[1],
            orders=int(r[2] or 0),
            paid_orders=int(r[3] or 0),
            revenue=money(r[4]),
            avg_order_value=None if r[5] is None else money(r[5]),
            cumulative_revenue=money(r[6]),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class CurrencyRevenue:
    currency: str
    orders: int
    paid_orders: int
    revenue: Decimal

    @property
    def avg_order_value(self) -> Decimal | None:
        return average(self.revenue, self.orders)


def revenue_by_currency(days: Sequence[RevenueDay]) -> list[CurrencyRevenue]:
    """The period's revenue per currency, largest first."""
    sums: dict[str, list[Any]] = {}
    for d in days:
        acc = sums.setdefault(d.currency, [0, 0, Decimal(0)])
        acc[0] += d.orders
        acc[1] += d.paid_orders
        acc[2] += d.revenue
    # mart_revenue_daily has a row for every currency every day: the period's unused ones are left out.
    out = [CurrencyRevenue(c, o, p, money(r)) for c, (o, p, r) in sums.items() if o or r]
    return sorted(out, key=lambda c: (-c.revenue, c.currency))


# --- products -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRank:
    product_id: int
    shop_id: int | None
    currency: str | None
    units_sold: int  # units in orders that count as revenue
    orders: int  # orders placed with the product, whatever became of them
    revenue: Decimal
    views: int


def top_products(reader: MartReader, start: date, end: date, *, limit: int = 10) -> list[ProductRank]:
    """Products by revenue (then units sold) over the days, one line per product and order currency,
    from the order lines (marts.fct_order_items) and page views (marts.fct_product_views) of the days:
    mart_product_performance covers each product's whole life, not a period."""
    rows = reader.fetch(
        """WITH sold AS (
               SELECT product_id, max(shop_id) AS shop_id, currency,
                      CAST(sum(CASE WHEN counts_as_revenue THEN quantity ELSE 0 END) AS BIGINT) AS units_sold,
                      CAST(count(DISTINCT order_id) AS BIGINT) AS orders,
                      CAST(coalesce(sum(revenue_amount), 0) AS DECIMAL(38, 8)) AS revenue
               FROM marts.fct_order_items
               WHERE placed_date BETWEEN :start AND :end
               GROUP BY product_id, currency
           ), viewed AS (
               SELECT product_id, CAST(count(*) AS BIGINT) AS views
               FROM marts.fct_product_views
               WHERE view_date BETWEEN :start AND :end
               GROUP BY product_id
           )
           SELECT s.product_id, s.shop_id, s.currency, s.units_sold, s.orders, s.revenue,
                  coalesce(v.views, 0)
           FROM sold s LEFT JOIN viewed v ON v.product_id = s.product_id
           ORDER BY s.revenue DESC, s.units_sold DESC, s.orders DESC, s.product_id
           LIMIT :limit""",
        {"start": start, "end": end, "limit": limit},
    )
    return [
        ProductRank(
            product_id=int(r[0]),
            shop_id=None if r[1] is None else int(r[1]),
            currency=r[2],
            units_sold=int(r[3] or 0),
            orders=int(r[4] or 0),
            revenue=money(r[5]),
            views=int(r[6] or 0),
        )
        for r in rows
    ]
