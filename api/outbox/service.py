"""The unit of work of one request: its session, its time, its actor, and the events it appends.

Events are added to the same session as the change they describe, so they commit or roll back
together. A guard refuses to commit a transaction that changed rows but wrote no event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import Session

from api.outbox.models import Event
from api.outbox.types import EventType
from api.realtime.relay import LivePush

SILENT_OK = "silent_write_ok"
_EVENTS: Table = Event.__table__  # type: ignore[assignment]


class MissingEventError(RuntimeError):
    """A transaction changed rows without appending an outbox event."""


@event.listens_for(Session, "after_flush")
def _count_writes(session: Session, _ctx: Any) -> None:
    for obj in (*session.new, *session.dirty, *session.deleted):
        key = "events" if isinstance(obj, Event) else "writes"
        if key == "writes" and obj in session.dirty and not session.is_modified(obj):
            continue
        session.info[key] = session.info.get(key, 0) + 1


@event.listens_for(Session, "before_commit")
def _require_event(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        session.flush()
    writes, events = session.info.get("writes", 0), session.info.get("events", 0)
    if writes and not events and not session.info.get(SILENT_OK):
        raise MissingEventError(f"transaction wrote {writes} row(s) but no outbox event")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    types: set[str] = session.info.get("event_types", set())
    cache = session.info.get("read_cache")
    if types and cache is not None:
        # Before the response leaves: no process serves what this commit changed once it has returned.
        cache.invalidate(session.info.get("live_events", ()))
    pushes: list[LivePush] = session.info.get("live_pushes", [])
    events: list[dict[str, Any]] = session.info.get("live_events", [])
    relay = session.info.get("live_relay")
    _reset(session)
    if relay is not None and (pushes or events):
        relay.send(pushes, events)


@event.listens_for(Session, "after_soft_rollback")
def _reset(session: Session, *_: Any) -> None:
    for key in ("writes", "events", "event_types", "live_pushes", "live_events", SILENT_OK):
        session.info.pop(key, None)


@dataclass
class Uow:
    session: Session
    now: datetime
    actor_user_id: int | None = None
    request_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None

    def emit(
        self,
        event_type: EventType,
        entity_type: str,
        entity_id: int | None,
        payload: dict[str, Any] | None = None,
        *,
        shop_id: int | None = None,
        product_id: int | None = None,
        order_id: int | None = None,
        actor_user_id: int | None = None,
        occurred_at: datetime | None = None,
        schema_version: int = 1,
    ) -> dict[str, Any]:
        ev: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type.value,
            "schema_version": schema_version,
            "occurred_at": occurred_at or self.now,
            "recorded_at": self.now,
            "actor_user_id": actor_user_id if actor_user_id is not None else self.actor_user_id,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "shop_id": shop_id,
            "product_id": product_id,
            "order_id": order_id,
            "request_id": self.request_id,
            "payload": payload or {},
        }
        # A Core INSERT on the session's connection: same transaction as the change, without the ORM
        # unit-of-work bookkeeping that costs more than the insert itself.
        self.session.execute(_EVENTS.insert(), [ev])
        self.session.info["events"] = self.session.info.get("events", 0) + 1
        self.session.info.setdefault("event_types", set()).add(ev["event_type"])
        self.session.info.setdefault("live_events", []).append(ev)
        return ev

    def push(
        self,
        event: str,
        data: dict[str, Any],
        *,
        user_ids: int | list[int] | tuple[int, ...] = (),
        topic: str | None = None,
    ) -> None:
        """Queues a live WebSocket event, delivered only if and after this transaction commits."""
        ids = (user_ids,) if isinstance(user_ids, int) else tuple(user_ids)
        self.session.info.setdefault("live_pushes", []).append(
            LivePush(type=event, data=data, user_ids=ids, topic=topic)
        )

    def commit(self) -> None:
        self.session.commit()
