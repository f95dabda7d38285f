"""A load killed with SIGKILL in a real process, at each point of its work, on both warehouses and both
stores: the next load leaves the warehouse equal to the store (row counts, money sums), without a
duplicate event_id, and a load after that, with nothing new, changes nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from api.core.settings import Settings
from pipelines.ingest.tables import SNAPSHOT_TABLES
from pipelines.ingest.targets import open_target
from tests.api.test_orders import market, place
from tests.helpers import Api, data
from tests.warehouse.targets import target_settings, wh_rows, wh_value

__all__ = ["target_settings"]  # the fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs one load and kills its own process at `point`: a hook of the load (before_copy: mark read,
# nothing written; after_copy: rows written, mark not moved / snapshot not recorded; before_commit:
# all written, COMMIT next) or, for mid_copy, the first batch read, while the INSERT or COPY runs.
LOADER = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from api.core.settings import Environment, Settings
    from pipelines.ingest.results import LoadHooks
    from pipelines.ingest.targets import open_target

    config = json.loads(sys.argv[1])
    what, point = sys.argv[2], sys.argv[3]
    settings = Settings(
        environment=Environment.test,
        database_url=config["database_url"],
        warehouse_path=Path(config["warehouse_path"]),
        warehouse_url=config["warehouse_url"],
        data_dir=Path(config["data_dir"]),
        jwt_secret="x" * 40,
        _env_file=None,
    )

    def die(*_args):
        os.kill(os.getpid(), signal.SIGKILL)

    batches = [0]

    def on_batch(_rows):
        batches[0] += 1
        if batches[0] == 1:
            die()

    hooks = LoadHooks(**({point: die} if point != "mid_copy" else {}))
    with open_target(settings) as target:
        if what == "events":
            target.load_events(batch_rows=2, hooks=hooks, on_batch=on_batch if point == "mid_copy" else None)
        else:
            target.load_snapshot(what, batch_rows=2, hooks=hooks)
    print("not killed")
    """
)
EVENT_POINTS = ["before_copy", "mid_copy", "after_copy", "before_commit"]
SNAPSHOT_POINTS = ["before_copy", "after_copy", "before_commit"]


def _kill_a_load(settings: Settings, what: str, point: str) -> None:
    config = {
        "database_url": settings.database_url,
        "warehouse_path": str(settings.warehouse_path),
        "warehouse_url": settings.warehouse_url,
        "data_dir": str(settings.data_dir),
    }
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, json.dumps(config), what, point],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)


def _activity(api: Api) -> None:
    m = market(api)
    for items in ([(m.p1["id"], 2), (m.p2["id"], 1)], [(m.p2["id"], 1)]):
        order = data(place(api, m.buyer, items), 201)
        data(api.client.put(f"/api/orders/{order['id']}/pay", json=None, headers=m.buyer.headers))
    data(api.client.post(f"/api/shops/{m.shop['id']}/follow", headers=m.buyer.headers))


def _more_activity(api: Api) -> None:
    seller = api.user("seller")
    api.product(seller, api.shop(seller)["id"], price="0.10000001")


def _store_value(api: Api, sql: str) -> object:
    with api.store.read() as db:
        return db.execute(text(sql)).scalar_one()


def _assert_equal_to_store(api: Api, settings: Settings) -> None:
    events = api.event_count()
    assert wh_rows(settings, "SELECT count(*), count(DISTINCT event_id), max(id) FROM raw.events") == [
        (events, events, _store_value(api, "SELECT max(id) FROM events"))
    ]
    assert wh_value(settings, "SELECT high_water_mark FROM meta.load_state") == _store_value(
        api, "SELECT max(id) FROM events"
    )
    for table in SNAPSHOT_TABLES:
        assert wh_value(settings, f"SELECT count(*) FROM raw.{table}") == api.count(table), table
    store_total = Decimal(str(_store_value(api, "SELECT sum(total_amount) FROM orders")))
    assert wh_value(settings, "SELECT sum(total_amount) FROM raw.orders") == store_total
    store_lines = Decimal(str(_store_value(api, "SELECT sum(line_total) FROM order_items")))
    assert wh_value(settings, "SELECT sum(line_total) FROM raw.order_items") == store_lines


def _load_all(settings: Settings) -> int:
    with open_target(settings) as target:
        loaded = target.load_events().rows_loaded
        for table in SNAPSHOT_TABLES:
            target.load_snapshot(table)
        target.publish()
    return loaded


def _fingerprint(settings: Settings) -> list[tuple[object, ...]]:
    return wh_rows(
        settings,
        "SELECT count(*), max(id), min(_loaded_at), max(_loaded_at), "
        "(SELECT high_water_mark FROM meta.load_state) FROM raw.events",
    )


@pytest.mark.parametrize("point", EVENT_POINTS)
def test_an_event_load_killed_at_any_point_is_made_whole_by_the_next(
    api: Api, target_settings: Settings, point: str
) -> None:
    _activity(api)
    # Killed on the first load (empty warehouse) ...
    _kill_a_load(target_settings, "events", point)
    assert _load_all(target_settings) == api.event_count()
    _assert_equal_to_store(api, target_settings)
    # ... and on a later one, with rows and a mark already there.
    _more_activity(api)
    before = _fingerprint(target_settings)
    _kill_a_load(target_settings, "events", point)
    assert _fingerprint(target_settings) == before  # nothing of the killed load is visible
    _load_all(target_settings)
    _assert_equal_to_store(api, target_settings)
    # Nothing new: nothing changes.
    after = _fingerprint(target_settings)
    assert _load_all(target_settings) == 0
    assert _fingerprint(target_settings) == after


@pytest.mark.parametrize("point", SNAPSHOT_POINTS)
def test_a_snapshot_swap_killed_at_any_point_leaves_the_previous_table_whole(
    api: Api, target_settings: Settings, point: str
) -> None:
    _activity(api)
    _load_all(target_settings)
    orders_before = wh_rows(target_settings, "SELECT id, status, total_amount FROM raw.orders ORDER BY id")
    _more_activity(api)
    m = market(api)
    data(place(api, m.buyer, [(m.p1["id"], 3)]), 201)
    assert api.count("orders") == len(orders_before) + 1
    _kill_a_load(target_settings, "orders", point)
    assert wh_rows(target_settings, "SELECT id, status, total_amount FROM raw.orders ORDER BY id") == (
        orders_before
    )
    _load_all(target_settings)
    _assert_equal_to_store(api, target_settings)
