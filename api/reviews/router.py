from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.core.deps import CurrentUser, ReadDb, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize
from api.reviews import service
from api.reviews.schemas import ReviewCreate, ReviewOut, ReviewPosted

router = APIRouter(prefix="/api/products", tags=["reviews"])


@router.post("/{product_id}/reviews", status_code=201, response_model=Envelope[ReviewPosted])
def post_review(product_id: int, body: ReviewCreate, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    review = service.post_review(uow, principal, product_id, body)
    uow.commit()
    return ok(review, status_code=201)


@router.get("/{product_id}/reviews", response_model=Envelope[list[ReviewOut]])
def list_reviews(
    product_id: int,
    db: ReadDb,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    reviews, total = service.list_reviews(db, product_id, page=page, page_size=page_size)
    return paginated(reviews, page=page, page_size=page_size, total=total)
