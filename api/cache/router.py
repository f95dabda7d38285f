"""Admin view of the read cache: stats and invalidation. Stub for wiring."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/cache", tags=["cache"])
