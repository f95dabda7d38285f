"""How numbers read on the dashboard: money exact to its last significant digit, changes in percent."""

from __future__ import annotations

from decimal import Decimal

MIN_DECIMALS = 2


def money(amount: Decimal, currency: str | None = None) -> str:
    """`1,234.5` as `1,234.50`; `0.00012300` as `0.000123`: no digit of the stored amount is lost."""
    exponent = amount.normalize().as_tuple().exponent
    places = max(MIN_DECIMALS, -exponent if isinstance(exponent, int) else MIN_DECIMALS)
    text = f"{amount:,.{places}f}"
    return f"{text} {currency}" if currency else text


def change(current: float | Decimal, previous: float | Decimal) -> str | None:
    """The change from the previous period in percent, e.g. `+12.5%`; None when there was nothing
    before to compare with."""
    if previous == 0:
        return None
    pct = (Decimal(str(current)) - Decimal(str(previous))) / Decimal(str(previous)) * 100
    return f"{pct:+.1f}%"


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"
