"""Webhooks: a signed JSON POST to the URL the user registered.

`X-Store-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the user's secret>` lets the
receiver check that the request is ours and unaltered; `X-Store-Delivery` is stable across retries,
for receivers that must not act twice. The request goes to the address that passed the SSRF check
(the Host header and TLS server name keep the original host), and redirects are not followed, so
neither a changed DNS answer nor a redirect can point it inside our network."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson

from api.notifications.channels import DeliveryError, Outgoing, SendContext, describe
from api.notifications.targets import UnsafeTarget, resolve_webhook_url

SIGNATURE_HEADER = "X-Store-Signature"


def payload(item: Outgoing) -> bytes:
    return orjson.dumps(
        {
            "id": item.notification_id,
            "deliveryId": item.id,
            "type": item.type,
            "title": item.title,
            "body": item.body,
            "data": item.data,
            "createdAt": item.created_at.isoformat().replace("+00:00", "Z"),
            "userId": item.user_id,
        }
    )


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send(item: Outgoing, ctx: SendContext) -> None:
    if not item.webhook_secret:
        raise DeliveryError("the user removed their webhook", permanent=True)
    try:
        target, ip = await resolve_webhook_url(item.target, allow_private=ctx.settings.webhook_allow_private)
    except UnsafeTarget as exc:
        raise DeliveryError(f"webhook target refused: {exc}", permanent=not exc.transient) from None
    body = payload(item)
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": "CryptoStore-Webhooks/1",
        SIGNATURE_HEADER: sign(item.webhook_secret, body),
        "X-Store-Timestamp": str(int(ctx.now.timestamp())),
        "X-Store-Event": item.type,
        "X-Store-Delivery": str(item.id),
    }
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    try:
        resp = await ctx.http.post(
            target.url.copy_with(host=str(ip)),
            content=body,
            headers=headers,
            timeout=ctx.settings.webhook_timeout_seconds,
            follow_redirects=False,
            extensions=extensions,
        )
    except httpx.TimeoutException:
        raise DeliveryError(f"timed out after {ctx.settings.webhook_timeout_seconds:g}s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(describe(exc)) from None
    if not 200 <= resp.status_code < 300:
        raise DeliveryError(f"HTTP {resp.status_code} from the webhook: {resp.text[:200]}")
