"""Shops and the follow toggle of seed 001 §5."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.auth.models import Role, User
from api.core.cache import ReadCache
from api.core.deps import Principal
from api.core.errors import Forbidden, NotFound, ValidationFailed
from api.core.responses import dumps
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.shops.models import Shop, ShopFollower
from api.shops.schemas import ShopCreate, ShopOut, ShopUpdate


def get_shop(db: Session, shop_id: int) -> Shop:
    shop = db.get(Shop, shop_id)
    if shop is None:
        raise NotFound("Shop", shop_id)
    return shop


def cached_shop(cache: ReadCache, db: Session, shop_id: int) -> bytes:
    """GET /api/shops/{id}'s response data as JSON bytes, through the read cache."""
    slot = cache.shop(shop_id)
    if slot.body is not None:
        return slot.body
    body = dumps(ShopOut.model_validate(get_shop(db, shop_id)).model_dump(mode="json", by_alias=True))
    cache.fill(slot, body)
    return body


def owned_shop(db: Session, principal: Principal, shop_id: int, *, for_update: bool = False) -> Shop:
    """The shop, if the caller owns it (or is an admin); 403 for anyone else."""
    shop = get_shop(db, shop_id)
    if shop.owner_id != principal.user_id and not principal.is_admin:
        raise Forbidden("Only the shop's owner can do this")
    return shop


def create_shop(uow: Uow, principal: Principal, body: ShopCreate) -> Shop:
    s = uow.session
    user = s.get(User, principal.user_id)
    assert user is not None
    shop = Shop(
        owner_id=principal.user_id,
        name=body.name,
        description=body.description,
        latitude=body.latitude,
        longitude=body.longitude,
        address=body.address,
        delivery_available=body.delivery_available,
        follower_count=0,
        is_active=True,
        created_at=uow.now,
        updated_at=uow.now,
    )
    s.add(shop)
    promoted = user.role == Role.buyer.value
    if promoted:  # opening a shop makes a buyer a seller
        user.role = Role.seller.value
        user.updated_at = uow.now
    s.flush()
    uow.emit(
        EventType.shop_created,
        "shop",
        shop.id,
        _shop_payload(shop) | {"ownerPromoted": promoted},
        shop_id=shop.id,
    )
    return shop


def update_shop(uow: Uow, principal: Principal, shop_id: int, body: ShopUpdate) -> Shop:
    shop = owned_shop(uow.session, principal, shop_id)
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed("Nothing to update", details=[])
    lat = changes.get("latitude", shop.latitude)
    lon = changes.get("longitude", shop.longitude)
    if (lat is None) != (lon is None):
        raise ValidationFailed(
            "latitude and longitude go together",
            details=[{"field": "latitude", "message": "set both or neither"}],
        )
    before: dict[str, Any] = {}
    for key, value in changes.items():
        if getattr(shop, key) != value:
            before[key] = getattr(shop, key)
            setattr(shop, key, value)
    if before:
        shop.updated_at = uow.now
        uow.emit(
            EventType.shop_updated,
            "shop",
            shop.id,
            {"changes": {k: {"old": v, "new": getattr(shop, k)} for k, v in before.items()}},
            shop_id=shop.id,
        )
    return shop


def _shop_payload(shop: Shop) -> dict[str, Any]:
    return {
        "name": shop.name,
        "ownerId": shop.owner_id,
        "latitude": shop.latitude,
        "longitude": shop.longitude,
        "deliveryAvailable": shop.delivery_available,
    }


def toggle_follow(uow: Uow, principal: Principal, shop_id: int) -> tuple[bool, int]:
    s = uow.session
    shop = get_shop(s, shop_id)
    existing = s.execute(
        select(ShopFollower).where(ShopFollower.shop_id == shop_id, ShopFollower.user_id == principal.user_id)
    ).scalar_one_or_none()
    if existing is not None:
        s.delete(existing)
        delta, following, event = -1, False, EventType.shop_unfollowed
    else:
        if shop.owner_id == principal.user_id:
            raise ValidationFailed("You cannot follow your own shop", code="CANNOT_FOLLOW_OWN_SHOP")
        s.add(ShopFollower(user_id=principal.user_id, shop_id=shop_id, created_at=uow.now))
        delta, following, event = 1, True, EventType.shop_followed
    # An atomic increment, so concurrent follows never lose a count.
    s.execute(update(Shop).where(Shop.id == shop_id).values(follower_count=Shop.follower_count + delta))
    s.flush()
    count = s.execute(select(Shop.follower_count).where(Shop.id == shop_id)).scalar_one()
    s.refresh(shop)
    uow.emit(event, "shop", shop_id, {"userId": principal.user_id, "followerCount": count}, shop_id=shop_id)
    if following:
        follower = s.get(User, principal.user_id)
        notify(
            uow,
            shop.owner_id,
            NotificationType.new_follower,
            "New follower",
            f"{follower.username if follower else 'Someone'} now follows {shop.name}",
            {"shopId": shop_id, "followerId": principal.user_id},
        )
    return following, count


def list_followers(
    db: Session, shop_id: int, *, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    get_shop(db, shop_id)
    total = db.execute(
        select(func.count()).select_from(ShopFollower).where(ShopFollower.shop_id == shop_id)
    ).scalar_one()
    rows = db.execute(
        select(ShopFollower.user_id, User.username, ShopFollower.created_at)
        .join(User, User.id == ShopFollower.user_id)
        .where(ShopFollower.shop_id == shop_id)
        .order_by(ShopFollower.created_at.desc(), ShopFollower.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [{"userId": r.user_id, "username": r.username, "followedAt": r.created_at} for r in rows], total
