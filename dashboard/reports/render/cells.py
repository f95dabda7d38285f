"""One cell of a report as the renderers write it: display text (PDF, pages) or a plain CSV value.

Display text reads like the dashboard: money exact with thousands separators, ratios as percents,
times in UTC. CSV values are for machines: money as the exact Decimal, ratios as the fraction."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeGuard

from dashboard import formatting
from dashboard.reports.model import Cell, Format, Metric

NUMERIC = frozenset({Format.integer, Format.money, Format.ratio, Format.number})


def is_number(value: Cell) -> TypeGuard[int | float | Decimal]:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def utc(value: datetime) -> datetime:
    """Aware in UTC; a naive datetime is taken to be UTC already (the warehouse's convention)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """For Excel and plotly, which have no time zones: the UTC wall time."""
    return utc(value).replace(tzinfo=None)


def exact(value: Decimal) -> str:
    """The Decimal as stored, never in exponent notation (`str(Decimal("1E-8"))` is `1E-8`)."""
    return format(value, "f")


def display(value: Cell, fmt: Format) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if fmt is Format.money and is_number(value):
        return formatting.money(_decimal(value))
    if fmt is Format.ratio and is_number(value):
        return formatting.ratio(float(value))
    if fmt is Format.integer and is_number(value):
        return _integer(value)
    if fmt is Format.number and is_number(value):
        return _number(float(value))
    if isinstance(value, datetime):
        return utc(value).date().isoformat() if fmt is Format.date else f"{utc(value):%Y-%m-%d %H:%M} UTC"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return exact(value)
    return str(value)


def csv_value(value: Cell, fmt: Format) -> str:
    """A value a program reads back exactly: Decimals as stored, floats round-trip, ISO dates."""
    del fmt  # the value's own type says how to write it exactly; the format is for people
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return exact(value)
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)  # int, float (repr round-trips), text


def change(metric: Metric) -> str | None:
    """`+12.5%` against the previous period, or None when there is nothing to compare with."""
    now, before = metric.value, metric.previous
    if is_number(now) and is_number(before):
        return formatting.change(_decimal(now), _decimal(before))
    return None


def change_fraction(metric: Metric) -> float | None:
    """The same change as a fraction (Excel shows it with a percent format)."""
    now, before = metric.value, metric.previous
    if is_number(now) and is_number(before) and before != 0:
        return float((_decimal(now) - _decimal(before)) / _decimal(before))
    return None


def to_float(value: Cell) -> float | None:
    """For drawing only: the exact values stay in the tables."""
    return float(value) if is_number(value) else None


def _decimal(value: int | float | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _integer(value: int | float | Decimal) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value == int(value):
        return f"{int(value):,}"
    return formatting.money(_decimal(value)) if isinstance(value, Decimal) else f"{value:,.2f}"


def _number(value: float) -> str:
    # Model outputs run from probabilities to thousands: small ones keep three significant digits.
    if value != value:  # NaN
        return "n/a"
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"
