"""The Overview's date range as a shared URL states it."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dashboard.sections.overview import bounds, date_range

TODAY = date(2026, 3, 15)


def test_range_from_the_url() -> None:
    assert date_range({"start": "2026-01-01", "end": "2026-01-31"}, TODAY) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )
    assert date_range({"start": "2026-01-31", "end": "2026-01-01"}, TODAY) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )


@pytest.mark.parametrize("params", [{}, {"start": "2026-01-01"}, {"start": "yesterday", "end": "2026-01-02"}])
def test_missing_or_bad_ranges_mean_the_last_week(params: dict[str, str]) -> None:
    assert date_range(params, TODAY) == (date(2026, 3, 9), TODAY)


def test_bounds_include_the_last_day() -> None:
    assert bounds(date(2026, 1, 1), date(2026, 1, 1)) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
    )
