"""Password hashing (argon2id) and JWT access tokens with a pinned algorithm."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from api.core.errors import Unauthorized


@lru_cache
def _hasher(time_cost: int = 2, memory_kib: int = 19_456) -> PasswordHasher:
    # Defaults: OWASP's argon2id minimum (19 MiB, t=2, p=1), about 20 ms per hash here.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hash_password(password: str, *, time_cost: int = 2, memory_kib: int = 19_456) -> str:
    return _hasher(time_cost, memory_kib).hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    # The cost parameters are read from the hash itself, so any hasher verifies any of our hashes.
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the email is unknown, so timing does not reveal accounts; it
# costs what the account hashes cost.
@lru_cache
def dummy_hash(time_cost: int = 2, memory_kib: int = 19_456) -> str:
    return hash_password(secrets.token_urlsafe(16), time_cost=time_cost, memory_kib=memory_kib)


def new_opaque_token() -> str:
    return secrets.token_urlsafe(48)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: int
    role: str
    expires_at: int = 0  # epoch seconds: a WebSocket closes when its token runs out


def create_access_token(
    *,
    user_id: int,
    session_id: int,
    role: str,
    now: datetime,
    lifetime: timedelta,
    secret: str,
    algorithm: str,
) -> str:
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "sid": session_id,
        "role": role,
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=algorithm)


@lru_cache(maxsize=16_384)
def _verified_claims(token: str, secret: str, algorithm: str) -> dict[str, Any]:
    # A client sends the same token with every request until it expires: its signature is checked
    # once (PyJWT's key preparation and HMAC cost more than the session lookup). Only valid tokens are
    # remembered (an exception is not cached); expiry is checked on every use, below.
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[algorithm],
        options={"require": ["exp", "iat", "sub"], "verify_exp": False, "verify_iat": False},
    )
    return claims


def decode_access_token(token: str, *, secret: str, algorithm: str, now: datetime) -> AccessClaims:
    try:
        # The clock is injectable (backfills run in the past), so expiry is checked against it here.
        claims = _verified_claims(token, secret, algorithm)
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("Invalid access token", code="INVALID_TOKEN") from exc
    if claims.get("typ") != "access":
        raise Unauthorized("Invalid access token", code="INVALID_TOKEN")
    ts = int(now.timestamp())
    if int(claims["exp"]) <= ts:
        raise Unauthorized("Access token expired", code="TOKEN_EXPIRED")
    if int(claims["iat"]) > ts + 60:
        raise Unauthorized("Access token issued in the future", code="INVALID_TOKEN")
    try:
        return AccessClaims(
            user_id=int(claims["sub"]),
            session_id=int(claims["sid"]),
            role=str(claims.get("role", "buyer")),
            expires_at=int(claims["exp"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Unauthorized("Invalid access token", code="INVALID_TOKEN") from exc
