"""Buyer-seller conversations (seed 001 §10): one thread per buyer, shop and optional product.

Each side has its own unread counter and archive flag. A message bumps the recipient's counter with
an atomic UPDATE that also locks the row, so a concurrent "mark read" never loses or miscounts one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from api.auth.models import User
from api.catalog.models import Product
from api.conversations.models import Conversation, Message, UserBlock
from api.conversations.schemas import (
    BlockOut,
    ConversationCreate,
    ConversationOut,
    MessageCreate,
    MessageOut,
    ProductRef,
    ShopRef,
    UserRef,
)
from api.core.deps import Principal
from api.core.errors import Forbidden, NotFound, ValidationFailed
from api.notifications.models import NotificationType
from api.notifications.service import notify
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.shops.models import Shop

PREVIEW_CHARS = 200  # conversations.last_message is VARCHAR(200)
BUYER, SELLER, OBSERVER = "buyer", "seller", "observer"

Buyer = aliased(User, name="buyer_user")
Seller = aliased(User, name="seller_user")


# --- access ---------------------------------------------------------------------------------------


def side(conv: Conversation, user_id: int) -> str:
    if conv.buyer_id == user_id:
        return BUYER
    if conv.seller_id == user_id:
        return SELLER
    return OBSERVER


def _other(conv: Conversation, user_id: int) -> int:
    return conv.seller_id if conv.buyer_id == user_id else conv.buyer_id


def _visible(db: Session, principal: Principal, conversation_id: int) -> Conversation:
    """Participants see a conversation; an admin may read any; everyone else gets a 404."""
    conv = db.get(Conversation, conversation_id)
    if conv is None or (side(conv, principal.user_id) == OBSERVER and not principal.is_admin):
        raise NotFound("Conversation", conversation_id)
    return conv


def _participant(
    db: Session, principal: Principal, conversation_id: int, *, for_update: bool = False
) -> Conversation:
    """Only the two participants act on a conversation (an admin who can read it gets a 403)."""
    conv = _visible(db, principal, conversation_id)
    if side(conv, principal.user_id) == OBSERVER:
        raise Forbidden("Only the conversation's participants can do this")
    if for_update:
        # populate_existing: the row read above is stale once the lock was waited for.
        locked = db.get(Conversation, conversation_id, with_for_update=True, populate_existing=True)
        assert locked is not None
        return locked
    return conv


def counterpart(db: Session, principal: Principal, conversation_id: int) -> int:
    """The other participant, after checking the caller is one (else 404, as everywhere)."""
    return _other(_participant(db, principal, conversation_id), principal.user_id)


def is_blocked(db: Session, blocker_id: int, blocked_id: int) -> bool:
    return (
        db.execute(
            select(UserBlock.id).where(UserBlock.blocker_id == blocker_id, UserBlock.blocked_id == blocked_id)
        ).first()
        is not None
    )


# --- reading --------------------------------------------------------------------------------------


def _summary_select(me: int) -> Select[Conversation, User, User, Shop, Product, bool]:
    counterpart_id = case((Conversation.buyer_id == me, Conversation.seller_id), else_=Conversation.buyer_id)
    blocked = exists().where(UserBlock.blocker_id == me, UserBlock.blocked_id == counterpart_id)
    return (
        select(Conversation, Buyer, Seller, Shop, Product, blocked.label("blocked"))
        .join(Buyer, Buyer.id == Conversation.buyer_id)
        .join(Seller, Seller.id == Conversation.seller_id)
        .join(Shop, Shop.id == Conversation.shop_id)
        .outerjoin(Product, Product.id == Conversation.product_id)
    )


def _summary(
    me: int, conv: Conversation, buyer: User, seller: User, shop: Shop, product: Product | None, blocked: bool
) -> ConversationOut:
    role = side(conv, me)
    counterpart = {BUYER: seller, SELLER: buyer}.get(role)
    unread = {BUYER: conv.buyer_unread_count, SELLER: conv.seller_unread_count}.get(role, 0)
    archived = {BUYER: conv.buyer_archived, SELLER: conv.seller_archived}.get(role, False)
    return ConversationOut(
        id=conv.id,
        role=role,
        buyer=UserRef(id=buyer.id, username=buyer.username),
        seller=UserRef(id=seller.id, username=seller.username),
        counterpart=UserRef(id=counterpart.id, username=counterpart.username) if counterpart else None,
        shop=ShopRef(id=shop.id, name=shop.name),
        product=ProductRef(id=product.id, name=product.name, price=product.price, currency=product.currency)
        if product is not None
        else None,
        last_message=conv.last_message,
        last_message_at=conv.last_message_at,
        unread_count=unread,
        archived=bool(archived),
        blocked=bool(blocked) and role != OBSERVER,
        created_at=conv.created_at,
    )


def summary(db: Session, principal: Principal, conversation_id: int) -> ConversationOut:
    me = principal.user_id
    conv, buyer, seller, shop, product, blocked = db.execute(
        _summary_select(me)
        .where(Conversation.id == conversation_id)
        .execution_options(populate_existing=True)
    ).one()
    return _summary(me, conv, buyer, seller, shop, product, blocked)


def get_conversation(db: Session, principal: Principal, conversation_id: int) -> ConversationOut:
    _visible(db, principal, conversation_id)
    return summary(db, principal, conversation_id)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_conversations(
    db: Session, principal: Principal, *, archived: bool, q: str | None, page: int, page_size: int
) -> tuple[list[ConversationOut], int]:
    me = principal.user_id
    conds: list[ColumnElement[bool]] = [
        or_(
            and_(Conversation.buyer_id == me, Conversation.buyer_archived.is_(archived)),
            and_(Conversation.seller_id == me, Conversation.seller_archived.is_(archived)),
        )
    ]
    if q:
        pat = _like(q)
        conds.append(
            or_(
                and_(Conversation.buyer_id == me, Seller.username.ilike(pat, escape="\\")),
                and_(Conversation.seller_id == me, Buyer.username.ilike(pat, escape="\\")),
                Shop.name.ilike(pat, escape="\\"),
                Product.name.ilike(pat, escape="\\"),
                exists().where(
                    Message.conversation_id == Conversation.id, Message.body.ilike(pat, escape="\\")
                ),
            )
        )
    base = _summary_select(me).where(*conds)
    total = db.execute(
        select(func.count()).select_from(base.with_only_columns(literal(1)).subquery())
    ).scalar_one()
    rows = db.execute(
        base.order_by(
            func.coalesce(Conversation.last_message_at, Conversation.created_at).desc(),
            Conversation.id.desc(),
        )
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [_summary(me, c, b, sl, sh, p, bl) for c, b, sl, sh, p, bl in rows], total


def list_messages(
    db: Session, principal: Principal, conversation_id: int, *, before: int | None, page: int, page_size: int
) -> tuple[list[Message], int]:
    """Newest first. `before` (a message id) pages back from a known message; `page` works too."""
    _visible(db, principal, conversation_id)
    conds = [Message.conversation_id == conversation_id]
    if before is not None:
        conds.append(Message.id < before)
    total = db.execute(select(func.count()).select_from(Message).where(*conds)).scalar_one()
    rows = db.execute(
        select(Message)
        .where(*conds)
        .order_by(Message.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).scalars()
    return list(rows), total


# --- writing --------------------------------------------------------------------------------------


def _find(db: Session, buyer_id: int, shop_id: int, product_id: int | None) -> Conversation | None:
    product_cond = (
        Conversation.product_id.is_(None) if product_id is None else Conversation.product_id == product_id
    )
    return db.execute(
        select(Conversation).where(
            Conversation.buyer_id == buyer_id, Conversation.shop_id == shop_id, product_cond
        )
    ).scalar_one_or_none()


def open_conversation(uow: Uow, principal: Principal, body: ConversationCreate) -> tuple[Conversation, bool]:
    """Get-or-create between the caller (buyer) and the shop's owner. Returns (conversation, created)."""
    s = uow.session
    me = principal.user_id
    shop = s.get(Shop, body.shop_id)
    if shop is None:
        raise NotFound("Shop", body.shop_id)
    if shop.owner_id == me:
        raise ValidationFailed(
            "You cannot open a conversation with your own shop",
            code="OWN_SHOP",
            details=[{"field": "shopId", "message": "this is your own shop"}],
        )
    product: Product | None = None
    if body.product_id is not None:
        product = s.get(Product, body.product_id)
        if product is None or product.shop_id != shop.id:
            raise ValidationFailed(
                "The product does not belong to this shop",
                details=[{"field": "productId", "message": "not a product of this shop"}],
            )
    existing = _find(s, me, shop.id, body.product_id)
    if existing is not None:
        return existing, False
    if is_blocked(s, shop.owner_id, me):
        raise Forbidden("The shop's owner does not accept your messages", code="BLOCKED")
    conv = Conversation(
        buyer_id=me,
        seller_id=shop.owner_id,
        shop_id=shop.id,
        product_id=body.product_id,
        last_message=None,
        last_message_at=None,
        buyer_unread_count=0,
        seller_unread_count=0,
        buyer_archived=False,
        seller_archived=False,
        created_at=uow.now,
        updated_at=uow.now,
    )
    try:
        # A savepoint: the unique constraints settle a race with a concurrent open. Its release runs
        # the outbox guard, so the event goes in with the row.
        with s.begin_nested():
            s.add(conv)
            s.flush()
            uow.emit(
                EventType.conversation_started,
                "conversation",
                conv.id,
                {"buyerId": me, "sellerId": shop.owner_id},
                shop_id=shop.id,
                product_id=body.product_id,
            )
    except IntegrityError:  # a concurrent request created it first: get, not create
        existing = _find(s, me, shop.id, body.product_id)
        if existing is None:
            raise
        return existing, False
    return conv, True


def _preview(body: str) -> str:
    flat = " ".join(body.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


# The statements of the chat hot path, built once: building them per message cost more than running them.
_SEND_CHECK = select(
    Conversation.buyer_id,
    Conversation.seller_id,
    Conversation.shop_id,
    Conversation.product_id,
    select(UserBlock.id)
    .where(
        UserBlock.blocked_id == bindparam("me"),
        UserBlock.blocker_id.in_([Conversation.buyer_id, Conversation.seller_id]),
    )
    .exists()
    .label("blocked"),
    select(User.username).where(User.id == bindparam("me")).scalar_subquery().label("sender_name"),
).where(Conversation.id == bindparam("cid"))


def _bump(counter: Any, archived: str) -> Any:
    # On the Table, not the mapped class: the ORM's bulk-UPDATE path costs more than the statement.
    table: Table = Conversation.__table__  # type: ignore[assignment]
    return (
        table.update()
        .where(table.c.id == bindparam("cid"))
        .values(
            {
                counter.key: table.c[counter.key] + 1,
                archived: False,
                "last_message": bindparam("preview"),
                "last_message_at": bindparam("now"),
                "updated_at": bindparam("now"),
            }
        )
        .returning(table.c.buyer_unread_count, table.c.seller_unread_count)
    )


_BUMP_SELLER = _bump(Conversation.seller_unread_count, "seller_archived")
_BUMP_BUYER = _bump(Conversation.buyer_unread_count, "buyer_archived")
_MESSAGES: Table = Message.__table__  # type: ignore[assignment]
_INSERT_MESSAGE = _MESSAGES.insert().returning(_MESSAGES.c.id)


def send_message(uow: Uow, principal: Principal, conversation_id: int, body: MessageCreate) -> Message:
    return post_message(uow, principal, conversation_id, body.body)


def post_message(
    uow: Uow,
    principal: Principal,
    conversation_id: int,
    text: str,
    *,
    message_type: str = "text",
    attachment_url: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Message:
    """Stores a message (text or attachment) with its event, counters, notification and live push.

    The hot path of chat (hundreds a second): Core statements, one read for the checks and one
    UPDATE ... RETURNING for the counters. The recipient is notified when the conversation turns
    unread for them (counter 0 → 1), not for every message of a burst: one "new message" notification
    (and email) per conversation until they read it."""
    s = uow.session
    me = principal.user_id
    row = s.execute(_SEND_CHECK, {"cid": conversation_id, "me": me}).one_or_none()
    if row is None or me not in (row.buyer_id, row.seller_id):
        if row is not None and principal.is_admin:
            raise Forbidden("Only the conversation's participants can do this")
        raise NotFound("Conversation", conversation_id)
    if row.blocked:
        raise Forbidden("The recipient does not accept your messages", code="BLOCKED")
    recipient = row.seller_id if me == row.buyer_id else row.buyer_id
    to_seller = recipient == row.seller_id
    preview = _preview(text) if text else f"[{message_type}]"
    # One atomic UPDATE: the counter can't lose an increment, and the row lock it takes orders this
    # send against a concurrent "mark read" of the same conversation.
    counts = s.execute(
        _BUMP_SELLER if to_seller else _BUMP_BUYER,
        {"cid": conversation_id, "preview": preview, "now": uow.now},
    ).one()
    fields = {
        "conversation_id": conversation_id,
        "sender_id": me,
        "body": text,
        "message_type": message_type,
        "attachment_url": attachment_url,
        "is_read": False,
        "read_at": None,
        "created_at": uow.now,
    }
    message_id: int = s.execute(_INSERT_MESSAGE, fields).scalar_one()
    msg = Message(id=message_id, **fields)  # transient: the row is written, this is its value
    uow.emit(
        EventType.message_sent,
        "message",
        message_id,
        {
            "conversationId": conversation_id,
            "senderId": me,
            "recipientId": recipient,
            "length": len(text),
            "messageType": message_type,
            **(extra or {}),
        },
        shop_id=row.shop_id,
        product_id=row.product_id,
    )
    message = MessageOut.model_validate(msg).model_dump(mode="json", by_alias=True)
    # Both sides hear of it live: the recipient, and the sender's other devices.
    uow.push(
        "new_message",
        {
            "conversationId": conversation_id,
            "message": message,
            "unread": {str(row.buyer_id): counts[0], str(row.seller_id): counts[1]},
        },
        user_ids=(recipient, me),
    )
    if (counts[1] if to_seller else counts[0]) == 1:
        notify(
            uow,
            recipient,
            NotificationType.new_message,
            f"New message from {row.sender_name or 'someone'}",
            preview,
            {"conversationId": conversation_id, "messageId": message_id, "senderId": me},
        )
    return msg


def mark_read(uow: Uow, principal: Principal, conversation_id: int) -> int:
    """Marks the counterpart's messages read and zeroes the caller's counter. Returns how many."""
    s = uow.session
    me = principal.user_id
    conv = _participant(s, principal, conversation_id, for_update=True)
    result = s.execute(
        update(Message)
        .where(Message.conversation_id == conv.id, Message.sender_id != me, Message.is_read.is_(False))
        .values(is_read=True, read_at=uow.now)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    previous = conv.buyer_unread_count if side(conv, me) == BUYER else conv.seller_unread_count
    if side(conv, me) == BUYER:
        conv.buyer_unread_count = 0
    else:
        conv.seller_unread_count = 0
    if count or previous:
        # The sender sees the receipt; the reader's other devices see their counter drop to zero.
        uow.push(
            "read_receipt",
            {
                "conversationId": conv.id,
                "readerId": me,
                "messagesRead": count,
                "readAt": uow.now,
                "unread": 0,
            },
            user_ids=(_other(conv, me), me),
        )
        uow.emit(
            EventType.conversation_read,
            "conversation",
            conv.id,
            {"userId": me, "messagesRead": count, "unreadBefore": previous},
            shop_id=conv.shop_id,
            product_id=conv.product_id,
        )
    return count


def set_archived(uow: Uow, principal: Principal, conversation_id: int, archived: bool) -> None:
    """The caller's own archive flag; the counterpart's view is untouched. Idempotent."""
    me = principal.user_id
    conv = _participant(uow.session, principal, conversation_id, for_update=True)
    attr = "buyer_archived" if side(conv, me) == BUYER else "seller_archived"
    if getattr(conv, attr) == archived:
        return
    setattr(conv, attr, archived)
    uow.emit(
        EventType.conversation_archived if archived else EventType.conversation_unarchived,
        "conversation",
        conv.id,
        {"userId": me},
        shop_id=conv.shop_id,
        product_id=conv.product_id,
    )


def block(uow: Uow, principal: Principal, conversation_id: int) -> BlockOut:
    """Blocks the counterpart (all their messages to the caller, and new conversations). Idempotent."""
    s = uow.session
    me = principal.user_id
    conv = _participant(s, principal, conversation_id)
    other = _other(conv, me)
    if not is_blocked(s, me, other):
        try:
            with s.begin_nested():
                s.add(UserBlock(blocker_id=me, blocked_id=other, created_at=uow.now))
                s.flush()
                uow.emit(
                    EventType.user_blocked,
                    "user",
                    other,
                    {"blockerId": me, "blockedId": other, "conversationId": conv.id},
                )
        except IntegrityError:  # a concurrent request blocked them first
            pass
    return BlockOut(user_id=other, blocked=True)


def unblock(uow: Uow, principal: Principal, conversation_id: int) -> BlockOut:
    s = uow.session
    me = principal.user_id
    conv = _participant(s, principal, conversation_id)
    other = _other(conv, me)
    result = s.execute(delete(UserBlock).where(UserBlock.blocker_id == me, UserBlock.blocked_id == other))
    if result.rowcount:  # type: ignore[attr-defined]
        uow.emit(
            EventType.user_unblocked,
            "user",
            other,
            {"blockerId": me, "blockedId": other, "conversationId": conv.id},
        )
    return BlockOut(user_id=other, blocked=False)
