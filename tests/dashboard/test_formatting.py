"""Numbers as the dashboard writes them: no digit of a stored amount dropped, changes against zero."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dashboard import formatting


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("60.50000000"), "60.50"),
        (Decimal("1234567.1"), "1,234,567.10"),
        (Decimal("0.00123400"), "0.001234"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("0E-8"), "0.00"),
        (Decimal("1E+3"), "1,000.00"),
    ],
)
def test_money_keeps_every_significant_digit(amount: Decimal, text: str) -> None:
    assert formatting.money(amount) == text
    assert formatting.money(amount, "USDT") == f"{text} USDT"


def test_change_in_percent() -> None:
    assert formatting.change(5, 1) == "+400.0%"
    assert formatting.change(Decimal("60.5"), Decimal("25")) == "+142.0%"
    assert formatting.change(1, 4) == "-75.0%"
    assert formatting.change(0, 0) is None and formatting.change(3, 0) is None


def test_ratio() -> None:
    assert formatting.ratio(5 / 3) == "166.7%" and formatting.ratio(None) == "n/a"
