"""Conversation attachments: upload and participant-only download. Stub for wiring."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["conversations"])
