"""The dashboard's queries on the live store (SQLAlchemy Core over the store's own tables).

Every query runs on SQLite and PostgreSQL alike. Where they differ (bucketing times, summing money
exactly) `_Dialect` holds both spellings. A `shops` argument of None means the whole platform; a tuple
limits the numbers to those shops (a shop owner's view; an empty tuple sees nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    and_,
    cast,
    distinct,
    func,
    literal,
    select,
)
from sqlalchemy.sql import Executable, Select
from sqlalchemy.sql.elements import KeyedColumnElement

from api.db.registry import metadata
from api.db.types import MONEY_SCALE

events = metadata.tables["events"]
users = metadata.tables["users"]
user_sessions = metadata.tables["user_sessions"]
shops_t = metadata.tables["shops"]
orders = metadata.tables["orders"]
messages = metadata.tables["messages"]
conversations = metadata.tables["conversations"]
product_views = metadata.tables["product_views"]
products = metadata.tables["products"]
categories = metadata.tables["categories"]

ShopScope = tuple[int, ...] | None
# Orders that were paid and not cancelled count as revenue; pending and cancelled ones do not.
REVENUE_STATUSES = ("paid", "shipped", "delivered")
_MINUTE_FORMAT = "%Y-%m-%d %H:%M"
_MONEY_UNITS = 10**MONEY_SCALE


# --- result rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    username: str
    role: str
    is_active: bool
    password_hash: str


@dataclass(frozen=True)
class ShopRef:
    id: int
    name: str


@dataclass(frozen=True)
class FeedEvent:
    id: int
    occurred_at: datetime
    event_type: str
    actor_user_id: int | None
    actor: str | None  # the actor's username
    entity_type: str
    entity_id: int | None
    shop_id: int | None


@dataclass(frozen=True)
class PeriodNumbers:
    """Overview KPIs of one period [start, end)."""

    start: datetime
    end: datetime
    orders: int
    paid_orders: int
    revenue: dict[str, Decimal]  # per currency
    new_users: int
    active_users: int
    product_viewers: int

    @property
    def conversion(self) -> float | None:
        """Orders per product viewer, None when nobody viewed a product."""
        return self.orders / self.product_viewers if self.product_viewers else None


# --- dialect differences ---------------------------------------------------------------------


class _Dialect:
    """Expressions SQLite and PostgreSQL spell differently.

    SQLite keeps the store's times as naive UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'), so a prefix is
    the bucket; PostgreSQL's timestamptz is rendered in UTC whatever the session's time zone."""

    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    def minute(self, col: ColumnElement[Any]) -> ColumnElement[str]:
        if self.sqlite:
            return func.substr(col, 1, 16, type_=String)
        return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD HH24:MI", type_=String)

    def day(self, col: ColumnElement[Any]) -> ColumnElement[str]:
        if self.sqlite:
            return func.substr(col, 1, 10, type_=String)
        return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD", type_=String)

    def money_sum(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """An exact sum of a money column; read it back with `money`.

        SQLite has no decimal type and would sum the amounts as floats: it sums whole 1e-8 units as
        integers instead (exact for amounts below about 1e7 each, which each order is)."""
        if self.sqlite:
            return func.sum(cast(func.round(col * _MONEY_UNITS), Integer))
        return func.sum(col)

    def money(self, value: Any) -> Decimal:
        if value is None:
            return Decimal(0).quantize(Decimal(1).scaleb(-MONEY_SCALE))
        if self.sqlite:
            return Decimal(int(value)).scaleb(-MONEY_SCALE)
        return Decimal(value).quantize(Decimal(1).scaleb(-MONEY_SCALE))


def _in_shops(col: KeyedColumnElement[Any], shops: ShopScope) -> ColumnElement[bool]:
    if shops is None:
        return literal(True)
    return col.in_(shops)  # an empty tuple matches nothing


def _before(col: KeyedColumnElement[Any], until: datetime | None) -> ColumnElement[bool]:
    """`col < until`; None leaves it open, so a live count still takes in rows stamped by a server
    whose clock runs a little ahead of the dashboard's."""
    return literal(True) if until is None else col < until


# --- the reads -------------------------------------------------------------------------------


def _account() -> Select[Any]:
    """The columns an Account is made of."""
    return select(
        users.c.id, users.c.email, users.c.username, users.c.role, users.c.is_active, users.c.password_hash
    )


class StoreReads:
    """Queries for the dashboard on one (read-only) engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._d = _Dialect(engine.dialect.name)

    @property
    def key(self) -> str:
        """Names the database in cache keys (without any password)."""
        return self.engine.url.render_as_string(hide_password=True)

    def _all(self, stmt: Executable) -> Sequence[Any]:
        with self.engine.connect() as conn:
            return conn.execute(stmt).all()

    def _scalar(self, stmt: Executable) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar_one()

    # --- accounts --------------------------------------------------------------------------

    def account_by_email(self, email: str) -> Account | None:
        # The API stores emails lower-cased (api/auth/service.py).
        stmt = _account().where(users.c.email == email.strip().lower())
        rows = self._all(stmt)
        return Account(*rows[0]) if rows else None

    def account_by_id(self, user_id: int) -> Account | None:
        stmt = _account().where(users.c.id == user_id)
        rows = self._all(stmt)
        return Account(*rows[0]) if rows else None

    def owned_shops(self, user_id: int) -> tuple[ShopRef, ...]:
        stmt = (
            select(shops_t.c.id, shops_t.c.name).where(shops_t.c.owner_id == user_id).order_by(shops_t.c.id)
        )
        return tuple(ShopRef(int(r.id), str(r.name)) for r in self._all(stmt))

    # --- filter choices --------------------------------------------------------------------
    # The names in the filters come from the store: the warehouse has ids, and a shop opened since the
    # last pipeline run should be choosable already (its numbers come with the next run).

    def shop_choices(self, shops: ShopScope) -> list[ShopRef]:
        stmt = select(shops_t.c.id, shops_t.c.name).order_by(shops_t.c.name, shops_t.c.id)
        if shops is not None:
            stmt = stmt.where(shops_t.c.id.in_(shops) if shops else literal(False))
        return [ShopRef(int(r.id), str(r.name)) for r in self._all(stmt)]

    def category_choices(self) -> list[ShopRef]:
        stmt = select(categories.c.id, categories.c.name).order_by(categories.c.name, categories.c.id)
        return [ShopRef(int(r.id), str(r.name)) for r in self._all(stmt)]

    def product_choices(self, shop_id: int, category_id: int | None = None) -> list[ShopRef]:
        stmt = (
            select(products.c.id, products.c.name)
            .where(products.c.shop_id == shop_id)
            .order_by(products.c.name, products.c.id)
        )
        if category_id is not None:
            stmt = stmt.where(products.c.category_id == category_id)
        return [ShopRef(int(r.id), str(r.name)) for r in self._all(stmt)]

    # --- real time -------------------------------------------------------------------------

    def latest_events(self, *, limit: int, shops: ShopScope) -> list[FeedEvent]:
        """The newest events of the outbox (by insertion order), with their actor's username."""
        stmt = (
            select(
                events.c.id,
                events.c.occurred_at,
                events.c.event_type,
                events.c.actor_user_id,
                users.c.username,
                events.c.entity_type,
                events.c.entity_id,
                events.c.shop_id,
            )
            .outerjoin(users, users.c.id == events.c.actor_user_id)
            .where(_in_shops(events.c.shop_id, shops))
            .order_by(events.c.id.desc())
            .limit(limit)
        )
        return [FeedEvent(*row) for row in self._all(stmt)]

    def online_users(self, *, now: datetime, window: timedelta) -> int:
        """Distinct users with an online session active within the window."""
        stmt = select(func.count(distinct(user_sessions.c.user_id))).where(
            user_sessions.c.is_online.is_(True),
            user_sessions.c.last_activity >= now - window,
        )
        return int(self._scalar(stmt))

    def active_actors(
        self,
        *,
        since: datetime,
        until: datetime | None,
        shops: ShopScope,
        exclude_user_id: int | None = None,
    ) -> int:
        """Distinct users who caused an event in [since, until) (of the given shops)."""
        conds = [
            events.c.occurred_at >= since,
            _before(events.c.occurred_at, until),
            events.c.actor_user_id.is_not(None),
            _in_shops(events.c.shop_id, shops),
        ]
        if exclude_user_id is not None:
            conds.append(events.c.actor_user_id != exclude_user_id)
        stmt = select(func.count(distinct(events.c.actor_user_id))).where(*conds)
        return int(self._scalar(stmt))

    def count_orders(self, *, since: datetime, until: datetime | None, shops: ShopScope) -> int:
        stmt = select(func.count()).where(
            orders.c.created_at >= since,
            _before(orders.c.created_at, until),
            _in_shops(orders.c.shop_id, shops),
        )
        return int(self._scalar(stmt))

    def count_messages(self, *, since: datetime, until: datetime | None, shops: ShopScope) -> int:
        stmt = select(func.count()).select_from(messages)
        if shops is not None:
            stmt = stmt.join(conversations, conversations.c.id == messages.c.conversation_id).where(
                conversations.c.shop_id.in_(shops)
            )
        stmt = stmt.where(messages.c.created_at >= since, _before(messages.c.created_at, until))
        return int(self._scalar(stmt))

    def events_per_minute(
        self, *, since: datetime, until: datetime, shops: ShopScope
    ) -> list[tuple[datetime, int]]:
        """Events per UTC minute in [since, until), every minute listed (zeros included), oldest first."""
        bucket = self._d.minute(events.c.occurred_at).label("minute")
        stmt = (
            select(bucket, func.count())
            .where(
                events.c.occurred_at >= since,
                events.c.occurred_at < until,
                _in_shops(events.c.shop_id, shops),
            )
            .group_by(bucket)
        )
        counts = {
            datetime.strptime(str(minute), _MINUTE_FORMAT).replace(tzinfo=UTC): int(n)
            for minute, n in self._all(stmt)
        }
        first = since.astimezone(UTC).replace(second=0, microsecond=0)
        out: list[tuple[datetime, int]] = []
        t = first
        while t < until:
            out.append((t, counts.get(t, 0)))
            t += timedelta(minutes=1)
        return out

    # --- overview --------------------------------------------------------------------------

    def period(
        self, *, start: datetime, end: datetime, shops: ShopScope, exclude_user_id: int | None = None
    ) -> PeriodNumbers:
        """The overview's numbers for orders, revenue, users and viewers in [start, end)."""
        in_period = and_(orders.c.created_at >= start, orders.c.created_at < end)
        order_count = self.count_orders(since=start, until=end, shops=shops)
        paid = orders.c.status.in_(REVENUE_STATUSES)
        rev_stmt = (
            select(orders.c.currency, func.count(), self._d.money_sum(orders.c.total_amount))
            .where(in_period, paid, _in_shops(orders.c.shop_id, shops))
            .group_by(orders.c.currency)
        )
        revenue: dict[str, Decimal] = {}
        paid_orders = 0
        for currency, n, total in self._all(rev_stmt):
            revenue[str(currency)] = self._d.money(total)
            paid_orders += int(n)
        if shops is None:
            new_users = int(
                self._scalar(
                    select(func.count()).where(users.c.created_at >= start, users.c.created_at < end)
                )
            )
        else:
            new_users = self.new_customers(start=start, end=end, shops=shops)
        return PeriodNumbers(
            start=start,
            end=end,
            orders=order_count,
            paid_orders=paid_orders,
            revenue=dict(sorted(revenue.items())),
            new_users=new_users,
            active_users=self.active_actors(
                since=start, until=end, shops=shops, exclude_user_id=exclude_user_id
            ),
            product_viewers=self.product_viewers(start=start, end=end, shops=shops),
        )

    def new_customers(self, *, start: datetime, end: datetime, shops: tuple[int, ...]) -> int:
        """Buyers whose first order at these shops was placed in [start, end)."""
        first = (
            select(orders.c.buyer_id, func.min(orders.c.created_at).label("first_at"))
            .where(orders.c.shop_id.in_(shops))
            .group_by(orders.c.buyer_id)
            .subquery()
        )
        stmt = select(func.count()).where(first.c.first_at >= start, first.c.first_at < end)
        return int(self._scalar(stmt))

    def product_viewers(self, *, start: datetime, end: datetime, shops: ShopScope) -> int:
        """Distinct viewers of products: a signed-in user by id, else a browser session, else an address."""
        viewer = func.coalesce(
            literal("u") + cast(product_views.c.user_id, String),
            literal("s") + product_views.c.session_id,
            literal("i") + product_views.c.ip_address,
        )
        stmt = select(func.count(distinct(viewer))).select_from(product_views)
        if shops is not None:
            stmt = stmt.join(products, products.c.id == product_views.c.product_id).where(
                products.c.shop_id.in_(shops)
            )
        stmt = stmt.where(product_views.c.created_at >= start, product_views.c.created_at < end)
        return int(self._scalar(stmt))


__all__ = [
    "Account",
    "FeedEvent",
    "PeriodNumbers",
    "ShopRef",
    "StoreReads",
]
