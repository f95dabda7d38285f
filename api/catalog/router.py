from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from api.catalog import service
from api.catalog.schemas import (
    CategoryCreate,
    CategoryOut,
    ListingQuery,
    PageQuery,
    PriceHistoryOut,
    ProductCard,
    ProductCreate,
    ProductOut,
    ProductUpdate,
)
from api.core.cache import envelope, page_envelope
from api.core.deps import AdminUser, CurrentUser, MaybeUser, ReadDb, StoreDep, UowDep
from api.core.query import query_docs, query_model
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated

router = APIRouter(tags=["catalog"])


@router.post("/api/categories", status_code=201, response_model=Envelope[CategoryOut])
def create_category(body: CategoryCreate, _admin: AdminUser, uow: UowDep) -> EnvelopeResponse:
    category = service.create_category(uow, body)
    uow.commit()
    return ok(CategoryOut.model_validate(category), status_code=201)


@router.get("/api/categories", response_model=Envelope[list[CategoryOut]])
def list_categories(db: ReadDb) -> EnvelopeResponse:
    return ok(service.list_categories(db))


@router.post("/api/shops/{shop_id}/products", status_code=201, response_model=Envelope[ProductOut])
def create_product(
    shop_id: int, body: ProductCreate, principal: CurrentUser, uow: UowDep
) -> EnvelopeResponse:
    product = service.create_product(uow, principal, shop_id, body)
    uow.commit()
    return ok(product, status_code=201)


@router.get(
    "/api/products", response_model=Envelope[list[ProductCard]], openapi_extra=query_docs(ListingQuery)
)
def list_products(
    db: ReadDb, store: StoreDep, q: Annotated[ListingQuery, Depends(query_model(ListingQuery))]
) -> Response:
    """Active products; filters shopId, categoryId, minPrice, maxPrice, inStock; sort newest (default),
    price_asc, price_desc, rating, popular (views + sales)."""
    try:
        body, total = service.listing_page(store.cache, db, q)
    finally:
        db.close()  # back to the pool from this thread (see get_product)
    return page_envelope(body, page=q.page, page_size=q.page_size, total=total)


@router.get("/api/products/{product_id}", response_model=Envelope[ProductOut])
def get_product(product_id: int, principal: MaybeUser, db: ReadDb, store: StoreDep) -> Response:
    try:
        body = service.cached_product(store.cache, db, principal, product_id)
    finally:
        # A miss read the database: hand its connection back here, in the handler's thread. Left to the
        # dependency's teardown, the close waits for a thread-pool slot, and when every slot holds a
        # request waiting for a connection (an overload) nobody gets one until the pool times out.
        db.close()
    return envelope(body)


@router.patch("/api/products/{product_id}", response_model=Envelope[ProductOut])
def update_product(
    product_id: int, body: ProductUpdate, principal: CurrentUser, uow: UowDep
) -> EnvelopeResponse:
    product = service.update_product(uow, principal, product_id, body)
    uow.commit()
    return ok(product)


@router.get(
    "/api/products/{product_id}/price-history",
    response_model=Envelope[list[PriceHistoryOut]],
    openapi_extra=query_docs(PageQuery),
)
def price_history(
    product_id: int,
    principal: MaybeUser,
    db: ReadDb,
    q: Annotated[PageQuery, Depends(query_model(PageQuery))],
) -> EnvelopeResponse:
    rows, total = service.price_history(db, principal, product_id, page=q.page, page_size=q.page_size)
    return paginated(rows, page=q.page, page_size=q.page_size, total=total)
