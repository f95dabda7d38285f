"""Who may use the dashboard: sign-in against the store's users, and what each role sees."""

from __future__ import annotations

from dataclasses import dataclass

from api.core.security import dummy_hash, verify_password
from api.core.settings import Settings
from dashboard.data.store_reads import Account, ShopRef, StoreReads

PLATFORM_ROLES = frozenset({"analyst", "admin"})
SHOP_ROLES = frozenset({"seller"})

BAD_CREDENTIALS = "Invalid email or password."
BUYER_REFUSED = (
    "The dashboard is for analysts and shop owners. Your account is a buyer account, so there is "
    "nothing here for it: ask an administrator if you need access."
)


@dataclass(frozen=True)
class Viewer:
    """The signed-in user, as the pages need them."""

    id: int
    email: str
    username: str
    role: str
    shops: tuple[ShopRef, ...] = ()

    @property
    def sees_platform(self) -> bool:
        return self.role in PLATFORM_ROLES

    @property
    def scope(self) -> tuple[int, ...] | None:
        """The shops whose numbers this viewer sees; None is the whole platform."""
        return None if self.sees_platform else tuple(s.id for s in self.shops)


class SignInRefused(Exception):
    """Sign-in failed; the message is safe to show."""


def _viewer(reads: StoreReads, account: Account) -> Viewer:
    if account.role in PLATFORM_ROLES:
        return Viewer(account.id, account.email, account.username, account.role)
    if account.role in SHOP_ROLES:
        shops = reads.owned_shops(account.id)
        return Viewer(account.id, account.email, account.username, account.role, shops)
    raise SignInRefused(BUYER_REFUSED)


def sign_in(reads: StoreReads, settings: Settings, email: str, password: str) -> Viewer:
    """The viewer for these credentials, checked as the store's own login checks them."""
    account = reads.account_by_email(email)
    if account is None:
        # Spend what a real check costs, so the answer's timing does not tell which emails exist.
        verify_password(
            dummy_hash(settings.password_hash_time_cost, settings.password_hash_memory_kib), password
        )
        raise SignInRefused(BAD_CREDENTIALS)
    if not verify_password(account.password_hash, password) or not account.is_active:
        raise SignInRefused(BAD_CREDENTIALS)
    return _viewer(reads, account)


def refresh(reads: StoreReads, viewer: Viewer) -> Viewer | None:
    """The viewer as the store knows them now: None once deactivated or no longer allowed in.

    Run on every rerun, so a role change or deactivation takes effect without a new sign-in."""
    account = reads.account_by_id(viewer.id)
    if account is None or not account.is_active:
        return None
    try:
        return _viewer(reads, account)
    except SignInRefused:
        return None
