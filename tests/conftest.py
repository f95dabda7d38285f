"""Test harness: every API test runs against SQLite and against a real PostgreSQL server.

Set STORE_TEST_BACKENDS=sqlite (or postgres) to run one. Under CI=true a missing PostgreSQL or Redis
fails the run instead of skipping."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from api.core.clock import ManualClock
from api.core.settings import Environment, Settings
from api.db.engine import Store
from api.db.migrate import upgrade
from api.db.registry import metadata
from api.main import create_app
from tests.helpers import Api

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("STORE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("STORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = [
    b.strip() for b in os.environ.get("STORE_TEST_BACKENDS", "sqlite,postgres").split(",") if b.strip()
]
TEST_SECRET = "test-secret-" + "x" * 40


def service_missing(what: str, why: str) -> None:
    """Fail under CI, skip on a developer's machine."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI and is not reachable: {why}")
    pytest.skip(f"{what} not reachable: {why}")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"store_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing("PostgreSQL", str(exc).splitlines()[0])
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        db = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), db)
        yield f"sqlite:///{db}"
    elif request.param == "postgres":
        url: str = request.getfixturevalue("pg_database")
        _truncate_all(url)
        yield url
    else:
        raise ValueError(f"unknown backend {request.param}")


def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0), tick=timedelta(milliseconds=1))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.test,
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        auto_migrate=False,
        session_sweep_seconds=0,
        delivery_poll_seconds=0,
        call_sweep_seconds=0,
        search_event_flush_seconds=0,
        data_dir=tmp_path / "data",
        warehouse_path=tmp_path / "data" / "warehouse.duckdb",
        redis_url=None,
        _env_file=None,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store.from_settings(settings)
    yield s
    s.engine.dispose()


@pytest.fixture
def app(settings: Settings, clock: ManualClock, store: Store):
    return create_app(settings, clock=clock, store=store)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(client: TestClient, store: Store, clock: ManualClock) -> Api:
    return Api(client, store, clock)


@pytest.fixture
def server_url(settings: Settings, clock: ManualClock, store: Store) -> Iterator[str]:
    """The app served by a real uvicorn on loopback, for tests of concurrent clients."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, clock=clock, store=store),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
