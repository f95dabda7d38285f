"""One module per dashboard section, each with `SECTION = SectionSpec(...)`; SECTIONS is their order."""

from __future__ import annotations

from dashboard.reports.builder import SectionSpec
from dashboard.reports.sections import ai, analytics, blockchain, overview, security, system

SECTIONS: tuple[SectionSpec, ...] = (
    overview.SECTION,
    analytics.SECTION,
    blockchain.SECTION,
    ai.SECTION,
    security.SECTION,
    system.SECTION,
)
