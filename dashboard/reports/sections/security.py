"""Security: refused logins, blocked users and orders held as suspicious, from the store's events in the
warehouse (raw.events; payloads are JSON, see api/outbox/catalog.py), and the requests the API refused
(401, 403, 429) from its own counters (`api_metrics`: since the API started, not the date range).

For analysts and admins. Logins and blocks are not about a shop: a shop filter narrows the suspicious
and held orders only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from api.outbox.types import EventType
from dashboard.reports.builder import BuildContext, SectionSpec
from dashboard.reports.filters import Filters
from dashboard.reports.model import Cell, Chart, ChartKind, Column, Format, Metric, Report, Table, table
from dashboard.reports.sections import api_metrics
from warehouse import marts
from warehouse.marts import MartReader, money

MANY_FAILURES = 5  # failed logins in the period that make an account look targeted
TOP = 20
ORDER_LIMIT = 100
REFUSED = (401, 403, 429)
# The UTC day of an event (the readers' sessions are UTC on both targets).
_DAY = "CAST(occurred_at AT TIME ZONE 'UTC' AS DATE)"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _window(start: date, end: date) -> dict[str, Any]:
    """[start 00:00, the day after end 00:00) UTC, as :low and :high."""
    low, high = Filters(start, end).bounds()
    return {"low": low, "high": high}


def _json(key: str) -> str:
    """A payload key as text: the same operator on DuckDB's JSON and PostgreSQL's json."""
    return f"(CAST(payload AS JSON) ->> '{key}')"


# --- failed logins --------------------------------------------------------------------------------


def failed_login_count(reader: MartReader, start: date, end: date) -> int:
    ((n,),) = reader.fetch(
        """SELECT count(*) FROM raw.events
           WHERE event_type = :type AND occurred_at >= :low AND occurred_at < :high""",
        {"type": EventType.user_login_failed.value, **_window(start, end)},
    )
    return int(n)


def targeted_account_count(reader: MartReader, start: date, end: date) -> int:
    ((n,),) = reader.fetch(
        """SELECT count(*) FROM (
               SELECT entity_id FROM raw.events
               WHERE event_type = :type AND entity_id IS NOT NULL
                 AND occurred_at >= :low AND occurred_at < :high
               GROUP BY entity_id HAVING count(*) >= :many) t""",
        {"type": EventType.user_login_failed.value, "many": MANY_FAILURES, **_window(start, end)},
    )
    return int(n)


def failed_logins_table(ctx: BuildContext, through: date | None) -> Table:
    rows = ctx.reader.fetch(
        f"""SELECT {_DAY}, count(*), count(DISTINCT entity_id),
                   sum(CASE WHEN entity_id IS NULL THEN 1 ELSE 0 END)
            FROM raw.events
            WHERE event_type = :type AND occurred_at >= :low AND occurred_at < :high
            GROUP BY 1 ORDER BY 1""",  # noqa: S608 (a fixed expression)
        {"type": EventType.user_login_failed.value, **_window(ctx.filters.start, ctx.filters.end)},
    )
    by_day = {r[0]: (int(r[1]), int(r[2]), int(r[3] or 0)) for r in rows}
    # Zero-filled up to the last loaded day: later days are unknown, not quiet.
    last = ctx.filters.end if through is None else min(ctx.filters.end, through)
    if by_day:
        last = max(last, *by_day)
    days = marts.days_between(ctx.filters.start, last)
    return table(
        "failed_logins",
        "Failed logins per day",
        [
            Column("date", "Date", Format.date),
            Column("failed_logins", "Failed logins", Format.integer),
            Column("accounts", "Accounts tried", Format.integer),
            Column("unknown_email", "Unknown email", Format.integer),
        ],
        [[d, *by_day.get(d, (0, 0, 0))] for d in days],
    )


def targeted_accounts_table(ctx: BuildContext) -> Table:
    rows = ctx.reader.fetch(
        f"""SELECT e.entity_id, u.username, count(*), count(DISTINCT {_json("ip")}),
                   min(e.occurred_at), max(e.occurred_at)
            FROM raw.events e LEFT JOIN marts.dim_users u ON u.user_id = e.entity_id
            WHERE e.event_type = :type AND e.entity_id IS NOT NULL
              AND e.occurred_at >= :low AND e.occurred_at < :high
            GROUP BY e.entity_id, u.username
            ORDER BY count(*) DESC, e.entity_id
            LIMIT :limit""",  # noqa: S608 (a fixed expression)
        {
            "type": EventType.user_login_failed.value,
            "limit": TOP,
            **_window(ctx.filters.start, ctx.filters.end),
        },
    )
    return table(
        "targeted_accounts",
        "Most targeted accounts",
        [
            Column("user_id", "User id", Format.integer),
            Column("account", "Account"),
            Column("failed_logins", "Failed logins", Format.integer),
            Column("source_ips", "Source addresses", Format.integer),
            Column("first_at", "First (UTC)", Format.datetime),
            Column("last_at", "Last (UTC)", Format.datetime),
        ],
        [[int(r[0]), r[1] or f"user {r[0]}", int(r[2]), int(r[3]), _utc(r[4]), _utc(r[5])] for r in rows],
        f"Accounts by failed logins in the period (at most {TOP}); {MANY_FAILURES} or more look like "
        "password guessing.",
    )


def source_ips_table(ctx: BuildContext) -> Table:
    ip = _json("ip")
    rows = ctx.reader.fetch(
        f"""SELECT {ip}, count(*), count(DISTINCT entity_id), max(occurred_at)
            FROM raw.events
            WHERE event_type = :type AND {ip} IS NOT NULL AND occurred_at >= :low AND occurred_at < :high
            GROUP BY 1
            ORDER BY count(*) DESC, 1
            LIMIT :limit""",  # noqa: S608 (a fixed expression)
        {
            "type": EventType.user_login_failed.value,
            "limit": TOP,
            **_window(ctx.filters.start, ctx.filters.end),
        },
    )
    return table(
        "source_ips",
        "Source addresses of failed logins",
        [
            Column("ip", "Address"),
            Column("failed_logins", "Failed logins", Format.integer),
            Column("accounts", "Accounts tried", Format.integer),
            Column("last_at", "Last (UTC)", Format.datetime),
        ],
        [[str(r[0]), int(r[1]), int(r[2]), _utc(r[3])] for r in rows],
        f"At most {TOP}. The store records the address for known accounts only (not for unknown emails).",
    )


# --- blocks and suspicious orders -----------------------------------------------------------------


def blocked_users_table(ctx: BuildContext) -> Table:
    rows = ctx.reader.fetch(
        f"""SELECT e.entity_id, u.username,
                   sum(CASE WHEN e.event_type = :blocked THEN 1 ELSE 0 END),
                   count(DISTINCT CASE WHEN e.event_type = :blocked THEN {_json("blockerId")} END),
                   sum(CASE WHEN e.event_type = :unblocked THEN 1 ELSE 0 END),
                   max(CASE WHEN e.event_type = :blocked THEN e.occurred_at END)
            FROM raw.events e LEFT JOIN marts.dim_users u ON u.user_id = e.entity_id
            WHERE e.event_type IN (:blocked, :unblocked) AND e.entity_id IS NOT NULL
              AND e.occurred_at >= :low AND e.occurred_at < :high
            GROUP BY e.entity_id, u.username
            HAVING sum(CASE WHEN e.event_type = :blocked THEN 1 ELSE 0 END) > 0
            ORDER BY 3 DESC, e.entity_id""",  # noqa: S608 (a fixed expression)
        {
            "blocked": EventType.user_blocked.value,
            "unblocked": EventType.user_unblocked.value,
            **_window(ctx.filters.start, ctx.filters.end),
        },
    )
    return table(
        "blocked_users",
        "Blocked users",
        [
            Column("user_id", "User id", Format.integer),
            Column("username", "Username"),
            Column("blocks", "Blocks", Format.integer),
            Column("blockers", "Blocked by (users)", Format.integer),
            Column("unblocks", "Unblocks", Format.integer),
            Column("last_blocked_at", "Last blocked (UTC)", Format.datetime),
        ],
        [[int(r[0]), r[1], int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), _utc(r[5])] for r in rows],
        "Users blocked by someone they talked to in the period (a block stops their messages).",
    )


def _order_event_where(ctx: BuildContext) -> tuple[str, dict[str, Any]]:
    where = "order_id IS NOT NULL AND occurred_at >= :low AND occurred_at < :high"
    params: dict[str, Any] = _window(ctx.filters.start, ctx.filters.end)
    if ctx.filters.shop_id is not None:
        where += " AND shop_id = :shop_id"
        params["shop_id"] = ctx.filters.shop_id
    return where, params


def order_event_counts(ctx: BuildContext) -> dict[str, int]:
    where, params = _order_event_where(ctx)
    rows = ctx.reader.fetch(
        f"""SELECT event_type, count(DISTINCT order_id) FROM raw.events
            WHERE event_type IN (:suspicious, :held, :released) AND {where} GROUP BY event_type""",  # noqa: S608
        {
            "suspicious": EventType.security_suspicious_order.value,
            "held": EventType.order_held.value,
            "released": EventType.order_released.value,
            **params,
        },
    )
    return {str(r[0]): int(r[1]) for r in rows}


def held_orders_table(ctx: BuildContext) -> Table:
    where, params = _order_event_where(ctx)
    rows = ctx.reader.fetch(
        f"""WITH flagged AS (
                SELECT order_id, min(occurred_at) AS flagged_at,
                       max(CASE WHEN event_type = :held THEN 1 ELSE 0 END) AS held,
                       max(CAST({_json("score")} AS FLOAT8)) AS score
                FROM raw.events
                WHERE event_type IN (:suspicious, :held) AND {where}
                GROUP BY order_id
            ), released AS (
                SELECT order_id, max(occurred_at) AS released_at FROM raw.events
                WHERE event_type = :released AND order_id IS NOT NULL GROUP BY order_id
            )
            SELECT f.order_id, f.flagged_at, f.held, f.score, o.buyer_id, u.username, o.shop_id,
                   o.total_amount, o.currency, o.status, r.released_at
            FROM flagged f
            LEFT JOIN marts.fct_orders o ON o.order_id = f.order_id
            LEFT JOIN marts.dim_users u ON u.user_id = o.buyer_id
            LEFT JOIN released r ON r.order_id = f.order_id
            ORDER BY f.flagged_at DESC, f.order_id DESC
            LIMIT :limit""",  # noqa: S608 (fixed clauses)
        {
            "suspicious": EventType.security_suspicious_order.value,
            "held": EventType.order_held.value,
            "released": EventType.order_released.value,
            "limit": ORDER_LIMIT,
            **params,
        },
    )
    return table(
        "held_orders",
        "Suspicious and held orders",
        [
            Column("order_id", "Order", Format.integer),
            Column("flagged_at", "Flagged (UTC)", Format.datetime),
            Column("held", "Held"),
            Column("score", "Fraud score", Format.number),
            Column("buyer_id", "Buyer id", Format.integer),
            Column("buyer", "Buyer"),
            Column("shop_id", "Shop", Format.integer),
            Column("amount", "Amount", Format.money),
            Column("currency", "Currency"),
            Column("status", "Status now"),
            Column("released_at", "Released (UTC)", Format.datetime),
        ],
        [
            [
                int(r[0]),
                _utc(r[1]),
                bool(r[2]),
                None if r[3] is None else float(r[3]),
                None if r[4] is None else int(r[4]),
                r[5],
                None if r[6] is None else int(r[6]),
                None if r[7] is None else money(r[7]),
                r[8],
                r[9],
                _utc(r[10]),
            ]
            for r in rows
        ],
        f"Orders the API's fraud check flagged as they were placed (`security.suspicious_order`, "
        f"`order.held`), newest first (at most {ORDER_LIMIT}); released: staff let it be paid.",
    )


# --- refused requests -----------------------------------------------------------------------------


def refused_requests_table(scrape: api_metrics.Scrape) -> Table:
    rows: list[list[Cell]] = [
        [f"{s.method} {s.route}", s.method, s.route, s.status, s.requests]
        for s in sorted(scrape.statuses, key=lambda s: (-s.requests, s.route, s.method, s.status))
        if s.status in REFUSED and s.requests
    ]
    return table(
        "refused_requests",
        "Requests the API refused",
        [
            Column("endpoint", "Endpoint"),
            Column("method", "Method"),
            Column("route", "Route"),
            Column("status", "Status", Format.integer),
            Column("requests", "Requests", Format.integer),
        ],
        rows,
        "Answers 429 (rate limited), 401 (not signed in) and 403 (not allowed), per route, since the API "
        "started (its counters, not the date range)."
        if scrape.ok
        else scrape.unreachable_note(),
    )


# --- the report -----------------------------------------------------------------------------------


def build(ctx: BuildContext) -> Report:
    reader, f = ctx.reader, ctx.filters
    fresh = marts.freshness(reader, ctx.settings)
    before = f.previous()
    scrape = api_metrics.scrape(ctx.settings)
    logins = failed_logins_table(ctx, fresh.data_through)
    orders = order_event_counts(ctx)
    blocked = blocked_users_table(ctx)
    refused = refused_requests_table(scrape)
    metrics = [
        Metric(
            "Failed logins",
            failed_login_count(reader, f.start, f.end),
            previous=failed_login_count(reader, before.start, before.end),
        ),
        Metric(
            f"Accounts with {MANY_FAILURES}+ failures",
            targeted_account_count(reader, f.start, f.end),
            previous=targeted_account_count(reader, before.start, before.end),
        ),
        Metric("Users blocked", len(blocked.rows)),
        Metric("Suspicious orders", orders.get(EventType.security_suspicious_order.value, 0)),
        Metric("Held orders", orders.get(EventType.order_held.value, 0)),
        Metric(
            "Rate-limited requests (429)",
            scrape.count(429) if scrape.ok else None,
            help="Since the API started.",
        ),
        Metric(
            "Refused requests (401/403)",
            scrape.count(401, 403) if scrape.ok else None,
            help="Since the API started.",
        ),
    ]
    notes = [] if scrape.ok else [scrape.unreachable_note()]
    if f.shop_id is not None:
        notes.append(
            "The shop filter applies to suspicious and held orders; logins and blocks are platform-wide."
        )
    if f.category_id is not None or f.product_id is not None:
        notes.append("Security events are not about a category or product: those filters do not apply.")
    return Report(
        section=SECTION.slug,
        title=SECTION.title,
        subtitle=f.describe(),
        generated_at=ctx.now,
        freshness=ctx.freshness_text(),
        metrics=tuple(metrics),
        tables=(
            logins,
            targeted_accounts_table(ctx),
            source_ips_table(ctx),
            blocked,
            held_orders_table(ctx),
            refused,
        ),
        charts=(
            Chart(
                "failed_logins",
                "Failed logins per day",
                "failed_logins",
                "date",
                ("failed_logins",),
                ChartKind.bar,
                y_title="Failed logins",
            ),
            Chart(
                "targeted_accounts",
                "Most targeted accounts",
                "targeted_accounts",
                "account",
                ("failed_logins",),
                ChartKind.bar,
            ),
            Chart(
                "refused_requests",
                "Refused requests per endpoint",
                "refused_requests",
                "endpoint",
                ("requests",),
                ChartKind.stacked_bar,
                series="status",
            ),
        ),
        notes=tuple(notes),
    )


SECTION = SectionSpec(slug="security", title="Security", build=build, platform_only=True)
