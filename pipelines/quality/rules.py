"""What a table must satisfy, written as plain data: the rules say what is checked and build the SQL
that fetches just the columns they need; `validate.py` turns them into Great Expectations expectations.

Kept free of Great Expectations imports: loading the definitions must stay fast, and GX takes seconds
to import."""

from __future__ import annotations

from dataclasses import dataclass

PARENT_FOUND = "__parent_found"


@dataclass(frozen=True)
class NotNull:
    column: str

    def describe(self) -> str:
        return f"{self.column} is never null"


@dataclass(frozen=True)
class Unique:
    columns: tuple[str, ...]

    def describe(self) -> str:
        return f"({', '.join(self.columns)}) is unique"


@dataclass(frozen=True)
class Between:
    """min <= column <= max (either bound may be open); nulls are not judged here."""

    column: str
    min_value: int | None = None
    max_value: int | None = None

    def describe(self) -> str:
        low = "" if self.min_value is None else f"{self.min_value} <= "
        high = "" if self.max_value is None else f" <= {self.max_value}"
        return f"{low}{self.column}{high}"


@dataclass(frozen=True)
class InSet:
    column: str
    values: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.column} in {{{', '.join(self.values)}}}"


@dataclass(frozen=True)
class References:
    """Every non-null `column` names an existing `parent`.`parent_column` (no orphans)."""

    column: str
    parent: str  # schema-qualified table
    parent_column: str = "id"

    @property
    def found_column(self) -> str:
        return f"{self.column}{PARENT_FOUND}"

    def describe(self) -> str:
        return f"{self.column} -> {self.parent}.{self.parent_column}"

    def select(self, alias: str) -> str:
        # NULL for a null key, so that an optional reference is not counted as an orphan. Names come
        # from the suites in this package, never from input.
        column = f'{alias}."{self.column}"'
        exists = f'EXISTS (SELECT 1 FROM {self.parent} p WHERE p."{self.parent_column}" = {column})'  # noqa: S608
        return f'CASE WHEN {column} IS NULL THEN NULL ELSE {exists} END AS "{self.found_column}"'


@dataclass(frozen=True)
class Equal:
    """Two columns of each row hold the same value (e.g. a mart's figure and its recomputation)."""

    column_a: str
    column_b: str

    def describe(self) -> str:
        return f"{self.column_a} = {self.column_b}"


Rule = NotNull | Unique | Between | InSet | References | Equal


def rule_columns(rule: Rule) -> tuple[str, ...]:
    match rule:
        case NotNull(column) | Between(column) | InSet(column) | References(column):
            return (column,)
        case Unique(columns):
            return columns
        case Equal(a, b):
            return (a, b)


@dataclass(frozen=True)
class Suite:
    """The rules of one table, checked as one Dagster asset check on `asset`.

    The checked rows come from `table` (only the columns the rules need), or from `sql` when the rules
    are about a computed relation (a reconciliation of two tables)."""

    name: str
    asset: str
    rules: tuple[Rule, ...]
    table: str | None = None
    sql: str | None = None
    where: str | None = None
    blocking: bool = True
    description: str = ""
    # Other assets the check reads (they must be materialized first).
    reads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.table is None) == (self.sql is None):
            raise ValueError(f"suite {self.name}: give exactly one of table or sql")

    def query(self) -> str:
        if self.sql is not None:
            return self.sql
        columns: list[str] = []
        for rule in self.rules:
            for column in rule_columns(rule):
                if column not in columns:
                    columns.append(column)
        select = [f't."{c}"' for c in columns]
        select += [r.select("t") for r in self.rules if isinstance(r, References)]
        sql = f"SELECT {', '.join(select)} FROM {self.table} t"  # noqa: S608 (names from this module)
        return f"{sql} WHERE {self.where}" if self.where else sql

    def summary(self) -> str:
        return "; ".join(r.describe() for r in self.rules)
