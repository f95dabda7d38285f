"""The /ws endpoint. Stub for wiring."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["realtime"])
