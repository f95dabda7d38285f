"""The ingest against real stores (SQLite and PostgreSQL) and real warehouses (a DuckDB file and a
PostgreSQL database), through the one entry point the pipelines use (`open_target`): what lands in the
warehouse equals what the store itself reads back, reruns neither lose nor duplicate an event.
Crashes in a killed process: tests/pipelines/test_crash.py."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
from sqlalchemy import insert, select, text, update

from api.core.settings import Settings
from api.db.registry import metadata
from pipelines.ingest.load import load_events
from pipelines.ingest.results import LoadHooks
from pipelines.ingest.tables import SNAPSHOT_TABLES
from pipelines.ingest.targets import open_target
from tests.api.test_orders import market, place
from tests.helpers import Api, data
from tests.warehouse.targets import target_settings, wh_rows, wh_value
from warehouse.duckdb import connect_write, read_connection
from warehouse.postgres import read_connection as pg_read_connection
from warehouse.queries import load_status, raw_table_counts
from warehouse.settings import warehouse_location

__all__ = ["target_settings"]  # the fixture, imported for pytest

EVENTS = metadata.tables["events"]
PRODUCTS = metadata.tables["products"]
ORDERS = metadata.tables["orders"]


def _activity(api: Api) -> Any:
    """Sign-ups, a shop with products, an order paid, a follow: a few dozen events across tables."""
    m = market(api)
    order = data(place(api, m.buyer, [(m.p1["id"], 2), (m.p2["id"], 1)]), 201)
    data(api.client.put(f"/api/orders/{order['id']}/pay", json=None, headers=m.buyer.headers))
    data(api.client.post(f"/api/shops/{m.shop['id']}/follow", headers=m.buyer.headers))
    return m


def _more_activity(api: Api) -> None:
    seller = api.user("seller")
    api.product(seller, api.shop(seller)["id"], price="0.10000001")


def _load_all(settings: Settings, **kwargs: Any) -> Any:
    with open_target(settings) as target:
        result = target.load_events(**kwargs)
        for name in SNAPSHOT_TABLES:
            target.load_snapshot(name)
        target.publish()
    return result


def _store(api: Api, sql: str) -> list[tuple[Any, ...]]:
    with api.store.read() as db:
        return [tuple(r) for r in db.execute(text(sql))]


def _store_event(api: Api, *, occurred_at: datetime, request_id: str | None, **payload: Any) -> str:
    """An outbox row written with the store's own column types, as the API writes them."""
    event_id = str(uuid.uuid4())
    with api.store.engine.begin() as conn:
        conn.execute(
            insert(EVENTS).values(
                event_id=event_id,
                event_type="product.viewed",
                schema_version=1,
                occurred_at=occurred_at,
                recorded_at=datetime.now(UTC),
                actor_user_id=None,
                entity_type="product_view",
                entity_id=1,
                shop_id=None,
                product_id=None,
                order_id=None,
                request_id=request_id,
                payload=payload,
            )
        )
    return event_id


def test_a_load_copies_every_event_and_entity_exactly(api: Api, target_settings: Settings) -> None:
    _activity(api)
    loaded = _load_all(target_settings)

    store_events = api.events()
    wh_events = wh_rows(
        target_settings,
        "SELECT id, event_id, event_type, occurred_at, recorded_at, actor_user_id, shop_id, request_id, "
        "CAST(payload AS VARCHAR) FROM raw.events ORDER BY id",
    )
    assert loaded.rows_loaded == len(store_events) == len(wh_events) > 10
    for event, row in zip(store_events, wh_events, strict=True):
        assert row[:3] == (event.id, event.event_id, event.event_type)
        # Aware UTC times, to the microsecond; the payload intact.
        assert row[3] == event.occurred_at and row[4] == event.recorded_at
        assert row[3].utcoffset() == timedelta(0)
        assert row[5:8] == (event.actor_user_id, event.shop_id, event.request_id)
        assert json.loads(row[8]) == event.payload

    for table in SNAPSHOT_TABLES:
        assert wh_value(target_settings, f"SELECT count(*) FROM raw.{table}") == api.count(table), table
    columns = {
        r[0]
        for r in wh_rows(
            target_settings,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = 'users'",
        )
    }
    assert "password_hash" not in columns and "email" in columns
    # Money arrives exact, as DECIMAL(20, 8) / NUMERIC(20, 8).
    prices = wh_rows(target_settings, "SELECT price FROM raw.products ORDER BY id")
    assert [p for (p,) in prices] == [Decimal("25.00000000"), Decimal("4.50000000")]
    assert wh_rows(target_settings, "SELECT total_amount FROM raw.orders") == [(Decimal("54.50000000"),)]
    with api.store.read() as db:
        store_paid_at: datetime = db.execute(select(ORDERS.c.paid_at)).scalar_one()
    assert wh_value(target_settings, "SELECT paid_at FROM raw.orders") == store_paid_at is not None

    state = wh_rows(
        target_settings, "SELECT high_water_mark, source_count, rows_total, rows_loaded FROM meta.load_state"
    )
    n = len(store_events)
    assert state == [(store_events[-1].id, n, n, n)]
    snapshots = dict(wh_rows(target_settings, "SELECT table_name, row_count FROM meta.snapshots"))
    assert snapshots == {t: api.count(t) for t in SNAPSHOT_TABLES}


def test_the_duckdb_readers_see_the_published_load(api: Api, settings: Settings) -> None:
    _activity(api)
    _load_all(settings)
    with read_connection(warehouse_location(settings)) as conn:
        counts = raw_table_counts(conn)
        status = load_status(conn)
    assert counts == {**{t: api.count(t) for t in SNAPSHOT_TABLES}, "events": api.event_count()}
    assert status.high_water_mark == _store(api, "SELECT max(id) FROM events")[0][0]
    assert status.source_count == api.event_count()


def test_money_arrives_as_the_store_reads_it(api: Api, target_settings: Settings) -> None:
    """SQLite keeps money written as text in a NUMERIC column as a REAL when it looks like one, and its
    own REAL-to-text conversion keeps 15 digits: 12345678.12345678 would arrive as 12345678.1234568.
    The warehouse must hold what the store's Money type reads back."""
    m = _activity(api)
    tricky = ["12345678.12345678", "99999999.99999999", "0.00000001", "123456789012.12345678", "7", "0.3"]
    for price in tricky:
        with api.store.engine.begin() as conn:
            conn.execute(update(PRODUCTS).where(PRODUCTS.c.id == m.p1["id"]).values(price=Decimal(price)))
        with api.store.read() as db:
            expected: Decimal = db.execute(
                select(PRODUCTS.c.price).where(PRODUCTS.c.id == m.p1["id"])
            ).scalar_one()
        with open_target(target_settings) as target:
            target.load_snapshot("products")
        got = wh_value(target_settings, f"SELECT price FROM raw.products WHERE id = {m.p1['id']}")
        assert got == expected, price
        if price != "123456789012.12345678":  # 20 digits: SQLite's REAL keeps about 16
            assert got == Decimal(price), price


def test_a_nullable_text_column_null_in_the_first_batch_is_typed_right(
    api: Api, target_settings: Settings
) -> None:
    """The ADBC SQLite driver types a column from its first batch: a first batch with only NULL
    request_ids would type the column as integers and fail on the first text value."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    for i in range(5):
        _store_event(api, occurred_at=start + timedelta(minutes=i), request_id=None, n=i)
    later = _store_event(api, occurred_at=start, request_id="req-abc", n=99, note="text after nulls")
    result = _load_all(target_settings, batch_rows=2)
    assert result.rows_loaded == 6
    rows = wh_rows(target_settings, "SELECT event_id, request_id FROM raw.events ORDER BY id")
    assert [r[1] for r in rows] == [None] * 5 + ["req-abc"]
    assert rows[-1][0] == later


def test_a_rerun_adds_nothing_and_new_events_alone_are_added(api: Api, target_settings: Settings) -> None:
    _activity(api)
    first = _load_all(target_settings)
    again = _load_all(target_settings)
    assert again.rows_loaded == 0 and again.rows_total == first.rows_total == api.event_count()
    assert again.high_water_mark == first.high_water_mark

    (before,) = _store(api, "SELECT max(id) FROM events")[0]
    _more_activity(api)
    new_ids = sorted(r[0] for r in _store(api, f"SELECT event_id FROM events WHERE id > {before}"))
    assert new_ids
    third = _load_all(target_settings, now=datetime.now(UTC) + timedelta(seconds=5))
    assert third.rows_loaded == len(new_ids) and third.rows_total == api.event_count()
    dupes = wh_rows(target_settings, "SELECT event_id FROM raw.events GROUP BY 1 HAVING count(*) > 1")
    assert dupes == []
    latest = wh_rows(
        target_settings,
        "SELECT event_id FROM raw.events WHERE _loaded_at = (SELECT max(_loaded_at) FROM raw.events)",
    )
    assert sorted(r[0] for r in latest) == new_ids
    last_price = wh_value(target_settings, "SELECT price FROM raw.products ORDER BY id DESC LIMIT 1")
    assert last_price == Decimal("0.10000001")


def test_a_late_event_older_than_everything_loaded_is_loaded(api: Api, target_settings: Settings) -> None:
    _activity(api)
    _load_all(target_settings)
    long_ago = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    late = _store_event(api, occurred_at=long_ago, request_id="late")
    assert _load_all(target_settings).rows_loaded == 1
    assert wh_rows(target_settings, f"SELECT occurred_at FROM raw.events WHERE event_id = '{late}'") == [
        (long_ago,)
    ]


def test_an_event_committed_late_below_the_mark_is_still_loaded(api: Api, target_settings: Settings) -> None:
    """On PostgreSQL an id is taken at insert and becomes visible at commit, so a slow transaction can
    commit an id below a mark already loaded. Played here by holding one event back and putting it
    back, with its id, after the first load."""
    _activity(api)
    (held_id, held_event_id) = _store(api, "SELECT id, event_id FROM events ORDER BY id LIMIT 1 OFFSET 3")[0]
    with api.store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE held_event AS SELECT * FROM events WHERE id = :id"), {"id": held_id})
        conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": held_id})
    try:
        _load_all(target_settings)
        assert wh_rows(target_settings, f"SELECT count(*) FROM raw.events WHERE id = {held_id}") == [(0,)]
        with api.store.engine.begin() as conn:
            conn.execute(text("INSERT INTO events SELECT * FROM held_event"))
    finally:
        with api.store.engine.begin() as conn:
            conn.execute(text("DROP TABLE held_event"))
    result = _load_all(target_settings)
    assert result.rows_loaded == 1 and result.rows_total == api.event_count()
    assert wh_rows(target_settings, f"SELECT event_id FROM raw.events WHERE id = {held_id}") == [
        (held_event_id,)
    ]


def test_an_event_missed_beyond_the_window_shows_in_the_counts(api: Api, target_settings: Settings) -> None:
    _activity(api)
    _load_all(target_settings)
    # What a writer slower than the re-read window leaves behind: an event the warehouse never got.
    if target_settings.warehouse_url:
        with pg_read_connection(target_settings.warehouse_url) as conn:
            conn.execute("DELETE FROM raw.events WHERE id = 2")
    else:
        wh = connect_write(warehouse_location(target_settings).path)
        wh.execute("DELETE FROM raw.events WHERE id = 2")
        wh.close()
    with open_target(target_settings) as target:
        assert target.load_events(lookback_ids=0).rows_loaded == 0
        counts = target.event_counts()
        assert counts.rows == counts.distinct_event_ids == api.event_count() - 1
        assert counts.source_count == api.event_count()
        # A normal load re-reads the window below the mark and heals it.
        assert target.load_events().rows_loaded == 1
        assert target.event_counts().rows == api.event_count()


def test_two_overlapping_duckdb_loads_commit_each_event_once(api: Api, settings: Settings) -> None:
    """Two loads in one process share DuckDB's database: both read the same new events, the second
    one's update of the high-water mark conflicts with the first's and it is rolled back."""
    _activity(api)
    path = warehouse_location(settings).path
    first_ready, second_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        first_ready.set()
        assert second_done.wait(30)

    def second() -> None:
        assert first_ready.wait(30)
        conn = duckdb.connect(str(path))
        try:
            load_events(settings.database_url, conn, now=datetime.now(UTC))
        except duckdb.Error as exc:
            errors.append(exc)
        finally:
            conn.close()
            second_done.set()

    wh = connect_write(path)
    wh.execute("SELECT 1")
    thread = threading.Thread(target=second)
    thread.start()
    load_events(settings.database_url, wh, now=datetime.now(UTC), hooks=LoadHooks(before_commit=hold))
    thread.join(30)
    assert len(errors) == 1 and "conflict" in str(errors[0]).lower()
    assert wh.execute("SELECT count(*), count(DISTINCT event_id) FROM raw.events").fetchall() == [
        (api.event_count(), api.event_count())
    ]
    wh.close()


def test_two_overlapping_postgres_loads_commit_each_event_once(api: Api, settings: Settings) -> None:
    """On PostgreSQL the second load waits for the first one's lock on the stream's row, then reads its
    mark: it loads nothing twice and does not fail."""
    from tests.warehouse.targets import create_pg_database, drop_pg_database

    _activity(api)
    url = create_pg_database("wh_test")
    pg = settings.model_copy(update={"warehouse_url": url})
    try:
        first_ready = threading.Event()
        results: list[Any] = []

        def second() -> None:
            assert first_ready.wait(30)
            with open_target(pg) as target:
                results.append(target.load_events())

        with open_target(pg) as target:
            thread = threading.Thread(target=second)
            thread.start()

            def hold_until_second_waits() -> None:
                first_ready.set()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with pg_read_connection(url) as conn:
                        waiting = conn.execute(
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                        ).fetchone()
                    if waiting and waiting[0] > 0:
                        return
                    time.sleep(0.05)
                raise AssertionError("the second load never waited for the first")

            first = target.load_events(hooks=LoadHooks(before_commit=hold_until_second_waits))
            thread.join(30)
        assert first.rows_loaded == api.event_count()
        assert len(results) == 1 and results[0].rows_loaded == 0
        assert results[0].previous_mark == first.high_water_mark
        assert wh_rows(pg, "SELECT count(*), count(DISTINCT event_id) FROM raw.events") == [
            (api.event_count(), api.event_count())
        ]
    finally:
        drop_pg_database(url)


def test_an_empty_store_loads_empty_tables(target_settings: Settings) -> None:
    result = _load_all(target_settings)
    assert (result.rows_loaded, result.high_water_mark, result.source_count) == (0, 0, 0)
    for table in [*SNAPSHOT_TABLES, "events"]:
        assert wh_value(target_settings, f"SELECT count(*) FROM raw.{table}") == 0
