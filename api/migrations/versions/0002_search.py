"""search: full-text index over products, the popularity index, haversine_km on PostgreSQL

SQLite: an FTS5 external-content table `products_fts` (name, description) over `products`, kept in
sync by triggers. It indexes the *active* products only, so a text search can count its matches on
the FTS index alone. The `haversine_km` SQL function is registered by the application on every
connection (api/db/engine.py).

PostgreSQL: a `search_vector` tsvector column maintained by a trigger (only when name or description
change, so view-counter updates do not re-parse text), a partial GIN index on it over the active
products, and an inlinable SQL `haversine_km` function.

Both: the expression indexes behind the "popular" sort (autogenerate cannot compare expression indexes,
so it lives here rather than in the models).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POPULARITY_INDEXES = [
    "CREATE INDEX ix_products_active_popularity_id ON products (is_active, (views + sales_count), id)",
    "CREATE INDEX ix_products_shop_active_popularity_id "
    "ON products (shop_id, is_active, (views + sales_count), id)",
    "CREATE INDEX ix_products_category_active_popularity_id "
    "ON products (category_id, is_active, (views + sales_count), id)",
]
DROP_POPULARITY_INDEXES = [
    "DROP INDEX IF EXISTS ix_products_category_active_popularity_id",
    "DROP INDEX IF EXISTS ix_products_shop_active_popularity_id",
    "DROP INDEX IF EXISTS ix_products_active_popularity_id",
]

SQLITE_UP = [
    # Porter stemming over unicode61 (diacritics folded); weights are given at query time (bm25).
    "CREATE VIRTUAL TABLE products_fts USING fts5(name, description, content='products', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    # External content: the FTS index holds active products only; the 'delete' command needs the
    # values that were indexed, which the triggers have in old.*.
    """CREATE TRIGGER products_fts_ai AFTER INSERT ON products WHEN new.is_active BEGIN
        INSERT INTO products_fts(rowid, name, description) VALUES (new.id, new.name, new.description);
    END""",
    """CREATE TRIGGER products_fts_ad AFTER DELETE ON products WHEN old.is_active BEGIN
        INSERT INTO products_fts(products_fts, rowid, name, description)
        VALUES ('delete', old.id, old.name, old.description);
    END""",
    # One trigger, so the old row leaves the index before the new one enters (separate triggers fire
    # in an unspecified order, and a 'delete' after the insert would drop the new row's shared terms).
    """CREATE TRIGGER products_fts_au AFTER UPDATE OF name, description, is_active ON products BEGIN
        INSERT INTO products_fts(products_fts, rowid, name, description)
        SELECT 'delete', old.id, old.name, old.description WHERE old.is_active;
        INSERT INTO products_fts(rowid, name, description)
        SELECT new.id, new.name, new.description WHERE new.is_active;
    END""",
    "INSERT INTO products_fts(rowid, name, description) SELECT id, name, description FROM products "
    "WHERE is_active",
    *POPULARITY_INDEXES,
]

SQLITE_DOWN = [
    *DROP_POPULARITY_INDEXES,
    "DROP TRIGGER IF EXISTS products_fts_au",
    "DROP TRIGGER IF EXISTS products_fts_ad",
    "DROP TRIGGER IF EXISTS products_fts_ai",
    "DROP TABLE IF EXISTS products_fts",
]

PG_UP = [
    "ALTER TABLE products ADD COLUMN search_vector tsvector",
    """CREATE FUNCTION products_search_vector_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_vector :=
            setweight(to_tsvector('english'::regconfig, coalesce(NEW.name, '')), 'A') ||
            setweight(to_tsvector('english'::regconfig, coalesce(NEW.description, '')), 'B');
        RETURN NEW;
    END
    $$""",
    "CREATE TRIGGER products_search_vector_trg BEFORE INSERT OR UPDATE OF name, description ON products "
    "FOR EACH ROW EXECUTE FUNCTION products_search_vector_refresh()",
    "UPDATE products SET search_vector = "
    "setweight(to_tsvector('english'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')",
    "CREATE INDEX ix_products_search_vector ON products USING gin (search_vector) WHERE is_active",
    # Same formula as api.db.engine.haversine_km; a one-statement IMMUTABLE SQL function is inlined.
    """CREATE OR REPLACE FUNCTION haversine_km(lat1 double precision, lon1 double precision,
                                             lat2 double precision, lon2 double precision)
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT 2 * 6371.0088 * asin(least(1.0, sqrt(
            power(sin(radians(lat2 - lat1) / 2), 2)
            + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2))))
    $$""",
    *POPULARITY_INDEXES,
]

PG_DOWN = [
    *DROP_POPULARITY_INDEXES,
    "DROP FUNCTION IF EXISTS haversine_km(double precision, double precision, double precision, "
    "double precision)",
    "DROP INDEX IF EXISTS ix_products_search_vector",
    "DROP TRIGGER IF EXISTS products_search_vector_trg ON products",
    "DROP FUNCTION IF EXISTS products_search_vector_refresh()",
    "ALTER TABLE products DROP COLUMN IF EXISTS search_vector",
]


def _statements(up: bool) -> list[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        return SQLITE_UP if up else SQLITE_DOWN
    if dialect == "postgresql":
        return PG_UP if up else PG_DOWN
    raise NotImplementedError(f"search migration has no statements for {dialect}")


def upgrade() -> None:
    for statement in _statements(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _statements(up=False):
        op.execute(statement)
