"""Product view tracking (seed 001 §2): one product_views row and an atomic counter increment."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, true, update

from api.catalog.models import Product
from api.core.errors import NotFound
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.tracking.models import ProductView
from api.tracking.schemas import ViewIn, ViewOut

_VIEWS: Table = ProductView.__table__  # type: ignore[assignment]
_INSERT_VIEW = _VIEWS.insert().returning(_VIEWS.c.id)
_PRODUCTS: Table = Product.__table__  # type: ignore[assignment]
_BUMP = (
    update(_PRODUCTS)
    .where(_PRODUCTS.c.id == bindparam("pid"), _PRODUCTS.c.is_active == true())
    .values(views=_PRODUCTS.c.views + 1)
    .returning(_PRODUCTS.c.views, _PRODUCTS.c.shop_id)
)


def track_view(uow: Uow, body: ViewIn) -> ViewOut:
    s = uow.session
    # The increment is the first statement: it finds the product and takes its row lock in one step.
    bumped = s.execute(_BUMP, {"pid": body.product_id}).first()
    if bumped is None:
        raise NotFound("Product", body.product_id)
    # Core, not the ORM's unit of work: the busiest write of the store, and nothing reads the row back.
    view_id: int = s.execute(
        _INSERT_VIEW,
        {
            "product_id": body.product_id,
            "user_id": uow.actor_user_id,
            "session_id": body.session_id,
            "ip_address": uow.ip_address,
            "user_agent": uow.user_agent,
            "referrer": body.referrer,
            "duration": body.duration,
            "created_at": uow.now,
        },
    ).scalar_one()
    uow.emit(
        EventType.view_tracked,
        "product_view",
        view_id,
        {
            "viewId": view_id,
            "userId": uow.actor_user_id,
            "sessionId": body.session_id,
            "duration": body.duration,
            "referrer": body.referrer,
            "views": bumped.views,
        },
        shop_id=bumped.shop_id,
        product_id=body.product_id,
    )
    return ViewOut(view_id=view_id, views=bumped.views)
