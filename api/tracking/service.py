"""Product view tracking (seed 001 §2): one product_views row and an atomic counter increment."""

from __future__ import annotations

from sqlalchemy import true, update

from api.catalog.models import Product
from api.core.errors import NotFound
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.tracking.models import ProductView
from api.tracking.schemas import ViewIn, ViewOut


def track_view(uow: Uow, body: ViewIn) -> ViewOut:
    s = uow.session
    # The increment is the first statement: it finds the product and takes its row lock in one step.
    bumped = s.execute(
        update(Product)
        .where(Product.id == body.product_id, Product.is_active == true())
        .values(views=Product.views + 1)
        .returning(Product.views, Product.shop_id)
    ).first()
    if bumped is None:
        raise NotFound("Product", body.product_id)
    view = ProductView(
        product_id=body.product_id,
        user_id=uow.actor_user_id,
        session_id=body.session_id,
        ip_address=uow.ip_address,
        user_agent=uow.user_agent,
        referrer=body.referrer,
        duration=body.duration,
        created_at=uow.now,
    )
    s.add(view)
    s.flush()
    uow.emit(
        EventType.view_tracked,
        "product_view",
        view.id,
        {
            "viewId": view.id,
            "userId": uow.actor_user_id,
            "sessionId": body.session_id,
            "duration": body.duration,
            "referrer": body.referrer,
            "views": bumped.views,
        },
        shop_id=bumped.shop_id,
        product_id=body.product_id,
    )
    return ViewOut(view_id=view.id, views=bumped.views)
