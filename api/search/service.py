"""Product search (seed 001 §8): full text, category, price, rating, distance and delivery filters.

Full text is an FTS5 external-content table on SQLite (active products only, bm25 relevance) and a
trigger-maintained tsvector with a partial GIN index on PostgreSQL (ts_rank relevance); see migration
0002. Distance filters shops by a bounding box first (ix_shops_lat_lon), then by the exact great-circle
distance (the `haversine_km` SQL function on both databases)."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import structlog
from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Float,
    FromClause,
    Select,
    String,
    any_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from api.catalog.models import Product
from api.catalog.service import (
    CARD_COLUMNS,
    PAGE,
    RANGE_KEYS,
    FilterShape,
    ProductFilter,
    card,
    choose_indexable,
    count_rows,
    filter_terms,
    sort_order,
)
from api.core.cache import ReadCache
from api.db.engine import EARTH_RADIUS_KM, Store
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.search.schemas import SearchQuery, SearchSort
from api.shops.models import Shop

log = structlog.get_logger("api.search")

MAX_TERMS = 8
MAX_TERM_LENGTH = 64
_TERM = re.compile(r"[^\W_]+")  # letters and digits; everything else separates terms
# PostgreSQL's 'english' stop words (snowball): dropped from every query, so that both databases
# match the same products ("case for phone" needs no "for" in the text on SQLite either).
STOP_WORDS = frozenset(
    {
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "s",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "t",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    }
)
_FTS_WEIGHTS = "4.0, 1.0"  # bm25 weight of name, description
FTS = table("products_fts", column("rowid"))  # SQLite only (migration 0002)


def terms(q: str | None) -> list[str]:
    if not q:
        return []
    return [t[:MAX_TERM_LENGTH] for t in _TERM.findall(q.lower()) if t not in STOP_WORDS][:MAX_TERMS]


MIN_PREFIX = 3  # a shorter last term is matched whole ("tv"), not as a prefix of half the vocabulary


def fts5_query(words: list[str]) -> str:
    """All terms, each a quoted string (no FTS5 operator can come from the user); the last one a prefix."""
    return " ".join(f'"{w}"' for w in words) + ("*" if len(words[-1]) >= MIN_PREFIX else "")


def tsquery(words: list[str]) -> str:
    """The same for to_tsquery: quoted lexemes joined with &, the last one a prefix."""
    return " & ".join(f"'{w}'" for w in words) + (":*" if len(words[-1]) >= MIN_PREFIX else "")


@dataclass(frozen=True)
class Box:
    lat_min: float
    lat_max: float
    lon_ranges: tuple[tuple[float, float], ...]  # empty: every longitude


def bounding_box(lat: float, lon: float, radius_km: float) -> Box:
    """The lat/lon box that holds the circle (wider near the poles, split across the antimeridian)."""
    margin = 1e-6
    angular = radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angular) + margin
    lat_min, lat_max = lat - dlat, lat + dlat
    if lat_min <= -90 or lat_max >= 90:
        return Box(max(lat_min, -90.0), min(lat_max, 90.0), ())
    ratio = math.sin(angular) / math.cos(math.radians(lat))
    if angular >= math.pi / 2 or ratio >= 1:
        return Box(lat_min, lat_max, ())
    dlon = math.degrees(math.asin(ratio)) + margin
    lon_min, lon_max = lon - dlon, lon + dlon
    if lon_min < -180:
        return Box(lat_min, lat_max, ((lon_min + 360, 180.0), (-180.0, lon_max)))
    if lon_max > 180:
        return Box(lat_min, lat_max, ((lon_min, 180.0), (-180.0, lon_max - 360)))
    return Box(lat_min, lat_max, ((lon_min, lon_max),))


def _near_shops(lon_ranges: int, delivery: bool) -> CTE:
    """Shops within the radius, with their distance: a few hundred rows at most, computed once.
    Parameters: lat, lon, radius, lat_min, lat_max, lon_min_<i>, lon_max_<i> and delivery."""
    distance = func.haversine_km(
        bindparam("lat", type_=Float()), bindparam("lon", type_=Float()), Shop.latitude, Shop.longitude
    )
    conds: list[ColumnElement[bool]] = [Shop.latitude.between(bindparam("lat_min"), bindparam("lat_max"))]
    if lon_ranges:
        conds.append(
            or_(
                *(
                    Shop.longitude.between(bindparam(f"lon_min_{i}"), bindparam(f"lon_max_{i}"))
                    for i in range(lon_ranges)
                )
            )
        )
    if delivery:
        conds.append(Shop.delivery_available == bindparam("delivery"))
    inner = select(Shop.id, Shop.name, distance.label("distance_km")).where(*conds).subquery("box")
    return (
        select(inner.c.id, inner.c.name, inner.c.distance_km)
        .where(inner.c.distance_km <= bindparam("radius", type_=Float()))
        .cte("near")
        .prefix_with("MATERIALIZED")
    )


@lru_cache(maxsize=8)
def _near_ids_statement(lon_ranges: int, delivery: bool) -> Select[Any]:
    return select(_near_shops(lon_ranges, delivery).c.id)


def _geo_params(q: SearchQuery) -> tuple[dict[str, Any], int]:
    """The parameters of _near_shops, and how many longitude ranges its box has."""
    assert q.lat is not None and q.lon is not None and q.radius_km is not None
    box = bounding_box(q.lat, q.lon, q.radius_km)
    params: dict[str, Any] = {
        "lat": q.lat,
        "lon": q.lon,
        "radius": q.radius_km,
        "lat_min": box.lat_min,
        "lat_max": box.lat_max,
    }
    for i, (lo, hi) in enumerate(box.lon_ranges):
        params[f"lon_min_{i}"], params[f"lon_max_{i}"] = lo, hi
    return params, len(box.lon_ranges)


def _fts5_matches(*, ranked: bool) -> tuple[Select[Any], Select[Any]]:
    """SQLite: ids (and bm25 rank, smaller is better, name weighted over description) of the products
    matching the `fts` parameter, and their count. The FTS index holds the active products only."""
    match = literal_column("products_fts").match(bindparam("fts", type_=String()))
    cols: list[Any] = [FTS.c.rowid.label("id")]
    if ranked:
        cols.append(literal_column(f"bm25(products_fts, {_FTS_WEIGHTS})").label("rank"))
    return select(*cols).where(match), select(func.count()).select_from(FTS).where(match)


def _tsvector_match() -> tuple[ColumnElement[bool], ColumnElement[float]]:
    """PostgreSQL: the GIN-indexed match of the `ts` parameter and its rank (negated ts_rank: smaller
    is better, as with bm25)."""
    vector: ColumnElement[Any] = literal_column("products.search_vector")
    query = func.to_tsquery(literal_column("'english'::regconfig"), bindparam("ts", type_=String()))
    return vector.op("@@")(query), -func.ts_rank(vector, query)


class SearchShape(NamedTuple):
    """What a search's SQL depends on (its values travel as bound parameters)."""

    dialect: str
    words: bool
    sort: str
    filters: FilterShape
    geo: bool
    lon_ranges: int
    delivery: bool
    indexable: tuple[str, ...]

    @property
    def ranked(self) -> bool:
        return self.sort == SearchSort.relevance

    @property
    def text_only(self) -> bool:
        return self.filters == FilterShape() and not self.geo and not self.delivery


@dataclass(frozen=True)
class SearchPlan:
    page: Any  # Select with offset and limit parameters, unless paged
    count: Select[Any]
    count_in_page: bool  # the page carries the total (a window count) in a `total` column
    paged: bool  # SQLite text-only relevance: the page is cut in the FTS query itself
    distance: bool


@lru_cache(maxsize=2048)
def _plan(shape: SearchShape) -> SearchPlan:
    """The SQL of one search shape. With words, the text matches drive the query: read from the text
    index first (a materialized CTE), never tested row by row while walking a price or shop index
    (prices, shops and words are correlated: "miner" is expensive, so a cheapest-first walk of the price
    index would test most of the catalogue before finding one)."""
    sqlite = shape.dialect == "sqlite"
    ranked = shape.ranked
    product_terms = filter_terms(shape.filters, shape.indexable)  # on products' own columns
    near_in = shape.geo and shape.words
    if near_in:
        # Text matches are few: keep those of the shops found near, listed (so that a planner knows how
        # many), and compute each match's distance from its shop row.
        if sqlite:
            product_terms.append(Product.shop_id.in_(bindparam("near_ids", expanding=True)))
        else:
            product_terms.append(Product.shop_id == any_(bindparam("near_ids", type_=ARRAY(BigInteger()))))
    conds: list[ColumnElement[bool]] = []  # on joined shops
    source: FromClause = Product.__table__
    columns: list[Any] = list(CARD_COLUMNS)
    order: list[ColumnElement[Any]] = []
    adapt: Callable[[Any], Any] = lambda expr: expr  # noqa: E731
    count: Select[Any] | None = None
    paged = False
    shop_col: Any = Product.shop_id

    if shape.words and sqlite:
        matches, text_count = _fts5_matches(ranked=ranked)
        if shape.text_only:
            count = text_count
            if ranked:  # the best few straight from the index: products are read for one page only
                matches = (
                    matches.order_by(literal_column("rank"), literal_column("id").desc())
                    .offset(PAGE[0])
                    .limit(PAGE[1])
                )
                paged = True
        matched = matches.cte("text_match").prefix_with("MATERIALIZED")
        source = matched.join(source, Product.id == matched.c.id)
        if ranked:
            order = [matched.c.rank.asc(), Product.id.desc()]
    elif shape.words:
        match, rank = _tsvector_match()
        count = select(func.count()).select_from(Product).where(match, *product_terms)
        # Every product column the page needs is read in the (bitmap) scan of the matches.
        matched_pg = (
            select(*CARD_COLUMNS, *([rank.label("rank")] if ranked else []))
            .where(match, *product_terms)
            .cte("text_match")
            .prefix_with("MATERIALIZED")
        )
        source, product_terms, shop_col = matched_pg, [], matched_pg.c.shop_id
        adapt = ClauseAdapter(matched_pg).traverse
        columns = [matched_pg.c[c.key] for c in CARD_COLUMNS]
        if ranked:
            order = [matched_pg.c.rank.asc(), matched_pg.c.id.desc()]

    distance: ColumnElement[float] | None = None
    count_source: FromClause = source
    if near_in:
        source = source.join(Shop, Shop.id == shop_col)
        distance = func.haversine_km(
            bindparam("lat", type_=Float()), bindparam("lon", type_=Float()), Shop.latitude, Shop.longitude
        )
        shop_name: Any = Shop.name
    elif shape.geo:
        # Every product of the shops found near: read shop by shop, the distance computed per shop.
        near = _near_shops(shape.lon_ranges, shape.delivery)
        source = count_source = source.join(near, near.c.id == shop_col)
        shop_name, distance = near.c.name, near.c.distance_km
    else:  # the shop's name, and its delivery flag if asked for
        source = source.join(Shop, Shop.id == shop_col)
        if shape.delivery:
            conds.append(Shop.delivery_available == bindparam("delivery"))
            count_source = source
        shop_name = Shop.name

    if shape.sort == SearchSort.distance:
        assert distance is not None
        order = [distance.asc(), adapt(Product.id.asc())]
    elif not ranked:
        order = [adapt(o) for o in sort_order(shape.sort)]
    if count is None or conds:
        count = select(func.count()).select_from(count_source).where(*product_terms, *conds)

    # The page reads every text match anyway (to sort them): it counts them on the way (a window count)
    # instead of reading them twice. Text alone on SQLite is counted on the FTS index instead.
    count_in_page = shape.words and not (sqlite and shape.text_only)
    columns.append(shop_name.label("shop_name"))
    if distance is not None:
        columns.append(distance.label("distance_km"))
    if count_in_page:
        columns.append(func.count().over().label("total"))
    page = select(*columns).select_from(source).where(*product_terms, *conds).order_by(*order)
    if not paged:
        page = page.offset(PAGE[0]).limit(PAGE[1])
    return SearchPlan(
        page=page, count=count, count_in_page=count_in_page, paged=paged, distance=distance is not None
    )


def search(db: Session, q: SearchQuery) -> tuple[list[dict[str, Any]], int]:
    """One page of matching products and the total."""
    dialect = db.get_bind().dialect.name
    words = terms(q.q)
    if q.q and not words:
        return [], 0  # nothing searchable in the text (punctuation, stop words): nothing matches
    sort = q.sort or (SearchSort.relevance if words else SearchSort.newest)
    if sort is SearchSort.relevance and not words:
        sort = SearchSort.newest
    offset = (q.page - 1) * q.page_size
    f = ProductFilter(
        category_id=q.category, min_price=q.min_price, max_price=q.max_price, min_rating=q.min_rating
    )
    params: dict[str, Any] = f.params() | {"offset": offset, "limit": q.page_size}
    lon_ranges = 0
    if q.geo:
        geo, lon_ranges = _geo_params(q)
        params |= geo
    if q.delivery is not None:
        params["delivery"] = q.delivery
    if words:
        params["fts" if dialect == "sqlite" else "ts"] = (
            fts5_query(words) if dialect == "sqlite" else tsquery(words)
        )
    if q.geo and words:
        near_ids: list[int] = list(
            db.connection().execute(_near_ids_statement(lon_ranges, q.delivery is not None), params).scalars()
        )
        if not near_ids:
            return [], 0
        params["near_ids"] = near_ids

    shape = SearchShape(
        dialect, bool(words), sort.value, f.shape, q.geo, lon_ranges, q.delivery is not None, RANGE_KEYS
    )
    plan = _plan(shape)
    key = ("search", tuple(words), *f.count_key, q.lat, q.lon, q.radius_km, q.delivery)
    total = 0
    if not plan.count_in_page:
        total = count_rows(db, key, plan.count, params)
        if total <= offset:
            return [], total
        if not words and not q.geo and q.delivery is None:
            indexable = choose_indexable(db, f, sort.value, total=total, window=offset + q.page_size)
            plan = _plan(shape._replace(indexable=indexable))
    rows = db.connection().execute(plan.page, params).all()
    if plan.count_in_page:
        total = rows[0].total if rows else count_rows(db, key, plan.count, params)
    items = []
    for r in rows:
        item = card(r)
        if plan.distance:
            item["distanceKm"] = round(r.distance_km, 3)
        items.append(item)
    return items, total


def cached_search(cache: ReadCache, db: Session, q: SearchQuery) -> tuple[bytes, int]:
    """A search page as the JSON bytes of its items, and the total, through the read cache (the same
    entries as ReadCache.get/put with the key ("search", *q.model_dump().values()))."""
    return cache.page_bytes("search", q.model_dump().values(), lambda: search(db, q))


@dataclass(frozen=True)
class SearchRecord:
    at: datetime
    user_id: int | None
    request_id: str | None
    ip_address: str | None
    query: SearchQuery
    total: int


def record_search(uow: Uow, record: SearchRecord) -> None:
    """The search.performed event: the text, its terms, the filters, the total, the user if signed in."""
    q = record.query
    filters = q.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude={"q", "page", "page_size", "sort"}
    )
    uow.emit(
        EventType.search_performed,
        "search",
        None,
        {
            "query": q.q,
            "terms": terms(q.q),
            "filters": filters,
            "sort": q.sort.value if q.sort else None,
            "page": q.page,
            "pageSize": q.page_size,
            "total": record.total,
            "userId": record.user_id,
        },
    )


def record_searches_in_store(store: Store, records: list[SearchRecord]) -> None:
    """Writes search events in one small transaction, after their responses were sent. A failure loses
    those analytics events and is logged; the searchers already have their results."""
    if not records:
        return
    try:
        with store.write() as session:
            for record in records:
                uow = Uow(
                    session=session,
                    now=record.at,
                    actor_user_id=record.user_id,
                    request_id=record.request_id,
                    ip_address=record.ip_address,
                )
                record_search(uow, record)
            session.commit()
    except Exception:
        log.exception("search_events_failed", count=len(records), request_id=records[0].request_id)


def record_search_in_store(store: Store, record: SearchRecord) -> None:
    record_searches_in_store(store, [record])


class SearchEventBuffer:
    """Search events of the last moment, written together by a background loop.

    A search changes nothing but the analytics, and at a few hundred searches a second one write
    transaction each cost more than the search (measured: p99 over target at 200 req/s). A crash loses
    at most the last `flush_seconds` of search events, never anything else."""

    def __init__(self) -> None:
        self._pending: list[SearchRecord] = []
        self._lock = threading.Lock()

    def add(self, record: SearchRecord) -> None:
        with self._lock:
            self._pending.append(record)

    def take(self) -> list[SearchRecord]:
        with self._lock:
            pending, self._pending = self._pending, []
        return pending

    def flush(self, store: Store) -> int:
        records = self.take()
        record_searches_in_store(store, records)
        return len(records)
