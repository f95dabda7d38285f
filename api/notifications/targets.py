"""Safety of user-supplied webhook URLs: http(s) only, and never an address inside our network.

A webhook makes the server send a request wherever a user says, so an unchecked URL would let anyone
probe or call internal services (SSRF). The host is resolved and every address it resolves to must
be public. This runs when the URL is saved and again before each delivery, since DNS answers change;
the delivery then connects to the address it checked (see channels/webhook.py), so a second lookup
cannot swap in another one."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

MAX_URL_LENGTH = 2048

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(ValueError):
    """The URL is malformed, unresolvable or points at a non-public address. `transient` marks a
    failed lookup, which may succeed later; the rest will not change by retrying."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class WebhookUrl:
    url: httpx.URL
    host: str
    port: int

    @property
    def host_header(self) -> str:
        return self.url.netloc.decode("ascii")


def parse_webhook_url(raw: str) -> WebhookUrl:
    if len(raw) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError) as exc:
        raise UnsafeTarget(f"not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise UnsafeTarget("only http and https URLs are allowed")
    if not url.host:
        raise UnsafeTarget("the URL has no host")
    if url.userinfo:
        raise UnsafeTarget("credentials in the URL are not allowed")
    port = url.port or (443 if url.scheme == "https" else 80)
    return WebhookUrl(url=url, host=url.host, port=port)


def blocked_reason(ip: IpAddress) -> str | None:
    """Why an address may not be a webhook target, or None when it is a public one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
    for reason, hit in (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
    ):
        if hit:
            return reason
    # Shared address space (100.64/10), documentation ranges and the like are not global either.
    return None if ip.is_global else "not globally routable"


def check_addresses(host: str, addresses: list[str], *, allow_private: bool) -> list[IpAddress]:
    """The resolved addresses, after refusing the lot if any of them is not public."""
    ips: list[IpAddress] = []
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
        reason = blocked_reason(ip)
        if reason is not None and not allow_private:
            raise UnsafeTarget(f"{host} resolves to a {reason} address ({ip}), which is not allowed")
        ips.append(ip)
    if not ips:
        raise UnsafeTarget(f"{host} does not resolve")
    return ips


def _addresses(infos: list[tuple[object, ...]]) -> list[str]:
    seen: dict[str, None] = {}
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        seen[str(sockaddr[0])] = None
    return list(seen)


def validate_webhook_url(raw: str, *, allow_private: bool) -> WebhookUrl:
    """Blocking (DNS): for request handlers, which run in the thread pool."""
    target = parse_webhook_url(raw)
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"{target.host} does not resolve ({exc})", transient=True) from None
    check_addresses(target.host, _addresses(list(infos)), allow_private=allow_private)
    return target


async def resolve_webhook_url(raw: str, *, allow_private: bool) -> tuple[WebhookUrl, IpAddress]:
    """The parsed URL and the checked address to connect to, for the delivery worker."""
    target = parse_webhook_url(raw)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError) as exc:
        raise UnsafeTarget(f"{target.host} does not resolve ({exc})", transient=True) from None
    ips = check_addresses(target.host, _addresses(list(infos)), allow_private=allow_private)
    return target, ips[0]
