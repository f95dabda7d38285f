"""What each outbox event means: the hand-kept half of docs/events.md (issue 3, item 7).

`python -m api.outbox.doc` renders the document from this catalogue and `EventType`;
tests/test_events_doc.py fails when a type has no entry here, when an emitted payload key is not
listed, or when docs/events.md is out of date. Payload keys are camelCase, as in the JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from api.outbox.types import EventType

# The optional columns an event may fill besides entity_type/entity_id, for filtering without JSON.
SHOP, PRODUCT, ORDER = "shop_id", "product_id", "order_id"


@dataclass(frozen=True)
class EventDoc:
    group: str  # the section of the document
    entity: str  # entity_type, and what entity_id names
    when: str  # what happened, and when the event is written
    payload: dict[str, str] = field(default_factory=dict)  # key -> meaning
    refs: tuple[str, ...] = ()  # which of shop_id / product_id / order_id are set
    actor: str = "the signed-in user who made the request"


ACCOUNTS = "Accounts and sessions"
SHOPS = "Shops and catalogue"
BEHAVIOUR = "Views and searches"
ORDERS = "Orders and reviews"
ALERTS = "Price alerts"
CHAT = "Conversations, messages and attachments"
NOTIFY = "Notifications and their delivery"
CALLS = "Calls"
ML = "Machine learning outputs"

_CHANGES = "`{field: {old, new}}` for each field that changed (field names as stored, snake_case)"
_ORDER_BASE = {
    "buyerId": "the buyer",
    "shopId": "the shop",
    "from": "status before the move",
    "to": "status after the move",
    "by": "`buyer` or `seller`: whose action it was",
    "total": "order total (decimal string)",
    "currency": "order currency",
}
_CALL_BASE = {
    "callerId": "who called",
    "receiverId": "who was called",
    "conversationId": "the conversation the call was started from, or null",
    "callType": "`audio` or `video`",
    "from": "status before the move (null for `call.initiated`)",
    "to": "status after the move",
    "byUserId": "the participant who made the move; null when the ring timer did",
    "duration": "seconds between accept and end for `call.ended`, 0 for missed/rejected, else null",
}
_DELIVERY_BASE = {
    "userId": "the recipient",
    "notificationId": "the in-app notification it belongs to, or null",
    "channel": "`email`, `webhook` or `telegram`",
    "type": "notification type",
    "attempts": "attempts made so far, this one included",
}
_CALL_REFS = (SHOP, PRODUCT)  # from the conversation, when the call has one

CATALOG: dict[EventType, EventDoc] = {
    # --- accounts and sessions ---
    EventType.user_registered: EventDoc(
        ACCOUNTS,
        "`user`: the new user",
        "A user signed up.",
        {"role": "`buyer` or `seller`", "username": "the chosen username"},
        actor="the new user",
    ),
    EventType.user_logged_in: EventDoc(
        ACCOUNTS,
        "`session`: the session the login opened",
        "A login succeeded and opened a session.",
        {"userId": "who logged in", "ip": "client address", "deviceInfo": "device facts sent or derived"},
        actor="the user who logged in",
    ),
    EventType.user_login_failed: EventDoc(
        ACCOUNTS,
        "`user`: the account tried, or null for an unknown email",
        "A login was refused (committed even though the request fails).",
        {
            "reason": "`unknown_email`, `bad_password` or `inactive`",
            "failedLoginCount": "the account's failed logins so far (known accounts only)",
            "ip": "client address (known accounts only)",
        },
        actor="the account tried, or null",
    ),
    EventType.user_logged_out: EventDoc(
        ACCOUNTS,
        "`session`: the session ended",
        "A user logged out.",
        {"userId": "the session's user", "reason": "`logout`"},
        actor="the session's user",
    ),
    EventType.user_role_changed: EventDoc(
        ACCOUNTS,
        "`user`: the user whose role changed",
        "An admin (or the CLI) changed a role. A buyer who opens a shop becomes a seller without this "
        "event: see `ownerPromoted` in `shop.created`.",
        {"old": "previous role", "new": "new role"},
        actor="the admin, or null from the CLI",
    ),
    EventType.token_refreshed: EventDoc(
        ACCOUNTS,
        "`session`: the session",
        "A refresh token was exchanged (and rotated) for new tokens.",
        {"userId": "the session's user"},
        actor="the session's user",
    ),
    EventType.session_expired: EventDoc(
        ACCOUNTS,
        "`session`: the session ended",
        "A session ended without a logout: idle too long (found by a request, a refresh or the sweeper) "
        "or its refresh token expired.",
        {"userId": "the session's user", "reason": "`expired` (idle) or `refresh_expired`"},
        actor="the session's user",
    ),
    EventType.session_revoked: EventDoc(
        ACCOUNTS,
        "`session`: the session ended",
        "A user (or an admin) revoked a session.",
        {"userId": "the session's user", "reason": "`revoked`"},
        actor="the session's user",
    ),
    # --- shops and catalogue ---
    EventType.shop_created: EventDoc(
        SHOPS,
        "`shop`: the new shop",
        "A shop was opened.",
        {
            "name": "shop name",
            "ownerId": "the owner",
            "latitude": "location, or null",
            "longitude": "location, or null",
            "deliveryAvailable": "whether it delivers",
            "ownerPromoted": "true when the owner was a buyer and became a seller",
        },
        refs=(SHOP,),
    ),
    EventType.shop_updated: EventDoc(
        SHOPS, "`shop`", "The owner changed the shop's details.", {"changes": _CHANGES}, refs=(SHOP,)
    ),
    EventType.shop_followed: EventDoc(
        SHOPS,
        "`shop`: the followed shop",
        "A user followed a shop (the owner is notified).",
        {"userId": "the follower", "followerCount": "followers after the change"},
        refs=(SHOP,),
    ),
    EventType.shop_unfollowed: EventDoc(
        SHOPS,
        "`shop`: the unfollowed shop",
        "A user stopped following a shop.",
        {"userId": "the former follower", "followerCount": "followers after the change"},
        refs=(SHOP,),
    ),
    EventType.category_created: EventDoc(
        SHOPS,
        "`category`: the new category",
        "An admin created a product category.",
        {"name": "category name", "slug": "URL slug", "parentId": "parent category, or null"},
    ),
    EventType.product_created: EventDoc(
        SHOPS,
        "`product`: the new product",
        "A shop owner listed a product.",
        {
            "name": "product name",
            "price": "price (decimal string)",
            "currency": "price currency",
            "stock": "units in stock",
            "categoryId": "category, or null",
        },
        refs=(SHOP, PRODUCT),
    ),
    EventType.product_updated: EventDoc(
        SHOPS,
        "`product`",
        "The owner changed a product's fields other than price and currency (those are "
        "`product.price_changed`; one update may write both events).",
        {"changes": _CHANGES + "; money as decimal strings"},
        refs=(SHOP, PRODUCT),
    ),
    EventType.price_changed: EventDoc(
        SHOPS,
        "`product`",
        "A product's price or currency changed (also kept in price history; may trigger price alerts).",
        {
            "oldPrice": "previous price (decimal string)",
            "newPrice": "new price (decimal string)",
            "oldCurrency": "previous currency",
            "currency": "new currency",
        },
        refs=(SHOP, PRODUCT),
    ),
    # --- views and searches ---
    EventType.view_tracked: EventDoc(
        BEHAVIOUR,
        "`product_view`: the recorded view",
        "A product page view was tracked.",
        {
            "viewId": "the view row",
            "userId": "the viewer, or null when anonymous",
            "sessionId": "the client's session id, if sent",
            "duration": "seconds on the page, if sent",
            "referrer": "referrer, if sent",
            "views": "the product's view counter after this view",
        },
        refs=(SHOP, PRODUCT),
        actor="the viewer, or null",
    ),
    EventType.search_performed: EventDoc(
        BEHAVIOUR,
        "`search`: entity_id is null",
        "A product search ran. Written in its own small transaction after the response (an analytics "
        "event: losing one on a failure is logged, not retried).",
        {
            "query": "the text searched, or null",
            "terms": "the normalised search terms",
            "filters": "the other filters given (camelCase, as in the query string)",
            "sort": "sort order, or null",
            "page": "page requested",
            "pageSize": "page size",
            "total": "number of matches",
            "userId": "the searcher, or null when anonymous",
        },
        actor="the searcher, or null",
    ),
    # --- orders and reviews ---
    EventType.order_placed: EventDoc(
        ORDERS,
        "`order`: the new order",
        "A buyer placed an order (stock reserved; the shop owner is notified).",
        {
            "buyerId": "the buyer",
            "shopId": "the shop",
            "currency": "order currency",
            "total": "order total (decimal string)",
            "itemCount": "number of lines",
            "items": "`[{productId, quantity, unitPrice, lineTotal}]`, money as decimal strings",
        },
        refs=(SHOP, ORDER),
    ),
    EventType.order_paid: EventDoc(
        ORDERS,
        "`order`",
        "The buyer paid (pending → paid); sales counters move.",
        {
            **_ORDER_BASE,
            "txHash": "payment transaction hash, or null",
            "chain": "payment chain, or null",
            "items": "`[{productId, quantity}]`",
        },
        refs=(SHOP, ORDER),
    ),
    EventType.order_cancelled: EventDoc(
        ORDERS,
        "`order`",
        "Buyer or seller cancelled (from pending or paid); reserved stock goes back. Also written when "
        "staff reject an order held by the fraud model (`by: staff`, `review: rejected`; the actor is "
        "the reviewer).",
        {
            **_ORDER_BASE,
            "reason": "the reason given (the reviewer's note for a rejection), or null",
            "wasPaid": "true when cancelled after payment (sales counters go back too)",
            "stockReleased": "`[{productId, quantity}]`",
            "review": "`rejected` when staff rejected a held order in fraud review, else null",
        },
        refs=(SHOP, ORDER),
    ),
    EventType.order_shipped: EventDoc(
        ORDERS,
        "`order`",
        "The seller shipped (paid → shipped).",
        {**_ORDER_BASE, "trackingNumber": "tracking number, or null"},
        refs=(SHOP, ORDER),
    ),
    EventType.order_delivered: EventDoc(
        ORDERS,
        "`order`",
        "Buyer or seller confirmed delivery (shipped → delivered).",
        dict(_ORDER_BASE),
        refs=(SHOP, ORDER),
    ),
    EventType.order_held: EventDoc(
        ORDERS,
        "`order`: the order just placed",
        "The fraud model scored the new order at or above its threshold: the order is held for review "
        "(it cannot be paid until staff release it). Written in the order's own transaction.",
        {
            "buyerId": "the buyer",
            "score": "the fraud score, 0 to 1",
            "threshold": "the model's threshold",
            "modelVersion": "the registry version of the model that scored it",
        },
        refs=(SHOP, ORDER),
    ),
    EventType.order_released: EventDoc(
        ORDERS,
        "`order`",
        "Staff reviewed a held order and released it: it can be paid again.",
        {"buyerId": "the buyer", "note": "the reviewer's note, or null"},
        refs=(SHOP, ORDER),
        actor="the admin or analyst who reviewed it",
    ),
    EventType.security_suspicious_order: EventDoc(
        ORDERS,
        "`user`: the buyer",
        "A security event raised with `order.held`: the buyer's order looked fraudulent.",
        {
            "orderId": "the held order",
            "score": "the fraud score, 0 to 1",
            "features": "`{name: value}`: the features the model scored",
        },
        refs=(SHOP, ORDER),
    ),
    EventType.review_posted: EventDoc(
        ORDERS,
        "`review`: the new review",
        "A buyer reviewed a product they received; the product's rating moves.",
        {
            "productId": "the product",
            "userId": "the reviewer",
            "orderId": "the order it was bought in",
            "rating": "1 to 5",
            "hasComment": "whether a comment was written",
            "productRating": "the product's average rating after this review",
            "productRatingCount": "the product's number of ratings after this review",
        },
        refs=(SHOP, PRODUCT, ORDER),
    ),
    # --- price alerts ---
    EventType.alert_created: EventDoc(
        ALERTS,
        "`price_alert`: the new alert",
        "A user asked to be told when a product's price drops to a target.",
        {
            "userId": "the alert's owner",
            "targetPrice": "target (decimal string)",
            "currentPrice": "the product's price then (decimal string)",
            "currency": "the product's currency",
        },
        refs=(SHOP, PRODUCT),
    ),
    EventType.alert_deleted: EventDoc(
        ALERTS,
        "`price_alert`",
        "The owner deleted an alert.",
        {"userId": "the alert's owner", "targetPrice": "target (decimal string)"},
        refs=(SHOP, PRODUCT),
    ),
    EventType.alert_triggered: EventDoc(
        ALERTS,
        "`price_alert`",
        "A price change (or the creation of an alert already met) fired the alert; it is now "
        "inactive and its owner is notified.",
        {
            "userId": "the alert's owner",
            "targetPrice": "target (decimal string)",
            "price": "the price that met it (decimal string)",
            "currency": "price currency",
        },
        refs=(PRODUCT,),
        actor="whoever changed the price (or created the alert)",
    ),
    # --- conversations, messages and attachments ---
    EventType.conversation_started: EventDoc(
        CHAT,
        "`conversation`: the new conversation",
        "A buyer opened a conversation with a shop (about one product, or in general). Opening an "
        "existing one writes nothing.",
        {"buyerId": "the buyer", "sellerId": "the shop's owner"},
        refs=(SHOP, PRODUCT),
        actor="the buyer",
    ),
    EventType.message_sent: EventDoc(
        CHAT,
        "`message`: the new message",
        "A participant posted a message (REST, WebSocket, or an attachment upload); the recipient's "
        "unread counter moved and they are notified. This is the event the simulator and the "
        "pipeline read messages from.",
        {
            "conversationId": "the conversation",
            "senderId": "the sender",
            "recipientId": "the other participant",
            "length": "characters of text (the caption for an attachment; 0 without one)",
            "messageType": "`text`, `image` or `file`",
            "attachmentId": "attachment messages only: the attachment",
            "contentType": "attachment messages only: its content type",
            "size": "attachment messages only: its size in bytes",
        },
        refs=(SHOP, PRODUCT),
        actor="the sender",
    ),
    EventType.conversation_read: EventDoc(
        CHAT,
        "`conversation`",
        "A participant read the conversation: the other side's messages are marked read and the "
        "reader's unread counter is zeroed. Nothing is written when there was nothing unread.",
        {
            "userId": "the reader",
            "messagesRead": "messages marked read now",
            "unreadBefore": "the reader's unread counter before",
        },
        refs=(SHOP, PRODUCT),
        actor="the reader",
    ),
    EventType.conversation_archived: EventDoc(
        CHAT,
        "`conversation`",
        "A participant archived the conversation for themselves (the other side is unaffected; a new "
        "message unarchives it for its recipient without an event).",
        {"userId": "who archived it"},
        refs=(SHOP, PRODUCT),
    ),
    EventType.conversation_unarchived: EventDoc(
        CHAT,
        "`conversation`",
        "A participant unarchived the conversation for themselves.",
        {"userId": "who unarchived it"},
        refs=(SHOP, PRODUCT),
    ),
    EventType.user_blocked: EventDoc(
        CHAT,
        "`user`: the blocked user",
        "A participant blocked the other one: their messages, uploads and new conversations are refused.",
        {"blockerId": "who blocked", "blockedId": "who is blocked", "conversationId": "where it was done"},
    ),
    EventType.user_unblocked: EventDoc(
        CHAT,
        "`user`: the unblocked user",
        "A participant lifted a block.",
        {"blockerId": "who had blocked", "blockedId": "who is unblocked", "conversationId": "where"},
    ),
    EventType.attachment_uploaded: EventDoc(
        CHAT,
        "`attachment`: the new attachment",
        "A participant uploaded a file into a conversation. Written with the `message.sent` of the "
        "message that carries it, in the same transaction. The bytes are stored once per content "
        "hash and served at `/api/attachments/{id}`.",
        {
            "conversationId": "the conversation",
            "messageId": "the message carrying it",
            "uploaderId": "the uploader",
            "sha256": "hex SHA-256 of the content (its storage name)",
            "contentType": "verified content type",
            "sizeBytes": "size in bytes",
            "deduplicated": "true when identical bytes were already stored",
        },
        refs=(SHOP, PRODUCT),
        actor="the uploader",
    ),
    # --- notifications ---
    EventType.notification_created: EventDoc(
        NOTIFY,
        "`notification`: the new in-app notification",
        "A user was notified in-app (and any external deliveries were queued with it). Written in the "
        "transaction of the change that caused it.",
        {
            "userId": "the recipient",
            "type": "`order_update`, `new_message`, `new_follower`, `price_alert`, `call` or `system`",
            "data": "type-specific ids (for example `orderId`, `conversationId`, `callId`)",
            "channels": "the channels it went to: `in_app` first, then the queued external ones",
        },
        actor="whoever caused it",
    ),
    EventType.notification_read: EventDoc(
        NOTIFY,
        "`notification` for one notification, `user` (the reader) for mark-all-read",
        "A user read one notification, or all of them.",
        {
            "userId": "the reader",
            "type": "one notification: its type",
            "all": "mark-all-read only: true",
            "count": "mark-all-read only: how many were unread",
        },
    ),
    EventType.notification_preferences_updated: EventDoc(
        NOTIFY,
        "`user`: whose preferences",
        "A user changed which notification types reach them on which channels.",
        {"userId": "the user", "changes": "`[{type, channel, old, new}]` for each switch that changed"},
    ),
    EventType.notification_queued: EventDoc(
        NOTIFY,
        "`user`: the recipient",
        "A notification went to external channels only (the user turned in-app off for its type).",
        {
            "userId": "the recipient",
            "type": "notification type",
            "data": "type-specific ids",
            "channels": "the external channels queued",
        },
        actor="whoever caused it",
    ),
    EventType.notification_channels_updated: EventDoc(
        NOTIFY,
        "`user`: whose delivery targets",
        "A user changed their webhook URL or Telegram chat id, or rotated the webhook secret. The "
        "addresses themselves are not in the event.",
        {"userId": "the user", "changed": "which of `webhookUrl`, `telegramChatId`, `webhookSecret`"},
    ),
    EventType.notification_delivered: EventDoc(
        NOTIFY,
        "`notification_delivery`: the queued delivery",
        "The delivery worker handed a notification to an external channel.",
        dict(_DELIVERY_BASE),
        actor="null (the delivery worker)",
    ),
    EventType.notification_delivery_failed: EventDoc(
        NOTIFY,
        "`notification_delivery`",
        "An attempt failed and will be retried with exponential backoff.",
        {**_DELIVERY_BASE, "error": "what went wrong", "nextAttemptAt": "when it is tried again"},
        actor="null (the delivery worker)",
    ),
    EventType.notification_dead_lettered: EventDoc(
        NOTIFY,
        "`notification_delivery`",
        "A delivery gave up: a permanent failure, or the last allowed attempt failed.",
        {**_DELIVERY_BASE, "error": "the last failure"},
        actor="null (the delivery worker)",
    ),
    EventType.notification_delivery_requeued: EventDoc(
        NOTIFY,
        "`notification_delivery`",
        "An admin sent a dead (fresh attempts) or failed (now) delivery again.",
        {
            "userId": "the recipient",
            "channel": "the channel",
            "type": "notification type",
            "from": "`dead` or `failed`",
        },
        actor="the admin",
    ),
    # --- calls ---
    EventType.call_initiated: EventDoc(
        CALLS,
        "`call`: the new call",
        "A user started a call; always followed, in the same transaction, by `call.ringing`. The "
        "simulator and the pipeline read calls from the `call.*` events.",
        dict(_CALL_BASE),
        refs=_CALL_REFS,
        actor="the caller",
    ),
    EventType.call_ringing: EventDoc(
        CALLS,
        "`call`",
        "The receiver was told of the call (initiated → ringing; a call notification and a live "
        "`call_incoming`).",
        dict(_CALL_BASE),
        refs=_CALL_REFS,
        actor="the caller",
    ),
    EventType.call_accepted: EventDoc(
        CALLS,
        "`call`",
        "The receiver answered (ringing → active); the duration counts from here.",
        dict(_CALL_BASE),
        refs=_CALL_REFS,
        actor="the receiver",
    ),
    EventType.call_rejected: EventDoc(
        CALLS,
        "`call`",
        "The receiver declined, or hung up before answering (→ rejected, duration 0).",
        dict(_CALL_BASE),
        refs=_CALL_REFS,
        actor="the receiver",
    ),
    EventType.call_ended: EventDoc(
        CALLS,
        "`call`",
        "A participant hung up an active call (active → ended, with its duration).",
        dict(_CALL_BASE),
        refs=_CALL_REFS,
        actor="the participant who hung up",
    ),
    EventType.call_missed: EventDoc(
        CALLS,
        "`call`",
        "Nobody answered within the ring timeout (found by the timer, which survives a restart), or "
        "the caller hung up first (→ missed, duration 0); the receiver gets a missed-call notification.",
        {**_CALL_BASE, "reason": "`no_answer` (the timer) or `cancelled` (the caller hung up)"},
        refs=_CALL_REFS,
        actor="the caller when cancelled; null from the timer, or the user whose request found it overdue",
    ),
    # --- ML outputs ---
    EventType.recommendations_refreshed: EventDoc(
        ML,
        "`model`: null (entity_id null)",
        "The ML pipeline replaced the stored recommendations (`product_recommendations`) in this "
        "event's transaction.",
        {
            "modelVersion": "the recommender's registry version",
            "users": "users with recommendations",
            "rows": "rows written",
        },
        actor="null (the pipeline)",
    ),
}
