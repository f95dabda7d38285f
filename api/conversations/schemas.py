from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import Field

from api.core.schemas import RequestModel, ResponseModel

MAX_MESSAGE_CHARS = 4000


class ConversationCreate(RequestModel):
    shop_id: Annotated[int, Field(ge=1)]
    product_id: Annotated[int, Field(ge=1)] | None = None


class MessageCreate(RequestModel):
    body: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


class UserRef(ResponseModel):
    id: int
    username: str


class ShopRef(ResponseModel):
    id: int
    name: str


class ProductRef(ResponseModel):
    id: int
    name: str
    price: Decimal
    currency: str


class ConversationOut(ResponseModel):
    id: int
    role: str  # the caller's side: buyer or seller; observer for an admin reading someone else's
    buyer: UserRef
    seller: UserRef
    counterpart: UserRef | None  # None for an observer
    shop: ShopRef
    product: ProductRef | None
    last_message: str | None
    last_message_at: datetime | None
    unread_count: int
    archived: bool
    blocked: bool  # the caller blocked the counterpart
    created_at: datetime


class MessageOut(ResponseModel):
    id: int
    conversation_id: int
    sender_id: int
    body: str
    message_type: str
    attachment_url: str | None
    is_read: bool
    read_at: datetime | None
    created_at: datetime


class BlockOut(ResponseModel):
    user_id: int
    blocked: bool


class AttachmentOut(ResponseModel):
    id: int
    conversation_id: int
    message_id: int
    uploader_id: int
    sha256: str
    content_type: str
    size_bytes: int
    original_name: str
    url: str
    created_at: datetime


class AttachmentUploadOut(ResponseModel):
    message: MessageOut
    attachment: AttachmentOut
