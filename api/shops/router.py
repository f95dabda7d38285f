from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from api.core.cache import envelope
from api.core.deps import CurrentUser, ReadDb, StoreDep, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize
from api.shops import service
from api.shops.schemas import FollowerOut, FollowOut, ShopCreate, ShopOut, ShopUpdate

router = APIRouter(prefix="/api/shops", tags=["shops"])


@router.post("", status_code=201, response_model=Envelope[ShopOut])
def create_shop(body: ShopCreate, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    shop = service.create_shop(uow, principal, body)
    uow.commit()
    return ok(ShopOut.model_validate(shop), status_code=201)


@router.get("/{shop_id}", response_model=Envelope[ShopOut])
def get_shop(shop_id: int, db: ReadDb, store: StoreDep) -> Response:
    try:
        body = service.cached_shop(store.cache, db, shop_id)
    finally:
        db.close()  # back to the pool from this thread (see catalog's get_product)
    return envelope(body)


@router.patch("/{shop_id}", response_model=Envelope[ShopOut])
def update_shop(shop_id: int, body: ShopUpdate, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    shop = service.update_shop(uow, principal, shop_id, body)
    uow.commit()
    return ok(ShopOut.model_validate(shop))


@router.post("/{shop_id}/follow", response_model=Envelope[FollowOut])
def toggle_follow(shop_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    following, count = service.toggle_follow(uow, principal, shop_id)
    uow.commit()
    return ok(FollowOut(following=following, follower_count=count))


@router.get("/{shop_id}/followers", response_model=Envelope[list[FollowerOut]])
def followers(
    shop_id: int,
    principal: CurrentUser,
    db: ReadDb,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    service.owned_shop(db, principal, shop_id)  # the follower list is the owner's to see
    rows, total = service.list_followers(db, shop_id, page=page, page_size=page_size)
    return paginated(rows, page=page, page_size=page_size, total=total)
