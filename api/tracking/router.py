from __future__ import annotations

from fastapi import APIRouter

from api.core.deps import UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok
from api.tracking import service
from api.tracking.schemas import ViewIn, ViewOut

router = APIRouter(prefix="/api/track", tags=["tracking"])


@router.post("/view", status_code=201, response_model=Envelope[ViewOut])
def track_view(body: ViewIn, uow: UowDep) -> EnvelopeResponse:
    """A product page view, anonymous or signed in: records it and bumps the product's view counter."""
    view = service.track_view(uow, body)
    uow.commit()
    return ok(view, status_code=201)
