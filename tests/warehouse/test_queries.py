from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from warehouse.duckdb import connect_write, publish_snapshot, read_connection
from warehouse.queries import EventsPerDay, events_per_day, load_status, raw_table_counts
from warehouse.schema import ensure_schema
from warehouse.settings import WarehouseLocation


@pytest.fixture
def location(tmp_path: Path) -> WarehouseLocation:
    loc = WarehouseLocation(tmp_path / "warehouse.duckdb")
    conn = connect_write(loc.path)
    ensure_schema(conn)
    conn.execute(
        "CREATE TABLE raw.events (id BIGINT, event_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMPTZ)"
    )
    conn.execute(
        """INSERT INTO raw.events VALUES
            (1, 'a', 'order.placed', '2026-03-01 23:30:00+00'),
            (2, 'b', 'order.placed', '2026-03-02 01:00:00+02'),  -- 23:00 UTC on the 1st
            (3, 'c', 'product.viewed', '2026-03-02 00:10:00+00'),
            (4, 'd', 'order.placed', '2026-03-02 09:00:00+00')"""
    )
    conn.execute("CREATE TABLE raw.users (id BIGINT)")
    publish_snapshot(conn, loc)
    conn.close()
    return loc


def test_events_per_day_counts_utc_days(location: WarehouseLocation) -> None:
    with read_connection(location) as conn:
        assert events_per_day(conn) == [
            EventsPerDay(date(2026, 3, 1), "order.placed", 2),
            EventsPerDay(date(2026, 3, 2), "order.placed", 1),
            EventsPerDay(date(2026, 3, 2), "product.viewed", 1),
        ]
        assert events_per_day(conn, start=date(2026, 3, 2), event_types=["order.placed"]) == [
            EventsPerDay(date(2026, 3, 2), "order.placed", 1)
        ]
        assert events_per_day(conn, end=date(2026, 2, 28)) == []


def test_status_and_counts_before_any_load(location: WarehouseLocation) -> None:
    with read_connection(location) as conn:
        status = load_status(conn)
        counts = raw_table_counts(conn)
    assert (status.high_water_mark, status.loaded_at, status.snapshots) == (0, None, ())
    assert counts == {"events": 4, "users": 0}
