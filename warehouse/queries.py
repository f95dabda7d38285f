"""Read helpers over the warehouse for the dashboard and the API. Each takes an open connection,
normally `warehouse.duckdb.read_connection(location)`, i.e. the published read snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from warehouse.schema import EVENTS_STREAM, RAW


@dataclass(frozen=True)
class EventsPerDay:
    day: date  # UTC day of occurred_at, so late-loaded events still count in the day they happened
    event_type: str
    events: int


@dataclass(frozen=True)
class SnapshotStatus:
    table_name: str
    row_count: int
    loaded_at: datetime


@dataclass(frozen=True)
class LoadStatus:
    high_water_mark: int  # highest store events.id loaded
    events_loaded: int  # rows in raw.events
    source_count: int | None  # the store's event count when the last load read it
    last_rows_loaded: int
    loaded_at: datetime | None  # when the last event load committed (None: never)
    snapshots: tuple[SnapshotStatus, ...]


def events_per_day(
    conn: duckdb.DuckDBPyConnection,
    *,
    start: date | None = None,
    end: date | None = None,
    event_types: list[str] | None = None,
) -> list[EventsPerDay]:
    """Events per UTC day and type, `start` and `end` inclusive."""
    rows = conn.execute(
        """SELECT occurred_at::DATE AS day, event_type, count(*) AS events
           FROM raw.events
           WHERE ($start::DATE IS NULL OR occurred_at::DATE >= $start::DATE)
             AND ($end::DATE IS NULL OR occurred_at::DATE <= $end::DATE)
             AND ($types::VARCHAR[] IS NULL OR list_contains($types::VARCHAR[], event_type))
           GROUP BY ALL ORDER BY day, event_type""",
        {"start": start, "end": end, "types": event_types or None},
    ).fetchall()
    return [EventsPerDay(day=r[0], event_type=r[1], events=r[2]) for r in rows]


def load_status(conn: duckdb.DuckDBPyConnection) -> LoadStatus:
    """The events stream's high-water mark and last load, and each snapshot's last load."""
    state = conn.execute(
        """SELECT high_water_mark, rows_total, source_count, rows_loaded, loaded_at
            FROM meta.load_state WHERE stream = ?""",
        [EVENTS_STREAM],
    ).fetchall()
    snapshots = conn.execute(
        "SELECT table_name, row_count, loaded_at FROM meta.snapshots ORDER BY table_name"
    ).fetchall()
    mark, total, source_count, last_rows, loaded_at = state[0] if state else (0, 0, None, 0, None)
    return LoadStatus(
        high_water_mark=mark,
        events_loaded=total,
        source_count=source_count,
        last_rows_loaded=last_rows,
        loaded_at=loaded_at,
        snapshots=tuple(SnapshotStatus(table_name=r[0], row_count=r[1], loaded_at=r[2]) for r in snapshots),
    )


def raw_table_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count of every table in the raw schema."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
            [RAW],
        ).fetchall()
    ]
    counts: dict[str, int] = {}
    for name in tables:
        # Table names come from the catalogue just read, not from a caller.
        (count,) = conn.execute(f'SELECT count(*) FROM raw."{name}"').fetchall()[0]  # noqa: S608
        counts[name] = count
    return counts
