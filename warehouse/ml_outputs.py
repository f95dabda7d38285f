"""The `ml` schema: what the trained models produce, for the API and the dashboard to read.

The same DDL runs on DuckDB and PostgreSQL (money DECIMAL(38,8), doubles as FLOAT8, JSON as text).
The ML assets write through an `MlWriter` (a read-write connection of either target): each write
replaces one table's whole content in a single transaction, so a reader sees the old rows or the new
ones, never a mix. Readers use the `read_*` helpers over a `warehouse.marts.MartReader` (the published
snapshot on DuckDB, the database itself on PostgreSQL); a warehouse without the tables raises
`WarehouseUnavailable` there, which the API answers with a 503.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb
import psycopg

from warehouse.marts import DUCKDB, POSTGRES, MartReader, money

ML = "ml"
MONEY_TYPE = "DECIMAL(38, 8)"

# name -> (column, type) in order. Types spelt so that both engines accept them unchanged.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "demand_forecast": (
        ("level", "VARCHAR"),  # category | shop
        ("key", "BIGINT"),  # the category's or the shop's id
        ("day", "DATE"),
        ("measure", "VARCHAR"),  # orders | units
        ("yhat", "FLOAT8"),
        ("lower", "FLOAT8"),
        ("upper", "FLOAT8"),
        ("model_kind", "VARCHAR"),  # prophet | fallback
        ("model_version", "VARCHAR"),
    ),
    "restock_suggestions": (
        ("product_id", "BIGINT"),
        ("shop_id", "BIGINT"),
        ("category_id", "BIGINT"),
        ("stock", "BIGINT"),
        ("daily_demand", "FLOAT8"),
        ("demand_lead_time", "FLOAT8"),
        ("demand_lead_time_upper", "FLOAT8"),
        ("days_of_cover", "FLOAT8"),
        ("sell_out_date", "DATE"),
        ("suggested_quantity", "BIGINT"),
        ("model_version", "VARCHAR"),
    ),
    "price_suggestions": (
        ("product_id", "BIGINT"),
        ("shop_id", "BIGINT"),
        ("category_id", "BIGINT"),
        ("current_price", MONEY_TYPE),
        ("reference_price", MONEY_TYPE),
        ("recommended_price", MONEY_TYPE),
        ("purchase_probability", "FLOAT8"),
        ("recommended_purchase_probability", "FLOAT8"),
        ("revenue_per_100_views", MONEY_TYPE),
        ("recommended_revenue_per_100_views", MONEY_TYPE),
        ("expected_revenue_change", MONEY_TYPE),  # per 100 views, absolute
        ("expected_revenue_change_pct", "FLOAT8"),  # relative: 0.12 = +12 %
        ("model_version", "VARCHAR"),
    ),
    "user_segments": (
        ("user_id", "BIGINT"),
        ("segment_name", "VARCHAR"),
        ("cluster", "INTEGER"),
        ("recency_days", "FLOAT8"),
        ("frequency", "FLOAT8"),
        ("monetary", MONEY_TYPE),
        ("views", "FLOAT8"),
        ("conversion", "FLOAT8"),
        ("view_rel_price", "FLOAT8"),
        ("cancel_rate", "FLOAT8"),
        ("tenure_days", "FLOAT8"),
        ("model_version", "VARCHAR"),
    ),
    "fraud_scores": (
        ("order_id", "BIGINT"),
        ("buyer_id", "BIGINT"),
        ("score", "FLOAT8"),
        ("suspicious", "BOOLEAN"),
        ("model_version", "VARCHAR"),
    ),
    "insights": (
        ("rank", "INTEGER"),
        ("kind", "VARCHAR"),
        ("title", "VARCHAR"),
        ("text", "VARCHAR"),
        ("score", "FLOAT8"),
        ("shop_id", "BIGINT"),  # the shop it is about, if any: what a shop owner may read
        ("product_id", "BIGINT"),
        ("subject", "VARCHAR"),  # JSON text
        ("numbers", "VARCHAR"),  # JSON text
        ("generated_at", "TIMESTAMPTZ"),
        ("model_version", "VARCHAR"),
    ),
    "model_runs": (
        ("name", "VARCHAR"),
        ("version", "VARCHAR"),
        ("trained_at", "TIMESTAMPTZ"),
        ("metrics", "VARCHAR"),  # JSON text
        ("good", "BOOLEAN"),
        ("data_version", "VARCHAR"),
    ),
}


def ddl() -> list[str]:
    statements = [f"CREATE SCHEMA IF NOT EXISTS {ML}"]
    for name, columns in TABLES.items():
        body = ", ".join(f'"{c}" {t}' for c, t in columns)
        statements.append(f"CREATE TABLE IF NOT EXISTS {ML}.{name} ({body})")
    return statements


_DDL_LOCK = zlib.crc32(b"warehouse.ml_outputs")
_PARAM = re.compile(r"(?<![:\w]):(\w+)(?!:)")


class MlWriter:
    """A read-write connection to the warehouse (DuckDB file or PostgreSQL) for the ML assets: reads
    their input (it is a `MartReader`) and replaces the ml tables."""

    def __init__(self, conn: duckdb.DuckDBPyConnection | psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.target = DUCKDB if isinstance(conn, duckdb.DuckDBPyConnection) else POSTGRES

    def fetch(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if isinstance(self._conn, duckdb.DuckDBPyConnection):
            return self._conn.execute(_PARAM.sub(r"$\1", sql), dict(params or {})).fetchall()
        query = _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))
        return [tuple(r) for r in self._conn.execute(query.encode(), dict(params or {})).fetchall()]

    def ensure_schema(self) -> None:
        if isinstance(self._conn, duckdb.DuckDBPyConnection):
            for statement in ddl():
                self._conn.execute(statement)
            return
        with self._conn.transaction():
            # CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE of the same name.
            self._conn.execute(f"SELECT pg_advisory_xact_lock({_DDL_LOCK})".encode())
            for statement in ddl():
                self._conn.execute(statement.encode())

    def replace(self, table: str, rows: Sequence[Sequence[Any]]) -> int:
        """`table`'s content becomes `rows` (tuples in the table's column order), in one transaction."""
        columns = [c for c, _ in TABLES[table]]
        names = ", ".join(f'"{c}"' for c in columns)
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"ml.{table} takes {len(columns)} values per row, got {len(row)}")
        if isinstance(self._conn, duckdb.DuckDBPyConnection):
            conn = self._conn
            conn.execute("BEGIN TRANSACTION")
            try:
                conn.execute(f"DELETE FROM {ML}.{table}")  # noqa: S608 (names from TABLES)
                if rows:
                    # One Arrow table in, not a statement per row: tens of thousands of forecast rows.
                    conn.register("_ml_rows", _arrow(table, rows))
                    try:
                        conn.execute(f"INSERT INTO {ML}.{table} ({names}) SELECT * FROM _ml_rows")  # noqa: S608
                    finally:
                        conn.unregister("_ml_rows")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return len(rows)
        with self._conn.transaction():
            self._conn.execute(f"DELETE FROM {ML}.{table}".encode())  # noqa: S608
            with self._conn.cursor().copy(f"COPY {ML}.{table} ({names}) FROM STDIN".encode()) as copy:
                for row in rows:
                    copy.write_row(row)
        return len(rows)

    def record_run(
        self,
        name: str,
        version: str,
        *,
        trained_at: datetime,
        metrics: Mapping[str, Any],
        good: bool,
        data_version: str,
    ) -> None:
        """Appends one training run to ml.model_runs (the history of every model's runs)."""
        params = {
            "name": name,
            "version": version,
            "trained_at": trained_at.astimezone(UTC),
            "metrics": to_json(dict(metrics)),
            "good": good,
            "data_version": data_version,
        }
        sql = (
            "INSERT INTO ml.model_runs (name, version, trained_at, metrics, good, data_version)"
            " VALUES (:name, :version, :trained_at, :metrics, :good, :data_version)"
        )
        if isinstance(self._conn, duckdb.DuckDBPyConnection):
            self._conn.execute(_PARAM.sub(r"$\1", sql), params)
        else:
            self._conn.execute(_PARAM.sub(r"%(\1)s", sql).encode(), params)


def _arrow(table: str, rows: Sequence[Sequence[Any]]) -> Any:
    """The rows as an Arrow table typed like the ml table (Decimals stay exact)."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "FLOAT8": pa.float64(),
        "BOOLEAN": pa.bool_(),
        "DATE": pa.date32(),
        "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
        MONEY_TYPE: pa.decimal128(38, 8),
    }
    columns = TABLES[table]
    arrays = [pa.array([row[i] for row in rows], type=types[kind]) for i, (_, kind) in enumerate(columns)]
    return pa.table(arrays, names=[c for c, _ in columns])


def to_json(value: Any) -> str:
    """JSON text for the metrics and numbers columns: Decimals as strings, numpy scalars as numbers."""
    return json.dumps(_plain(value), sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):
        return _plain(value.item())
    return str(value)


# --- reads ---------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class ModelRun:
    name: str
    version: str
    trained_at: datetime | None
    metrics: dict[str, Any]
    good: bool
    data_version: str


def model_runs(reader: MartReader, name: str | None = None) -> list[ModelRun]:
    """Training runs, newest first (of one model when `name` is given)."""
    # No `:name IS NULL`: PostgreSQL cannot type a NULL parameter.
    where = "" if name is None else " WHERE name = :name"
    rows = reader.fetch(
        "SELECT name, version, trained_at, metrics, good, data_version FROM ml.model_runs"  # noqa: S608
        + where
        + " ORDER BY trained_at DESC, version DESC",
        {} if name is None else {"name": name},
    )
    return [
        ModelRun(
            name=str(r[0]),
            version=str(r[1]),
            trained_at=_utc(r[2]),
            metrics=json.loads(r[3]) if r[3] else {},
            good=bool(r[4]),
            data_version=str(r[5] or ""),
        )
        for r in rows
    ]


def latest_good_run(reader: MartReader, name: str) -> ModelRun | None:
    """The newest run of `name` saved as good: the one whose outputs the ml tables hold."""
    return next((r for r in model_runs(reader, name) if r.good), None)


@dataclass(frozen=True)
class PriceSuggestion:
    product_id: int
    shop_id: int | None
    category_id: int | None
    current_price: Decimal
    reference_price: Decimal
    recommended_price: Decimal
    purchase_probability: float
    recommended_purchase_probability: float
    revenue_per_100_views: Decimal
    recommended_revenue_per_100_views: Decimal
    expected_revenue_change: Decimal
    expected_revenue_change_pct: float
    model_version: str


def price_suggestion(reader: MartReader, product_id: int) -> PriceSuggestion | None:
    rows = reader.fetch(
        """SELECT product_id, shop_id, category_id, current_price, reference_price, recommended_price,
                  purchase_probability, recommended_purchase_probability, revenue_per_100_views,
                  recommended_revenue_per_100_views, expected_revenue_change,
                  expected_revenue_change_pct, model_version
           FROM ml.price_suggestions WHERE product_id = :product_id""",
        {"product_id": product_id},
    )
    if not rows:
        return None
    r = rows[0]
    return PriceSuggestion(
        product_id=int(r[0]),
        shop_id=None if r[1] is None else int(r[1]),
        category_id=None if r[2] is None else int(r[2]),
        current_price=money(r[3]),
        reference_price=money(r[4]),
        recommended_price=money(r[5]),
        purchase_probability=float(r[6]),
        recommended_purchase_probability=float(r[7]),
        revenue_per_100_views=money(r[8]),
        recommended_revenue_per_100_views=money(r[9]),
        expected_revenue_change=money(r[10]),
        expected_revenue_change_pct=float(r[11]),
        model_version=str(r[12] or ""),
    )


@dataclass(frozen=True)
class StoredInsight:
    rank: int
    kind: str
    title: str
    text: str
    score: float
    shop_id: int | None
    product_id: int | None
    subject: dict[str, Any]
    numbers: dict[str, Any]
    generated_at: datetime | None
    model_version: str


def insights(reader: MartReader, shop_ids: Sequence[int] | None = None) -> list[StoredInsight]:
    """Every insight in rank order, or (`shop_ids` given) those about one of the shops."""
    rows = reader.fetch(
        """SELECT rank, kind, title, text, score, shop_id, product_id, subject, numbers, generated_at,
                  model_version
           FROM ml.insights ORDER BY rank"""
    )
    wanted = None if shop_ids is None else set(shop_ids)
    out = []
    for r in rows:
        shop = None if r[5] is None else int(r[5])
        if wanted is not None and shop not in wanted:
            continue
        out.append(
            StoredInsight(
                rank=int(r[0]),
                kind=str(r[1]),
                title=str(r[2]),
                text=str(r[3]),
                score=float(r[4]),
                shop_id=shop,
                product_id=None if r[6] is None else int(r[6]),
                subject=json.loads(r[7]) if r[7] else {},
                numbers=json.loads(r[8]) if r[8] else {},
                generated_at=_utc(r[9]),
                model_version=str(r[10] or ""),
            )
        )
    return out


def count(reader: MartReader, table: str) -> int:
    if table not in TABLES:
        raise ValueError(f"no ml table {table}")
    ((n,),) = reader.fetch(f"SELECT count(*) FROM {ML}.{table}")  # noqa: S608 (names from TABLES)
    return int(n)


@contextmanager
def writer_for(conn: duckdb.DuckDBPyConnection | psycopg.Connection[Any]) -> Iterator[MlWriter]:
    """An `MlWriter` over `conn` with the schema in place."""
    w = MlWriter(conn)
    w.ensure_schema()
    yield w
