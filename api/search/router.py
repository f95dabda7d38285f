from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from starlette.responses import Response

from api.core.cache import page_envelope
from api.core.context import current_request_id
from api.core.deps import ClockDep, MaybeUser, ReadDb, StoreDep, client_ip
from api.core.query import query_docs, query_model
from api.core.responses import Envelope
from api.search import service
from api.search.schemas import SearchQuery, SearchResult

router = APIRouter(tags=["search"])


@router.get(
    "/api/products/search", response_model=Envelope[list[SearchResult]], openapi_extra=query_docs(SearchQuery)
)
def search_products(
    q: Annotated[SearchQuery, Depends(query_model(SearchQuery))],
    principal: MaybeUser,
    db: ReadDb,
    store: StoreDep,
    clock: ClockDep,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """Full text (q) over name and description; filters category, minPrice, maxPrice, minRating,
    lat+lon+radiusKm, delivery; sort relevance (default with q), price_asc, price_desc, newest (default
    without q), rating, popular, distance (with lat/lon). Anonymous searches are allowed; each one is
    recorded as a search.performed event."""
    try:
        body, total = service.cached_search(store.cache, db, q)
    finally:
        db.close()  # in this thread: the read connection goes back before the response is built
    record = service.SearchRecord(
        at=clock.now(),
        user_id=principal.user_id if principal else None,
        request_id=current_request_id(),
        ip_address=client_ip(request),
        query=q,
        total=total,
    )
    buffer: service.SearchEventBuffer | None = request.app.state.search_events
    if buffer is not None:  # written with the others of the moment by the app's background loop
        buffer.add(record)
    else:  # in its own small write transaction, once the response is on its way
        background.add_task(service.record_search_in_store, store, record)
    return page_envelope(body, page=q.page, page_size=q.page_size, total=total)
