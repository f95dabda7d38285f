"""Calls (seed 001 §1): REST moves of the status machine. Owned by the calls work; stub for wiring."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/calls", tags=["calls"])
