from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.core.deps import AdminUser, ClockDep, CurrentUser, ReadDb, SettingsDep, UowDep
from api.core.responses import Envelope, EnvelopeResponse, ok, paginated
from api.core.schemas import Page, PageSize
from api.notifications import service
from api.notifications.models import Channel, DeliveryStatus, NotificationType
from api.notifications.schemas import (
    ChannelsIn,
    ChannelsOut,
    DeliveryOut,
    DeliveryStatsOut,
    NotificationOut,
    PreferenceOut,
    PreferencesIn,
    ReadAllOut,
    UnreadCountOut,
)

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.get("", response_model=Envelope[list[NotificationOut]])
def list_notifications(
    principal: CurrentUser,
    db: ReadDb,
    unread: Annotated[bool | None, Query()] = None,
    ntype: Annotated[NotificationType | None, Query(alias="type")] = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    rows, total = service.list_notifications(
        db, principal, unread=unread, ntype=ntype, page=page, page_size=page_size
    )
    return paginated(
        [NotificationOut.model_validate(r) for r in rows], page=page, page_size=page_size, total=total
    )


@router.get("/unread-count", response_model=Envelope[UnreadCountOut])
def unread_count(principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    return ok(UnreadCountOut(unread_count=service.unread_count(db, principal.user_id)))


@router.put("/read-all", response_model=Envelope[ReadAllOut])
def read_all(principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    count = service.mark_all_read(uow, principal)
    remaining = service.unread_count(uow.session, principal.user_id)
    uow.commit()
    return ok(ReadAllOut(marked_read=count, unread_count=remaining))


@router.get("/preferences", response_model=Envelope[list[PreferenceOut]])
def get_preferences(principal: CurrentUser, db: ReadDb) -> EnvelopeResponse:
    return ok(service.preferences(db, principal.user_id))


@router.put("/preferences", response_model=Envelope[list[PreferenceOut]])
def put_preferences(body: PreferencesIn, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    prefs = service.update_preferences(uow, principal, body)
    uow.commit()
    return ok(prefs)


@router.get("/channels", response_model=Envelope[ChannelsOut])
def get_channels(principal: CurrentUser, db: ReadDb, settings: SettingsDep) -> EnvelopeResponse:
    """The caller's delivery targets: email (the account's), webhook URL with its signing secret,
    Telegram chat id."""
    return ok(service.channels(db, settings, principal.user_id))


@router.put("/channels", response_model=Envelope[ChannelsOut])
def put_channels(
    body: ChannelsIn, principal: CurrentUser, uow: UowDep, settings: SettingsDep
) -> EnvelopeResponse:
    out = service.update_channels(uow, settings, principal, body)
    uow.commit()
    return ok(out)


@router.post("/channels/webhook-secret", response_model=Envelope[ChannelsOut])
def rotate_webhook_secret(principal: CurrentUser, uow: UowDep, settings: SettingsDep) -> EnvelopeResponse:
    out = service.rotate_webhook_secret(uow, settings, principal)
    uow.commit()
    return ok(out)


@router.get("/stats", response_model=Envelope[DeliveryStatsOut])
def delivery_stats(_admin: AdminUser, db: ReadDb, settings: SettingsDep, clock: ClockDep) -> EnvelopeResponse:
    return ok(service.delivery_stats(db, settings, clock.now()))


@router.get("/deliveries", response_model=Envelope[list[DeliveryOut]])
def list_deliveries(
    _admin: AdminUser,
    db: ReadDb,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    user_id: Annotated[int | None, Query(alias="userId")] = None,
    page: Annotated[Page, Query()] = 1,
    page_size: Annotated[PageSize, Query(alias="pageSize")] = 20,
) -> EnvelopeResponse:
    rows, total = service.list_deliveries(
        db, status=status, channel=channel, user_id=user_id, page=page, page_size=page_size
    )
    return paginated(
        [DeliveryOut.model_validate(r) for r in rows], page=page, page_size=page_size, total=total
    )


@router.post("/deliveries/{delivery_id}/retry", response_model=Envelope[DeliveryOut])
def retry_delivery(delivery_id: int, _admin: AdminUser, uow: UowDep) -> EnvelopeResponse:
    row = service.requeue_delivery(uow, delivery_id)
    uow.commit()
    return ok(DeliveryOut.model_validate(row))


@router.put("/{notification_id}/read", response_model=Envelope[NotificationOut])
def read_one(notification_id: int, principal: CurrentUser, uow: UowDep) -> EnvelopeResponse:
    note = service.mark_read(uow, principal, notification_id)
    uow.commit()
    return ok(NotificationOut.model_validate(note))
