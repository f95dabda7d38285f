"""Engines and session factories for the store (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.core.cache import DEFAULT_PREFIX as DEFAULT_CACHE_PREFIX
from api.core.cache import ReadCache, RedisBackend
from api.core.responses import dumps
from api.core.settings import Settings
from api.realtime.relay import LiveRelay

EARTH_RADIUS_KM = 6371.0088
SQLITE_BUSY_SECONDS = 10
WAL_AUTOCHECKPOINT_PAGES = 20_000  # ~80 MB
_HOLDS_WRITE_LOCK = "holds_process_write_lock"


def haversine_km(
    lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None
) -> float | None:
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # We issue BEGIN ourselves (below) so writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # The API checkpoints from a background thread (wal_checkpoint below); the automatic one, run
        # inside a writer's COMMIT while every other writer waits, is left as a backstop for big WALs.
        cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA mmap_size=268435456")
        cur.close()
        dbapi_conn.create_function("haversine_km", 4, haversine_km, deterministic=True)

    # SQLite has one writer at a time. Threads of this process queue for it on a Python lock, which
    # wakes the next writer the moment the last one commits; SQLite's own busy handler polls with
    # sleeps of up to 100 ms, which showed as seconds of latency under a few hundred writes a second.
    # Other processes still meet the busy handler. The lock is released when the connection goes back
    # to the pool, i.e. after COMMIT or ROLLBACK has run.
    write_lock = threading.Lock()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY at once when
        # another writer committed in between (the busy timeout is not consulted). Writers take the
        # write lock at BEGIN instead, and wait for it.
        options = conn.get_execution_options()
        if options.get("sqlite_immediate"):
            if not conn.info.get(_HOLDS_WRITE_LOCK):
                if not write_lock.acquire(timeout=SQLITE_BUSY_SECONDS):
                    raise sqlite3.OperationalError("database is locked (waited for this process's writers)")
                conn.info[_HOLDS_WRITE_LOCK] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                conn.info.pop(_HOLDS_WRITE_LOCK, None)
                write_lock.release()
                raise
        elif not options.get("read_autocommit"):
            conn.exec_driver_sql("BEGIN")

    def _release(record_info: dict[str, Any]) -> None:
        if record_info.pop(_HOLDS_WRITE_LOCK, False):
            write_lock.release()

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            _release(record.info)

    @event.listens_for(engine.pool, "invalidate")
    def _on_invalidate(_dbapi_conn: Any, record: Any, _exc: Any) -> None:
        if record is not None:
            _release(record.info)


def _json_dumps(value: Any) -> str:
    return dumps(value).decode()


def create_store_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {
        "echo": settings.db_echo,
        "pool_pre_ping": not settings.is_sqlite,
        # Event payloads may hold Decimals and datetimes: store them as strings, never floats.
        "json_serializer": _json_dumps,
    }
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        kwargs["pool_size"] = settings.db_pool_size
        kwargs["max_overflow"] = 20
    else:
        kwargs["pool_size"] = settings.db_pool_size
        kwargs["max_overflow"] = 10
        # The store is small enough to sit in memory on SSDs: without this the planner walked the
        # price index and discarded most of it for category listings (36 ms against 1 ms).
        # JIT compiles any query whose estimate passes jit_above_cost: tens of milliseconds spent on
        # an OLTP query that runs in a few, which showed as search p99.
        kwargs["connect_args"] = {"options": "-c random_page_cost=1.1 -c jit=off"}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


@dataclass(frozen=True)
class Store:
    """The store's engine with one session factory for reads and one for writes."""

    engine: Engine
    read: sessionmaker[Session]
    write: sessionmaker[Session]
    cache: ReadCache
    live: LiveRelay
    # The engines under the two factories, for hot paths that run one prebuilt Core statement: an ORM
    # session costs ~100 us of set-up and teardown more than the statement itself.
    reader: Engine
    writer: Engine

    @classmethod
    def from_settings(cls, settings: Settings, *, cache_prefix: str = DEFAULT_CACHE_PREFIX) -> Store:
        engine = create_store_engine(settings)
        return cls.from_engine(engine, cache=ReadCache.from_settings(settings, prefix=cache_prefix))

    @classmethod
    def from_engine(cls, engine: Engine, *, cache: ReadCache | None = None) -> Store:
        # Redis when configured (see ReadCache.from_settings), else this process's dict.
        if cache is None:
            cache = ReadCache()
        # Every session knows the cache, so a commit can invalidate what its events changed.
        live = LiveRelay()
        info = {"read_cache": cache, "live_relay": live}
        writer = engine.execution_options(sqlite_immediate=True)
        # Read sessions run each statement on its own (no BEGIN/ROLLBACK round trips): a page and its
        # total may come from two snapshots a moment apart, which no reader can tell.
        reader = (
            engine.execution_options(read_autocommit=True)
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        return cls(
            engine=engine,
            read=sessionmaker(reader, expire_on_commit=False, autoflush=False, info=info),
            write=sessionmaker(writer, expire_on_commit=False, autoflush=True, info=info),
            cache=cache,
            live=live,
            reader=reader,
            writer=writer,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


# A process other than the API (the pipelines) waits this long for SQLite's write lock, which the API
# may hold at the same moment.
EXTERNAL_SQLITE_TIMEOUT_SECONDS = 10


@contextmanager
def open_store(database_url: str, *, redis_url: str | None = None) -> Iterator[Store]:
    """The store for a process other than the API (the pipelines' resources). With the API's Redis its
    commits renew the version tokens the API's read cache checks, so what it writes is never served
    stale from Redis."""
    sqlite = database_url.startswith("sqlite")
    engine = create_engine(
        database_url,
        connect_args={"timeout": EXTERNAL_SQLITE_TIMEOUT_SECONDS} if sqlite else {},
        pool_pre_ping=not sqlite,
    )
    cache = ReadCache(RedisBackend(redis_url, prefix=DEFAULT_CACHE_PREFIX)) if redis_url else None
    try:
        yield Store.from_engine(engine, cache=cache)
    finally:
        engine.dispose()


def wal_checkpoint(engine: Engine) -> None:
    """A PASSIVE checkpoint: copies what it can of the WAL into the database without waiting for, or
    holding up, readers and writers. Run periodically by the API on SQLite."""
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
