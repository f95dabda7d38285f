"""GET /api/recommendations/{userId} and seed 001's path GET /api/track/recommendations/{userId}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from api.core.cache import ReadCache, Slot, envelope
from api.core.deps import CurrentUser, ReadDb
from api.core.errors import Forbidden
from api.core.responses import Envelope
from api.db.engine import Store
from api.recommendations import service
from api.recommendations.schemas import RecommendationsOut

router = APIRouter(tags=["recommendations"])

Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT, description="how many, 1 to 50")]


def _respond(answer: service.Answer) -> Response:
    return envelope(answer.body, extra_meta={"source": answer.source, "modelVersion": answer.model_version})


def _fill(cache: ReadCache, db: Session, slot: Slot | None, user_id: int, limit: int) -> service.Answer:
    try:
        if slot is None:
            return service.recommendations(cache, db, user_id, limit)
        return service.fill(cache, db, slot, user_id, limit)
    finally:
        db.close()  # back to the pool from this thread (see catalog.router.get_product)


async def _recommendations(
    request: Request, user_id: int, principal: CurrentUser, db: ReadDb, limit: int
) -> Response:
    # The user themselves and staff; checked before any read so a 404 tells others nothing.
    if principal.user_id != user_id and not principal.is_staff:
        raise Forbidden("Only the user themselves, analysts and admins may read a user's recommendations")
    store: Store = request.app.state.store
    slot: Slot | None = None
    if not store.cache.backend.shared:
        # The in-process cache does no I/O: a hit is answered on the event loop, without the thread-pool
        # hop that costs more than the lookup itself. Redis (a network call) and misses go to the pool.
        slot, answer = service.lookup(store.cache, user_id, limit)
        if answer is not None:
            db.close()
            return _respond(answer)
    return _respond(await run_in_threadpool(_fill, store.cache, db, slot, user_id, limit))


@router.get("/api/recommendations/{user_id}", response_model=Envelope[RecommendationsOut])
async def get_recommendations(
    request: Request, user_id: int, principal: CurrentUser, db: ReadDb, limit: Limit = service.TOP_N
) -> Response:
    """Up to `limit` products the user can buy now, best first (seed 001 §3)."""
    return await _recommendations(request, user_id, principal, db, limit)


@router.get("/api/track/recommendations/{user_id}", response_model=Envelope[RecommendationsOut])
async def track_recommendations(
    request: Request, user_id: int, principal: CurrentUser, db: ReadDb, limit: Limit = service.TOP_N
) -> Response:
    """Seed 001's path for the same answer."""
    return await _recommendations(request, user_id, principal, db, limit)
