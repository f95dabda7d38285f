from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.alerts import service
from api.alerts.schemas import AlertCreate, AlertOut
from api.core.deps import CurrentUser, ReadDb, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize

router = APIRouter(prefix="/api/price-alerts", tags=["alerts"])


@router.post("", status_code=201, response_model=Envelope[AlertOut])
def create_alert(body: AlertCreate, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    alert = service.create_alert(uow, principal, body)
    uow.commit()
    return ok(alert, status_code=201)


@router.get("", response_model=Envelope[list[AlertOut]])
def list_alerts(
    principal: CurrentUser,
    db: ReadDb,
    active: Annotated[bool | None, Query()] = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    rows, total = service.list_alerts(db, principal, active=active, page=page, page_size=page_size)
    return paginated(rows, page=page, page_size=page_size, total=total)


@router.delete("/{alert_id}", response_model=Envelope[AlertOut])
def delete_alert(alert_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    alert = service.delete_alert(uow, principal, alert_id)
    uow.commit()
    return ok(alert)
