"""A read-only engine on the store: the dashboard looks, it never writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from api.core.settings import Settings
from api.db.engine import create_store_engine

# A dashboard serves a handful of analysts: the API's pool (sized for its thread pool) is too many.
DASHBOARD_POOL_SIZE = 5


def read_only_engine(settings: Settings) -> Engine:
    """The store's engine (same pragmas and types as the API's), refusing writes at the database.

    Each statement runs on its own (autocommit), so a dashboard never holds a transaction, or on
    SQLite a read snapshot that keeps the WAL from being checkpointed, open between reruns."""
    engine = create_store_engine(settings.model_copy(update={"db_pool_size": DASHBOARD_POOL_SIZE}))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only=ON")
            cur.close()

        # `read_autocommit` is the store engine's switch for "no BEGIN" on SQLite (see api/db/engine.py).
        return engine.execution_options(read_autocommit=True)

    @event.listens_for(engine, "connect")
    def _read_only_session(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cur.close()
        dbapi_conn.commit()  # a SET inside psycopg's implicit transaction lasts only if committed

    return engine.execution_options(isolation_level="AUTOCOMMIT")
