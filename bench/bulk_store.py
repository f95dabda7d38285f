"""BULK GENERATOR of a store for the pipeline benchmark (bench/pipeline.py), used only by bench/.

Writes N outbox events (default 10M) with the event types and payload shapes the API writes (see
docs/events.md: sign-ups, failed logins, shops, products, product views, searches, orders and their
moves, follows, messages), plus the entity rows they describe (users, shops, products, orders,
order_items, shop_followers, conversations, messages), straight into a migrated store:

- the rows are computed by an in-memory DuckDB in SQL (vectorised, deterministic: pseudo-random values
  are hashes of row numbers, so a size always yields the same store), in time order over the last 90
  days, events numbered by time like the outbox;
- SQLite: stdlib sqlite3 `executemany` in large batches, secondary indexes dropped and rebuilt once,
  values in the store's own storage formats (naive UTC text times, money as decimal text);
- PostgreSQL: DuckDB writes CSV, psycopg streams it with COPY; indexes rebuilt, sequences moved past
  the data, VACUUM ANALYZE.

The store is cached: `data/bench/pipeline-<N>.db`, or the PostgreSQL database
`store_bench_pipeline_<N>`, reused while its fingerprint (generator version and size) matches.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import psycopg
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from api.db.migrate import upgrade
from bench.figures import ROOT
from bench.stores import Backend, BenchStore

VERSION = 1  # bump when the generated data changes: cached stores are rebuilt
CACHE_DIR = ROOT / "data" / "bench"
DAYS = 90
BATCH = 100_000
# Fixed "now" for the data set, so a size always yields the same rows.
END = datetime(2026, 1, 1, tzinfo=UTC)
# The store's password hash of every generated user (argon2id of "bench password 1234"); nobody logs in.
PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=2,p=1$YmVuY2hzYWx0YmVuY2g$0Yp0lT0n5d2y9bW0a3ZyRk8tFxq6Y2kqjv3c7U1m6xA"
)


@dataclass(frozen=True)
class Mix:
    """How N events split by kind (the rest are product views)."""

    users: int
    shops: int
    products: int
    orders: int
    follows: int
    conversations: int
    messages: int
    searches: int
    failed_logins: int

    @classmethod
    def for_events(cls, n: int) -> Mix:
        users = max(n // 500, 20)
        shops = max(users // 40, 2)
        return cls(
            users=users,
            shops=shops,
            products=shops * 40,
            orders=max(n // 60, 1),
            follows=max(n // 200, 1),
            conversations=max(n // 500, 1),
            messages=max(n // 50, 1),
            searches=n * 15 // 100,
            failed_logins=max(n // 1000, 1),
        )


def _fingerprint(n: int) -> str:
    return f"bulk_store v{VERSION} events={n}"


def bench_store(n: int) -> BenchStore:
    return BenchStore(CACHE_DIR / f"pipeline-{n}.db", f"store_bench_pipeline_{n}")


# --- the data, in DuckDB -------------------------------------------------------------------------------


def _u(expr: str, salt: str) -> str:
    """A uniform pseudo-random number in [0, 1) from `expr` (deterministic)."""
    return f"(hash({expr}, '{salt}') % 1000000007) / 1000000007.0"


def _build(con: duckdb.DuckDBPyConnection, n: int) -> None:
    mix = Mix.for_events(n)
    start = END - timedelta(days=DAYS)
    span_us = DAYS * 86_400 * 1_000_000
    ts = f"TIMESTAMPTZ '{start.isoformat()}'"

    def at(expr: str) -> str:
        """A time in the data's window at fraction `expr` of it."""
        return f"({ts} + to_microseconds(CAST(({expr}) * {span_us} AS BIGINT)))"

    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"""CREATE TABLE users AS SELECT i AS id, 'user' || i || '@bench.example' AS email,
        'user' || i AS username, CASE WHEN i % 40 = 1 THEN 'seller' ELSE 'buyer' END AS role,
        {at(f"0.6 * (i - 1) / {mix.users}")} AS created_at
        FROM range(1, {mix.users} + 1) r(i)""")
    con.execute(f"""CREATE TABLE shops AS SELECT s AS id, (s - 1) * 40 + 1 AS owner_id,
        'Bench Shop ' || s AS name, {at(f"0.6 * ((s - 1) * 40) / {mix.users} + 0.001")} AS created_at,
        {_u("s", "lat")} * 100 - 50 AS latitude, {_u("s", "lon")} * 200 - 100 AS longitude
        FROM range(1, {mix.shops} + 1) r(s)""")
    con.execute(f"""CREATE TABLE products AS SELECT p AS id, (p - 1) % {mix.shops} + 1 AS shop_id,
        'Bench product ' || p AS name,
        CAST(round(1 + {_u("p", "price")} * 500, 2) AS DECIMAL(20, 8)) AS price,
        {at(f"0.61 + 0.05 * {_u('p', 'pt')}")} AS created_at FROM range(1, {mix.products} + 1) r(p)""")
    # Orders: placed over the last third of the window; 80% paid, of those 70% shipped, of those 85%
    # delivered; 8% of the unpaid ones cancelled.
    con.execute(f"""CREATE TABLE orders AS SELECT o AS id,
        1 + CAST({_u("o", "buyer")} * {mix.users} AS BIGINT) % {mix.users} AS buyer_id,
        1 + CAST({_u("o", "shop")} * {mix.shops} AS BIGINT) % {mix.shops} AS shop_id,
        1 + CAST({_u("o", "items")} * 3 AS INTEGER) % 3 AS item_count,
        {at(f"0.67 + 0.32 * (o - 1) / {mix.orders}")} AS created_at,
        {_u("o", "paid")} < 0.8 AS paid, {_u("o", "ship")} < 0.7 AS ship, {_u("o", "dlv")} < 0.85 AS dlv,
        {_u("o", "cancel")} < 0.4 AS cancel FROM range(1, {mix.orders} + 1) r(o)""")
    con.execute("""CREATE TABLE order_items AS SELECT row_number() OVER (ORDER BY o.id, k) AS id,
        o.id AS order_id, o.shop_id + (k * 7 + o.id) % 40 * (SELECT count(*) FROM shops) AS product_id,
        1 + (o.id + k) % 3 AS quantity, o.created_at
        FROM orders o, range(3) r(k) WHERE k < o.item_count""")
    con.execute("""CREATE OR REPLACE TABLE order_items AS SELECT i.*, p.price AS unit_price,
        CAST(p.price * i.quantity AS DECIMAL(20, 8)) AS line_total FROM order_items i
        JOIN products p ON p.id = i.product_id""")
    con.execute("""CREATE OR REPLACE TABLE orders AS SELECT o.*,
        CAST(t.total AS DECIMAL(20, 8)) AS total_amount,
        CASE WHEN o.paid THEN o.created_at + INTERVAL 20 MINUTE END AS paid_at,
        CASE WHEN o.paid AND o.ship THEN o.created_at + INTERVAL 1 DAY END AS shipped_at,
        CASE WHEN o.paid AND o.ship AND o.dlv THEN o.created_at + INTERVAL 4 DAY END AS delivered_at,
        CASE WHEN NOT o.paid AND o.cancel THEN o.created_at + INTERVAL 2 HOUR END AS cancelled_at,
        CASE WHEN o.paid AND o.ship AND o.dlv THEN 'delivered' WHEN o.paid AND o.ship THEN 'shipped'
             WHEN o.paid THEN 'paid' WHEN o.cancel THEN 'cancelled' ELSE 'pending' END AS status
        FROM orders o JOIN (SELECT order_id, sum(line_total) AS total FROM order_items GROUP BY 1) t
        ON t.order_id = o.id""")
    con.execute(f"""CREATE TABLE shop_followers AS SELECT f AS id,
        1 + (f * 7919) % {mix.users} AS user_id, 1 + (f * 104729) % {mix.shops} AS shop_id,
        {at(f"0.66 + 0.33 * (f - 1) / {mix.follows}")} AS created_at FROM range(1, {mix.follows} + 1) r(f)""")
    con.execute("""CREATE OR REPLACE TABLE shop_followers AS SELECT row_number() OVER (ORDER BY min(id))
        AS id, user_id, shop_id, min(created_at) AS created_at FROM shop_followers GROUP BY ALL""")
    con.execute(f"""CREATE TABLE conversations AS SELECT c AS id,
        1 + (c * 31) % {mix.users} AS buyer_id, 1 + (c * 17) % {mix.shops} AS shop_id,
        {at(f"0.66 + 0.3 * (c - 1) / {mix.conversations}")} AS created_at
        FROM range(1, {mix.conversations} + 1) r(c)""")
    con.execute("""CREATE OR REPLACE TABLE conversations AS SELECT c.*, s.owner_id AS seller_id
        FROM conversations c JOIN shops s ON s.id = c.shop_id""")
    con.execute(f"""CREATE TABLE messages AS SELECT m AS id, 1 + (m - 1) % {mix.conversations}
        AS conversation_id, m % 2 = 0 AS from_seller, 'message ' || m || ' about the order' AS body,
        {at(f"0.7 + 0.29 * (m - 1) / {mix.messages}")} AS created_at
        FROM range(1, {mix.messages} + 1) r(m)""")
    con.execute("""CREATE OR REPLACE TABLE messages AS SELECT m.id, m.conversation_id,
        CASE WHEN m.from_seller THEN c.seller_id ELSE c.buyer_id END AS sender_id,
        CASE WHEN m.from_seller THEN c.buyer_id ELSE c.seller_id END AS recipient_id,
        c.shop_id, m.body, m.created_at FROM messages m JOIN conversations c ON c.id = m.conversation_id""")
    _build_events(con, n, mix, at)


def _build_events(con: duckdb.DuckDBPyConnection, n: int, mix: Mix, at: object) -> None:
    assert callable(at)
    (entities,) = con.execute(
        """SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM shops)
            + (SELECT count(*) FROM products) + (SELECT count(*) FROM shop_followers)
            + (SELECT count(*) FROM messages)
            + (SELECT count(*) + count(paid_at) + count(shipped_at) + count(delivered_at)
                      + count(cancelled_at) FROM orders)"""
    ).fetchall()[0]
    views = n - int(entities) - mix.searches - mix.failed_logins
    if views < 0:
        raise ValueError(f"{n} events are too few for the mix")
    money = "CAST(CAST({} AS DECIMAL(20, 8)) AS VARCHAR)"
    parts = [
        """SELECT created_at AS t, 'user.registered' AS event_type, 'user' AS entity_type, id AS entity_id,
            id AS actor, NULL::BIGINT AS shop_id, NULL::BIGINT AS product_id, NULL::BIGINT AS order_id,
            json_object('role', role, 'username', username)::VARCHAR AS payload FROM users""",
        f"""SELECT {at(f"0.05 + 0.9 * {_u('i', 'lf')}")}, 'user.login_failed', 'user', u, u, NULL, NULL, NULL,
            json_object('reason', 'bad_password', 'failedLoginCount', 1 + i % 4,
                        'ip', '10.0.' || i % 250 || '.' || i % 200)::VARCHAR
            FROM (SELECT i, 1 + i % {mix.users} AS u FROM range({mix.failed_logins}) r(i))""",
        """SELECT created_at, 'shop.created', 'shop', id, owner_id, id, NULL, NULL,
            json_object('name', name, 'ownerId', owner_id, 'latitude', latitude, 'longitude', longitude,
                        'deliveryAvailable', id % 2 = 0, 'ownerPromoted', false)::VARCHAR FROM shops""",
        f"""SELECT p.created_at, 'product.created', 'product', p.id, s.owner_id, p.shop_id, p.id, NULL,
            json_object('name', p.name, 'price', {money.format("p.price")}, 'currency', 'USDT',
                        'stock', 10, 'categoryId', NULL)::VARCHAR
            FROM products p JOIN shops s ON s.id = p.shop_id""",
        """SELECT created_at, 'shop.followed', 'shop', shop_id, user_id, shop_id, NULL, NULL,
            json_object('userId', user_id, 'followerCount', 1 + id % 50)::VARCHAR FROM shop_followers""",
        f"""SELECT o.created_at, 'order.placed', 'order', o.id, o.buyer_id, o.shop_id, NULL, o.id,
            json_object('buyerId', o.buyer_id, 'shopId', o.shop_id, 'currency', 'USDT',
                'total', {money.format("o.total_amount")}, 'itemCount', o.item_count,
                'items', (SELECT list(json_object('productId', i.product_id, 'quantity', i.quantity,
                    'unitPrice', {money.format("i.unit_price")}, 'lineTotal', {money.format("i.line_total")}))
                    FROM order_items i WHERE i.order_id = o.id))::VARCHAR
            FROM orders o""",
    ]
    for column, event_type, before, after, by in (
        ("paid_at", "order.paid", "pending", "paid", "buyer"),
        ("shipped_at", "order.shipped", "paid", "shipped", "seller"),
        ("delivered_at", "order.delivered", "shipped", "delivered", "buyer"),
        ("cancelled_at", "order.cancelled", "pending", "cancelled", "buyer"),
    ):
        parts.append(
            f"""SELECT {column}, '{event_type}', 'order', id, buyer_id, shop_id, NULL, id,
                json_object('buyerId', buyer_id, 'shopId', shop_id, 'from', '{before}', 'to', '{after}',
                    'by', '{by}', 'total', {money.format("total_amount")}, 'currency', 'USDT',
                    'txHash', NULL, 'chain', NULL)::VARCHAR
                FROM orders WHERE {column} IS NOT NULL"""
        )
    parts += [
        """SELECT created_at, 'message.sent', 'message', id, sender_id, shop_id, NULL, NULL,
            json_object('conversationId', conversation_id, 'senderId', sender_id,
                        'recipientId', recipient_id, 'length', length(body), 'messageType', 'text')::VARCHAR
            FROM messages""",
        f"""SELECT {at(f"{_u('i', 'st')}")}, 'search.performed', 'search', NULL,
            CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % {mix.users} END, NULL, NULL, NULL,
            json_object('query', w, 'terms', [w], 'filters', json_object(), 'sort', NULL, 'page', 1,
                'pageSize', 20, 'total', i % 97,
                'userId', CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % {mix.users} END)::VARCHAR
            FROM (SELECT i, ['headphones', 'wallet', 'miner', 'laptop', 'sneakers', 'kettle'][1 + i % 6] AS w
                  FROM range({mix.searches}) r(i))""",
        # Views: popular products get more (a square skews the pick), a third anonymous.
        f"""SELECT {at(f"{_u('i', 'vt')}")}, 'product.viewed', 'product_view', i + 1,
            CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % {mix.users} END, 1 + (p - 1) % {mix.shops}, p, NULL,
            json_object('viewId', i + 1,
                'userId', CASE WHEN i % 3 = 0 THEN NULL ELSE 1 + i % {mix.users} END,
                'sessionId', md5(CAST(i % 50000 AS VARCHAR)),
                'duration', CASE WHEN i % 5 > 0 THEN i % 600 END,
                'referrer', NULL, 'views', 1 + i % 1000)::VARCHAR
            FROM (SELECT i, 1 + CAST(pow({_u("i", "vp")}, 2) * {mix.products} AS BIGINT) AS p
                  FROM range({views}) r(i))""",
    ]
    con.execute(
        "CREATE TABLE events AS SELECT row_number() OVER (ORDER BY t, event_type, entity_id) AS id, * "
        f"FROM ({' UNION ALL '.join(parts)}) ORDER BY id"
    )


# --- writing ---------------------------------------------------------------------------------------------

_TS = "strftime({c}, '%Y-%m-%d %H:%M:%S.%f')"  # how SQLAlchemy stores a UTC time on SQLite
# A version-4-shaped UUID string from the hash h (deterministic, as str(uuid.uuid4()) looks).
_UUID = (
    "substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' "
    "|| substr(h, 18, 3) || '-' || substr(h, 21, 12)"
)


def _selects(sqlite: bool) -> dict[str, str]:
    """Per store table: the SELECT over the DuckDB tables giving its columns in storage form."""

    def t(column: str) -> str:
        return _TS.format(c=column) if sqlite else column

    def b(expr: str) -> str:
        return f"CAST({expr} AS INTEGER)" if sqlite else expr

    return {
        "users": f"""SELECT id, email, username, '{PASSWORD_HASH}' AS password_hash, role,
            {b("true")} AS is_active, 0 AS failed_login_count, NULL AS last_login_at,
            {t("created_at")} AS created_at, {t("created_at")} AS updated_at FROM users""",
        "shops": f"""SELECT id, owner_id, name, 'Bulk generated shop' AS description, latitude, longitude,
            NULL AS address, {b("id % 2 = 0")} AS delivery_available, 0 AS follower_count,
            {b("true")} AS is_active, {t("created_at")} AS created_at, {t("created_at")} AS updated_at
            FROM shops""",
        "products": f"""SELECT id, shop_id, NULL AS category_id, name,
            'A bulk generated product' AS description,
            CAST(price AS VARCHAR) AS price, 'USDT' AS currency, 10 AS stock, 0 AS views,
            0 AS sales_count, 0.0::DOUBLE AS rating, 0 AS rating_count, {b("true")} AS is_active,
            {t("created_at")} AS created_at, {t("created_at")} AS updated_at FROM products""",
        "orders": f"""SELECT id, buyer_id, shop_id, status, CAST(total_amount AS VARCHAR) AS total_amount,
            'USDT' AS currency, NULL AS payment_tx_hash, NULL AS payment_chain, NULL AS shipping_address,
            NULL AS tracking_number, NULL AS cancel_reason, {t("created_at")} AS created_at,
            {t("coalesce(cancelled_at, delivered_at, shipped_at, paid_at, created_at)")} AS updated_at,
            {t("paid_at")} AS paid_at, {t("shipped_at")} AS shipped_at, {t("delivered_at")} AS delivered_at,
            {t("cancelled_at")} AS cancelled_at FROM orders""",
        "order_items": f"""SELECT id, order_id, product_id, quantity,
            CAST(unit_price AS VARCHAR) AS unit_price,
            CAST(line_total AS VARCHAR) AS line_total, {t("created_at")} AS created_at FROM order_items""",
        "shop_followers": f"""SELECT id, user_id, shop_id, {t("created_at")} AS created_at
            FROM shop_followers""",
        "conversations": f"""SELECT id, buyer_id, seller_id, shop_id, NULL AS product_id,
            NULL AS last_message,
            NULL AS last_message_at, 0 AS buyer_unread_count, 0 AS seller_unread_count,
            {b("false")} AS buyer_archived, {b("false")} AS seller_archived,
            {t("created_at")} AS created_at, {t("created_at")} AS updated_at FROM conversations""",
        "messages": f"""SELECT id, conversation_id, sender_id, body, 'text' AS message_type,
            NULL AS attachment_url,
            {b("false")} AS is_read, NULL AS read_at, {t("created_at")} AS created_at FROM messages""",
        "events": f"""SELECT id, {_UUID} AS event_id, event_type,
            1 AS schema_version, {t("t")} AS occurred_at, {t("t")} AS recorded_at, actor AS actor_user_id,
            entity_type, entity_id, shop_id, product_id, order_id,
            substr(h, 3, 16) || substr(h, 1, 16) AS request_id, payload
            FROM (SELECT *, md5(CAST(id AS VARCHAR) || 'event') AS h FROM events)""",
    }


def _chunks(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[list[tuple[object, ...]]]:
    cur = con.execute(sql)
    while rows := cur.fetchmany(BATCH):
        yield rows


def _write_sqlite(con: duckdb.DuckDBPyConnection, path: Path, progress: Progress) -> None:
    lite = sqlite3.connect(path, isolation_level=None)
    try:
        lite.execute("PRAGMA journal_mode=WAL")  # what the API uses; the mode sticks to the file
        lite.execute("PRAGMA synchronous=OFF")
        lite.execute("PRAGMA cache_size=-262144")
        for table, sql in _selects(sqlite=True).items():
            (total,) = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0]
            task = progress.add_task(table, total=total)
            indexes = lite.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                [table],
            ).fetchall()
            lite.execute("BEGIN")
            for name, _ in indexes:
                lite.execute(f'DROP INDEX "{name}"')
            columns = [d[0] for d in con.execute(f"SELECT * FROM ({sql}) LIMIT 0").description]
            insert = f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
            for rows in _chunks(con, sql):
                lite.executemany(insert, rows)
                progress.update(task, advance=len(rows))
            for _, create in indexes:
                lite.execute(create)
            lite.execute("COMMIT")
        lite.execute("ANALYZE")
        lite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        lite.close()


def _write_postgres(con: duckdb.DuckDBPyConnection, url: str, progress: Progress, scratch: Path) -> None:
    u = make_url(url)
    with psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        dbname=u.database,
    ) as pg:
        pg.execute("SET synchronous_commit = off")
        pg.execute("SET maintenance_work_mem = '512MB'")
        for table, sql in _selects(sqlite=False).items():
            (total,) = con.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0]
            task = progress.add_task(table, total=total)
            indexes = pg.execute(
                "SELECT i.relname, pg_get_indexdef(i.oid) "
                "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                "WHERE x.indrelid = %s::regclass "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
                (f'"{table}"',),
            ).fetchall()
            for name, _ in indexes:
                pg.execute(f'DROP INDEX "{name}"')
            csv = scratch / f"{table}.csv"
            con.execute(f"COPY ({sql}) TO '{csv}' (FORMAT csv, HEADER false)")
            columns = [d[0] for d in con.execute(f"SELECT * FROM ({sql}) LIMIT 0").description]
            done = 0
            with (
                pg.cursor() as cur,
                cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN (FORMAT csv)') as copy,
                csv.open("rb") as handle,
            ):
                while chunk := handle.read(8 << 20):
                    copy.write(chunk)
                    seen = chunk.count(b"\n")
                    done += seen
                    progress.update(task, completed=min(done, total))
            progress.update(task, completed=total)
            csv.unlink()
            for _, create in indexes:
                pg.execute(create)
            pg.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'(SELECT coalesce(max(id), 0) + 1 FROM "{table}"), false)'
            )
            pg.commit()
        pg.commit()
        pg.autocommit = True
        pg.execute("VACUUM (ANALYZE)")


def _cached(store: BenchStore, backend: Backend, n: int) -> bool:
    if backend is Backend.sqlite:
        mark = Path(f"{store.sqlite_path}.fingerprint")
        return store.sqlite_path.exists() and mark.exists() and mark.read_text() == _fingerprint(n)
    url = store.url(backend)
    u = make_url(url)
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(
            host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username, dbname="postgres"
        ) as pg,
    ):
        row = pg.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (u.database,),
        ).fetchone()
        return row is not None and row[0] == _fingerprint(n)
    return False


def _mark(store: BenchStore, backend: Backend, n: int) -> None:
    if backend is Backend.sqlite:
        Path(f"{store.sqlite_path}.fingerprint").write_text(_fingerprint(n))
        return
    u = make_url(store.url(backend))
    with psycopg.connect(
        host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username, dbname="postgres", autocommit=True
    ) as pg:
        pg.execute(f"COMMENT ON DATABASE \"{u.database}\" IS '{_fingerprint(n)}'")


def ensure_store(backend: Backend, n: int, console: Console | None = None) -> str:
    """The URL of a store (`backend`: sqlite or postgres) holding the `n`-event data set, generated
    unless a matching one is cached."""
    console = console or Console()
    store = bench_store(n)
    url = store.url(backend)
    if _cached(store, backend, n):
        console.print(f"  {backend}: reusing the cached {n:,}-event store")
        return url
    started = time.perf_counter()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    store.recreate(backend)
    upgrade(url)
    con = duckdb.connect()
    try:
        with console.status(f"{backend}: computing {n:,} events and their entities…"):
            _build(con, n)
        columns = [
            TextColumn("  {task.description:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=console) as progress:
            if backend is Backend.sqlite:
                _write_sqlite(con, store.sqlite_path, progress)
            else:
                with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
                    _write_postgres(con, url, progress, Path(scratch))
    finally:
        con.close()
    _mark(store, backend, n)
    console.print(f"  {backend}: {n:,}-event store generated in {time.perf_counter() - started:.1f} s")
    return url
