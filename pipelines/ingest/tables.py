"""What is copied from the store: each source table's columns, read from the store's own metadata so a
new column reaches the warehouse without an edit here, minus the secrets listed below."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, Integer, Table

from api.db.registry import metadata
from api.db.types import MONEY_PRECISION, MONEY_SCALE, Money, UTCDateTime


class Kind(StrEnum):
    bigint = "BIGINT"
    integer = "INTEGER"
    text = "VARCHAR"
    boolean = "BOOLEAN"
    timestamp = "TIMESTAMPTZ"
    money = f"DECIMAL({MONEY_PRECISION}, {MONEY_SCALE})"
    double = "DOUBLE"
    json = "JSON"


# Credentials never leave the store.
SECRET_COLUMNS: dict[str, frozenset[str]] = {"users": frozenset({"password_hash"})}
SNAPSHOT_TABLES = (
    "users",
    "shops",
    "products",
    "orders",
    "order_items",
    "reviews",
    "conversations",
    "messages",
    "video_calls",
    "shop_followers",
)
EVENTS_TABLE = "events"


def _kind(column: Column[object]) -> Kind:
    t = column.type
    if isinstance(t, Money):
        return Kind.money
    if isinstance(t, UTCDateTime):
        return Kind.timestamp
    if isinstance(t, JSON):
        return Kind.json
    if isinstance(t, Boolean):
        return Kind.boolean
    if isinstance(t, Float):
        return Kind.double
    if isinstance(t, BigInteger):
        return Kind.bigint
    if isinstance(t, Integer):
        return Kind.integer
    return Kind.text


@dataclass(frozen=True)
class SourceColumn:
    name: str
    kind: Kind

    def select(self) -> str:
        """The column as read from the store: exact decimals and JSON travel as text (SQLite would
        otherwise hand over floats, psycopg parsed objects)."""
        quoted = f'"{self.name}"'
        if self.kind in (Kind.money, Kind.json):
            return f"CAST({quoted} AS TEXT) AS {quoted}"
        return quoted

    def cast(self) -> str:
        """The column as inserted into DuckDB from an Arrow batch."""
        return f'CAST("{self.name}" AS {self.kind.value}) AS "{self.name}"'


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[SourceColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def select_sql(self, where: str = "", order_by: str = "") -> str:
        cols = ", ".join(c.select() for c in self.columns)
        sql = f'SELECT {cols} FROM "{self.name}"'  # noqa: S608 (names from the store's metadata)
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        return sql

    def duckdb_columns(self) -> str:
        return ", ".join(f'"{c.name}" {c.kind.value}' for c in self.columns)

    def duckdb_casts(self) -> str:
        return ", ".join(c.cast() for c in self.columns)


def source_table(name: str) -> SourceTable:
    table: Table = metadata.tables[name]
    hidden = SECRET_COLUMNS.get(name, frozenset())
    return SourceTable(
        name=name,
        columns=tuple(SourceColumn(c.name, _kind(c)) for c in table.columns if c.name not in hidden),
    )
