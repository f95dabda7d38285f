"""What is copied from the store: each source table's columns, read from the store's own metadata so a
new column reaches the warehouse without an edit here, minus the secrets listed below.

A column travels in three forms:
- as read from the store ("wire" columns, `select_sql`): what ADBC returns for the column on that
  database. SQLite has no decimal or timestamp type: times come as the text SQLAlchemy wrote, money
  as text or as a REAL (see `SourceColumn.select`), booleans as 0/1;
- cast by DuckDB into the warehouse type (`cast_sql`), the same expressions for both stores;
- stored as that type in DuckDB (`duckdb_columns`) or PostgreSQL (`postgres_columns`).
"""

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


class Dialect(StrEnum):
    sqlite = "sqlite"
    postgresql = "postgresql"


_POSTGRES_TYPES = {
    Kind.bigint: "BIGINT",
    Kind.integer: "INTEGER",
    Kind.text: "TEXT",
    Kind.boolean: "BOOLEAN",
    Kind.timestamp: "TIMESTAMPTZ",
    Kind.money: f"NUMERIC({MONEY_PRECISION}, {MONEY_SCALE})",
    Kind.double: "DOUBLE PRECISION",
    # JSON, not JSONB: stored as received, so the load does not parse every payload (dbt reads it
    # with ->> either way).
    Kind.json: "JSON",
}

# SQLite money stored as a number comes in this extra wire column (see SourceColumn.select).
REAL_SUFFIX = "__real"
# First row of every SQLite read: typed constants (see SourceTable.select_sql).
TYPED_ROW_FLAG = "__typed_row"

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
    "categories",
)
EVENTS_TABLE = "events"
# Columns DuckDB stores with zstd: nearly unique strings (UUIDs, JSON), where its default analysis
# (dictionary, FSST) costs about twice the CPU at load for a file twice the size (measured on 1M events).
DUCKDB_ZSTD: dict[str, frozenset[str]] = {EVENTS_TABLE: frozenset({"event_id", "request_id", "payload"})}


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


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SourceColumn:
    name: str
    kind: Kind

    @property
    def quoted(self) -> str:
        return _quote(self.name)

    def select(self, dialect: Dialect) -> list[str]:
        """The wire column(s) read from the store for this column.

        Money on SQLite: the store writes it as text into a NUMERIC column, which SQLite keeps as a REAL
        when it looks like one, and SQLite's own REAL to text conversion keeps only 15 digits. So a REAL
        travels as a double and is converted by DuckDB through its shortest round-trip text, which is
        what the store itself does when it reads one (`Decimal(repr(value))`); text and integers travel
        as text."""
        q = self.quoted
        if dialect is Dialect.postgresql:
            if self.kind in (Kind.money, Kind.json):
                return [f"CAST({q} AS TEXT) AS {q}"]
            return [q]
        if self.kind is Kind.money:
            real = _quote(self.name + REAL_SUFFIX)
            return [
                f"CASE WHEN typeof({q}) = 'real' THEN NULL ELSE CAST({q} AS TEXT) END AS {q}",
                f"CASE WHEN typeof({q}) = 'real' THEN {q} END AS {real}",
            ]
        if self.kind is Kind.json:
            return [f"CAST({q} AS TEXT) AS {q}"]
        return [q]

    def typed_constants(self) -> list[str]:
        """Constants of this column's wire type(s), for the typed first row of a SQLite read."""
        constant = {
            Kind.bigint: "0",
            Kind.integer: "0",
            Kind.boolean: "0",
            Kind.double: "0.5",
        }.get(self.kind, "''")
        if self.kind is Kind.money:
            return [f"'' AS {self.quoted}", f"0.5 AS {_quote(self.name + REAL_SUFFIX)}"]
        return [f"{constant} AS {self.quoted}"]


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[SourceColumn, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def quoted(self) -> str:
        return _quote(self.name)

    def select_sql(self, dialect: Dialect, where: str = "", order_by: str = "") -> str:
        """The wire columns of the rows matching `where`.

        On SQLite the first row is a row of typed constants, flagged in an extra column: the ADBC
        SQLite driver fixes each column's Arrow type from the values of its first batch, so a column
        whose first rows are all NULL would otherwise be typed as an integer and fail on its first text
        value. SQLite runs the parts of a UNION ALL in order; the reader checks and drops that row."""
        wire = ", ".join(s for c in self.columns for s in c.select(dialect))
        body = f"SELECT {wire} FROM {self.quoted}"  # noqa: S608 (names from the store's metadata)
        if where:
            body += f" WHERE {where}"
        if order_by:
            body += f" ORDER BY {order_by}"
        if dialect is Dialect.postgresql:
            return body
        typed = ", ".join(s for c in self.columns for s in c.typed_constants())
        return (
            f"SELECT 1 AS {TYPED_ROW_FLAG}, * FROM (SELECT {typed}) "  # noqa: S608 (metadata names)
            f"UNION ALL SELECT 0, * FROM ({body})"
        )

    def cast_sql(self, dialect: Dialect, *, json_as_text: bool = False) -> str:
        """DuckDB select list turning this table's wire columns (read from `dialect`) into the
        warehouse's types."""
        return ", ".join(_cast(c, dialect, json_as_text=json_as_text) for c in self.columns)

    def duckdb_columns(self) -> str:
        zstd = DUCKDB_ZSTD.get(self.name, frozenset())
        return ", ".join(
            f"{c.quoted} {c.kind.value}" + (" USING COMPRESSION zstd" if c.name in zstd else "")
            for c in self.columns
        )

    def postgres_columns(self) -> str:
        return ", ".join(f"{c.quoted} {_POSTGRES_TYPES[c.kind]}" for c in self.columns)


def _cast(column: SourceColumn, dialect: Dialect, *, json_as_text: bool) -> str:
    q = column.quoted
    kind = column.kind
    if kind is Kind.money and dialect is Dialect.sqlite:
        real = _quote(column.name + REAL_SUFFIX)
        money = Kind.money.value
        # DuckDB prints a double as its shortest round-trip text, as Python's repr does.
        return f"COALESCE(CAST({q} AS {money}), CAST(CAST({real} AS VARCHAR) AS {money})) AS {q}"
    target = Kind.text.value if kind is Kind.json and json_as_text else kind.value
    return f"CAST({q} AS {target}) AS {q}"


def postgres_type(kind: Kind) -> str:
    return _POSTGRES_TYPES[kind]


def source_table(name: str) -> SourceTable:
    table: Table = metadata.tables[name]
    hidden = SECRET_COLUMNS.get(name, frozenset())
    return SourceTable(
        name=name,
        columns=tuple(SourceColumn(c.name, _kind(c)) for c in table.columns if c.name not in hidden),
    )
