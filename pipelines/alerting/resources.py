"""The store's notification hub as a Dagster resource: admins hear of failed runs where they hear of
everything else (in-app, and the channels they turned on)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import create_engine, select

from api.auth.models import Role, User
from api.db.engine import Store
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow

# Waits this long for SQLite's write lock: the API may be writing at the same moment.
_SQLITE_TIMEOUT_SECONDS = 10


class AdminNotifier(ConfigurableResource["AdminNotifier"]):
    """Creates a `system` notification for every active admin of the store."""

    database_url: str = Field(description="SQLAlchemy URL of the store (STORE_DATABASE_URL).")

    @contextmanager
    def _store(self) -> Iterator[Store]:
        sqlite = self.database_url.startswith("sqlite")
        engine = create_engine(
            self.database_url,
            connect_args={"timeout": _SQLITE_TIMEOUT_SECONDS} if sqlite else {},
            pool_pre_ping=not sqlite,
        )
        try:
            yield Store.from_engine(engine)
        finally:
            engine.dispose()

    def notify_admins(self, title: str, body: str, data: dict[str, Any]) -> list[int]:
        """One notification per active admin, committed together with its outbox event by the store's
        own service (`api.notifications.service.notify`). Returns the in-app notifications' ids."""
        with self._store() as store, store.write() as session:
            uow = Uow(session=session, now=datetime.now(UTC))
            admins = session.execute(
                select(User.id)
                .where(User.role == Role.admin.value, User.is_active.is_(True))
                .order_by(User.id)
            ).scalars()
            ids = [notify(uow, admin, NotificationType.system, title, body, data) for admin in admins]
            uow.commit()
        return [i for i in ids if i is not None]
