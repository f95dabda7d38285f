"""GET /api/metrics (seed 000: real-time system metrics, for analysts and admins) and GET /metrics
(the same requests and the warehouse's state in Prometheus' text format, for a scraper). See
`api.metrics.service` for who may read which."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from api.analytics.access import StaffUser
from api.core.errors import NotFound, Unauthorized
from api.core.responses import Envelope, EnvelopeResponse, ok
from api.metrics import service
from api.metrics.recorder import RequestMetrics
from api.metrics.schemas import SystemMetricsOut

router = APIRouter(tags=["metrics"])


def _recorder(request: Request) -> RequestMetrics:
    recorder: RequestMetrics = request.app.state.request_metrics
    return recorder


@router.get("/api/metrics", response_model=Envelope[SystemMetricsOut])
def system_metrics(principal: StaffUser, request: Request) -> EnvelopeResponse:
    """Request rates, latency percentiles and error rates per route (the last minute of this process,
    and since start), the pipeline's freshness and the warehouse's size."""
    return ok(service.system_metrics(_recorder(request), request.app.state.settings))


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    settings = request.app.state.settings
    if not service.metrics_enabled(settings):
        raise NotFound("Metrics endpoint", details={"hint": "turned off by STORE_METRICS_ENABLED"})
    token = service.metrics_token(settings)
    if token is not None and not service.token_matches(token, request.headers.get("authorization")):
        raise Unauthorized("A valid metrics token is required", code="INVALID_TOKEN")
    registry = service.scrape_registry(_recorder(request), request.app.state.warehouse_collector)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
