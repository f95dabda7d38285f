"""The store's notification hub as a Dagster resource: admins hear of failed runs where they hear of
everything else (in-app, and the channels they turned on)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import select

from api.auth.models import Role, User
from api.db.engine import open_store
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow


class AdminNotifier(ConfigurableResource["AdminNotifier"]):
    """Creates a `system` notification for every active admin of the store."""

    database_url: str = Field(description="SQLAlchemy URL of the store (STORE_DATABASE_URL).")

    def notify_admins(self, title: str, body: str, data: dict[str, Any]) -> list[int]:
        """One notification per active admin, committed together with its outbox event by the store's
        own service (`api.notifications.service.notify`). Returns the in-app notifications' ids."""
        with open_store(self.database_url) as store, store.write() as session:
            uow = Uow(session=session, now=datetime.now(UTC))
            admins = session.execute(
                select(User.id)
                .where(User.role == Role.admin.value, User.is_active.is_(True))
                .order_by(User.id)
            ).scalars()
            ids = [notify(uow, admin, NotificationType.system, title, body, data) for admin in admins]
            uow.commit()
        return [i for i in ids if i is not None]
