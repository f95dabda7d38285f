"""Product reviews: only buyers with a delivered order of the product, once each; the product's rating
average and count move in the same transaction, with an atomic UPDATE."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth.models import User
from api.catalog.models import Product
from api.core.deps import Principal
from api.core.errors import Conflict, Forbidden, NotFound
from api.orders.models import Order, OrderItem, OrderStatus
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.reviews.models import Review
from api.reviews.schemas import ReviewCreate, ReviewOut, ReviewPosted


def _product(db: Session, product_id: int) -> Product:
    product = db.get(Product, product_id)
    if product is None:
        raise NotFound("Product", product_id)
    return product


def _delivered_order(db: Session, user_id: int, product_id: int) -> int | None:
    """The latest delivered order of this user that contains the product."""
    order_id: int | None = db.execute(
        select(Order.id)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .where(
            Order.buyer_id == user_id,
            Order.status == OrderStatus.delivered.value,
            OrderItem.product_id == product_id,
        )
        .order_by(Order.delivered_at.desc(), Order.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return order_id


def _already_reviewed() -> Conflict:
    return Conflict("You already reviewed this product", code="ALREADY_REVIEWED")


def post_review(uow: Uow, principal: Principal, product_id: int, body: ReviewCreate) -> ReviewPosted:
    s = uow.session
    product = _product(s, product_id)
    order_id = _delivered_order(s, principal.user_id, product_id)
    if order_id is None:
        raise Forbidden(
            "Only buyers with a delivered order of this product can review it", code="REVIEW_NOT_ALLOWED"
        )
    exists = s.execute(
        select(Review.id).where(Review.user_id == principal.user_id, Review.product_id == product_id)
    ).first()
    if exists is not None:
        raise _already_reviewed()
    review = Review(
        product_id=product_id,
        user_id=principal.user_id,
        order_id=order_id,
        rating=body.rating,
        comment=body.comment,
        title=body.title,
        created_at=uow.now,
    )
    s.add(review)
    try:
        s.flush()
    except IntegrityError as exc:  # a concurrent twin review won the race
        raise _already_reviewed() from exc
    # One statement, evaluated on the row as it is when locked: concurrent reviews never lose a count.
    s.execute(
        update(Product)
        .where(Product.id == product_id)
        .values(
            rating=(Product.rating * Product.rating_count + body.rating) / (Product.rating_count + 1),
            rating_count=Product.rating_count + 1,
        )
        .execution_options(synchronize_session=False)
    )
    s.refresh(product)
    uow.emit(
        EventType.review_posted,
        "review",
        review.id,
        {
            "productId": product_id,
            "userId": principal.user_id,
            "orderId": order_id,
            "rating": body.rating,
            "hasComment": bool(body.comment),
            "productRating": product.rating,
            "productRatingCount": product.rating_count,
        },
        shop_id=product.shop_id,
        product_id=product_id,
        order_id=order_id,
    )
    username = s.execute(select(User.username).where(User.id == principal.user_id)).scalar_one()
    return ReviewPosted(
        **_fields(review, username), product_rating=product.rating, product_rating_count=product.rating_count
    )


def _fields(review: Review, username: str) -> dict[str, Any]:
    return {
        "id": review.id,
        "product_id": review.product_id,
        "user_id": review.user_id,
        "username": username,
        "order_id": review.order_id,
        "rating": review.rating,
        "title": review.title,
        "comment": review.comment,
        "created_at": review.created_at,
    }


def list_reviews(db: Session, product_id: int, *, page: int, page_size: int) -> tuple[list[ReviewOut], int]:
    _product(db, product_id)
    total = db.execute(
        select(func.count()).select_from(Review).where(Review.product_id == product_id)
    ).scalar_one()
    rows = db.execute(
        select(Review, User.username)
        .join(User, User.id == Review.user_id)
        .where(Review.product_id == product_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [ReviewOut(**_fields(review, username)) for review, username in rows], int(total)
