"""The outbox contract: no change without its event, no event without its change."""

import uuid

import pytest
from sqlalchemy import event, select

from api.outbox.models import Event
from api.outbox.service import MissingEventError, Uow
from api.outbox.types import EventType
from api.shops.models import Shop
from tests.helpers import data, error


def test_failure_mid_request_leaves_neither_change_nor_event(api, store):
    """A follow writes the follower row, bumps the counter, appends its event, then creates the owner's
    notification. Make that last insert fail in the database layer: nothing of the request may remain."""
    owner, fan = api.user(), api.user()
    shop = api.shop(owner)
    events_before = api.event_count()

    def explode(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("INSERT INTO NOTIFICATIONS"):
            raise RuntimeError("disk full while writing the notification")

    event.listen(store.engine, "before_cursor_execute", explode)
    try:
        resp = api.client.post(f"/api/shops/{shop['id']}/follow", headers=fan.headers)
    finally:
        event.remove(store.engine, "before_cursor_execute", explode)
    err = error(resp, 500, "INTERNAL_ERROR")
    assert "disk full" not in err["message"]  # internals do not leak
    assert api.count("shop_followers") == 0
    assert data(api.client.get(f"/api/shops/{shop['id']}"))["followerCount"] == 0
    assert api.event_count() == events_before
    assert api.events("shop.followed") == []
    # and the same request succeeds once the fault is gone, with exactly its events
    assert data(api.client.post(f"/api/shops/{shop['id']}/follow", headers=fan.headers))["following"] is True
    assert len(api.events("shop.followed")) == 1


def test_a_change_without_an_event_cannot_commit(api, store):
    owner = api.user()
    shop = api.shop(owner)
    with store.write() as db:
        db.get(Shop, shop["id"]).name = "Silently renamed"
        with pytest.raises(MissingEventError):
            db.commit()
    assert data(api.client.get(f"/api/shops/{shop['id']}"))["name"] == shop["name"]


def test_event_rows_carry_identity_time_actor_and_version(api, store):
    owner = api.user()
    shop = api.shop(owner)
    [ev] = api.events("shop.created")
    uuid.UUID(ev.event_id)
    assert ev.schema_version == 1
    assert ev.occurred_at.utcoffset().total_seconds() == 0
    assert ev.actor_user_id == owner.id and ev.entity_type == "shop" and ev.entity_id == shop["id"]
    assert ev.request_id  # ties the event to the request's X-Request-ID
    ids = [e.event_id for e in api.events()]
    assert len(ids) == len(set(ids))


def test_rolled_back_uow_discards_its_events(api, store, clock):
    with store.write() as db:
        uow = Uow(session=db, now=clock.now())
        uow.emit(EventType.category_created, "category", 1, {"name": "x"})
        db.flush()
        db.rollback()
    with store.read() as db:
        assert db.execute(select(Event)).first() is None
