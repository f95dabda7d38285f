"""A report: the tables, headline numbers and charts of one dashboard section for one set of filters.

Tables keep exact values (Decimal money, ints, dates, UTC datetimes, text) with a format per column,
so every renderer shows the same numbers: the dashboard and the PDF as text, Excel as typed cells
with number formats, CSV as plain values. A chart is a spec over a table's columns, not a figure, so
Excel can draw it natively and plotly draws it for the pages and the PDF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Format(StrEnum):
    text = "text"
    integer = "integer"
    money = "money"  # Decimal, exact
    ratio = "ratio"  # a fraction in [0, 1], shown as a percentage
    number = "number"  # a float (model outputs, averages of counts)
    date = "date"
    datetime = "datetime"  # UTC


@dataclass(frozen=True)
class Column:
    name: str  # the key in each row
    label: str
    format: Format = Format.text


Cell = str | int | float | Decimal | date | datetime | bool | None


@dataclass(frozen=True)
class Table:
    name: str  # a short identifier: the CSV file's and the Excel sheet's name
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str | None = None

    def column(self, name: str) -> int:
        for i, c in enumerate(self.columns):
            if c.name == name:
                return i
        raise KeyError(f"{self.name} has no column {name!r}")

    def values(self, name: str) -> list[Cell]:
        i = self.column(name)
        return [r[i] for r in self.rows]

    def records(self) -> list[dict[str, Cell]]:
        return [dict(zip((c.name for c in self.columns), r, strict=True)) for r in self.rows]


class ChartKind(StrEnum):
    line = "line"
    bar = "bar"
    stacked_bar = "stacked_bar"
    area = "area"  # a line with a shaded band between two columns (forecast intervals)
    pie = "pie"
    scatter = "scatter"


@dataclass(frozen=True)
class Chart:
    """A chart of `table`: `x` against each of `y`; `series` splits rows into one trace per value
    (a currency, a segment) when the table is long rather than wide. For `area`, `band` names the
    (lower, upper) columns drawn around the single `y`. `y2` go on a secondary axis."""

    key: str
    title: str
    table: str
    x: str
    y: tuple[str, ...]
    kind: ChartKind = ChartKind.line
    series: str | None = None
    band: tuple[str, str] | None = None
    y2: tuple[str, ...] = ()
    x_title: str | None = None
    y_title: str | None = None


@dataclass(frozen=True)
class Metric:
    """A headline number, with the previous period's for the change."""

    label: str
    value: Cell
    format: Format = Format.integer
    previous: Cell = None
    help: str | None = None


@dataclass(frozen=True)
class Report:
    section: str  # the section's slug: overview, analytics, ...
    title: str
    subtitle: str  # what the filters select, in words
    generated_at: datetime
    freshness: str  # how fresh the data is, in words
    metrics: tuple[Metric, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # page-only data (drill-down choices)

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"report {self.section} has no table {name!r}")


def table(
    name: str,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    note: str | None = None,
) -> Table:
    cols = tuple(columns)
    for r in rows:
        if len(r) != len(cols):
            raise ValueError(f"table {name}: a row has {len(r)} cells for {len(cols)} columns")
    return Table(name, title, cols, tuple(tuple(r) for r in rows), note)
