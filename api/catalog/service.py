"""The catalogue: categories, products, price history and the product listing."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Numeric, Select, bindparam, cast, func, select, true
from sqlalchemy.orm import Session

from api.alerts.service import check_price_alerts
from api.catalog.models import Category, PriceHistory, Product
from api.catalog.schemas import (
    CategoryCreate,
    CategoryOut,
    CategoryRef,
    ListingQuery,
    ListingSort,
    PriceHistoryOut,
    ProductCreate,
    ProductOut,
    ProductUpdate,
    ShopRef,
)
from api.core.cache import ReadCache
from api.core.deps import Principal
from api.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from api.core.responses import dumps
from api.db.types import MONEY_SCALE
from api.outbox.service import Uow
from api.outbox.types import EventType
from api.shops.models import Shop
from api.shops.service import owned_shop

_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def money(value: Decimal) -> Decimal:
    """Prices are kept and shown with the store's 8 decimal places (MoneyIn allows no more)."""
    return value.quantize(_QUANTUM)


# --- categories -----------------------------------------------------------------------------------


def slugify(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return re.sub(r"[\W_]+", "-", folded).strip("-")[:80].strip("-")


def create_category(uow: Uow, body: CategoryCreate) -> Category:
    s = uow.session
    slug = slugify(body.name)
    if not slug:
        raise ValidationFailed(
            "A category name needs a letter or a digit",
            details=[{"field": "name", "message": "needs a letter or a digit"}],
        )
    if body.parent_id is not None and s.get(Category, body.parent_id) is None:
        raise ValidationFailed(
            f"Category {body.parent_id} does not exist",
            code="UNKNOWN_CATEGORY",
            details=[{"field": "parentId", "message": "unknown category"}],
        )
    clash = s.execute(
        select(Category.id).where((func.lower(Category.name) == body.name.lower()) | (Category.slug == slug))
    ).first()
    if clash is not None:
        raise Conflict(
            "A category with this name already exists",
            code="CATEGORY_EXISTS",
            details={"name": body.name, "slug": slug},
        )
    cat = Category(name=body.name, slug=slug, parent_id=body.parent_id, created_at=uow.now)
    s.add(cat)
    s.flush()
    uow.emit(
        EventType.category_created,
        "category",
        cat.id,
        {"name": cat.name, "slug": cat.slug, "parentId": cat.parent_id},
    )
    return cat


def list_categories(db: Session) -> list[CategoryOut]:
    rows = db.execute(select(Category).order_by(Category.name, Category.id)).scalars()
    return [CategoryOut.model_validate(c) for c in rows]


def _require_category(db: Session, category_id: int) -> None:
    if db.execute(select(Category.id).where(Category.id == category_id)).first() is None:
        raise ValidationFailed(
            f"Category {category_id} does not exist",
            code="UNKNOWN_CATEGORY",
            details=[{"field": "categoryId", "message": "unknown category"}],
        )


# --- products -------------------------------------------------------------------------------------


def create_product(uow: Uow, principal: Principal, shop_id: int, body: ProductCreate) -> ProductOut:
    s = uow.session
    shop = owned_shop(s, principal, shop_id)
    if body.category_id is not None:
        _require_category(s, body.category_id)
    product = Product(
        shop_id=shop.id,
        category_id=body.category_id,
        name=body.name,
        description=body.description,
        price=money(body.price),
        currency=body.currency,
        stock=body.stock,
        views=0,
        sales_count=0,
        rating=0.0,
        rating_count=0,
        is_active=True,
        created_at=uow.now,
        updated_at=uow.now,
    )
    s.add(product)
    s.flush()
    uow.emit(
        EventType.product_created,
        "product",
        product.id,
        {
            "name": product.name,
            "price": str(product.price),
            "currency": product.currency,
            "stock": product.stock,
            "categoryId": product.category_id,
        },
        shop_id=shop.id,
        product_id=product.id,
    )
    return product_detail(s, product.id)


_DETAIL_COLUMNS = (
    Product.id,
    Product.shop_id,
    Shop.name.label("shop_name"),
    Shop.owner_id,
    Product.category_id,
    Category.name.label("category_name"),
    Category.slug.label("category_slug"),
    Product.name,
    Product.description,
    Product.price,
    Product.currency,
    Product.stock,
    Product.views,
    Product.sales_count,
    Product.rating,
    Product.rating_count,
    Product.is_active,
    Product.created_at,
    Product.updated_at,
)


_DETAIL = (
    select(*_DETAIL_COLUMNS)
    .join(Shop, Shop.id == Product.shop_id)
    .outerjoin(Category, Category.id == Product.category_id)
    .where(Product.id == bindparam("product_id"))
)


def _detail_row(db: Session, product_id: int) -> Any:
    return db.connection().execute(_DETAIL, {"product_id": product_id}).first()


def _detail_out(r: Any) -> ProductOut:
    category = (
        CategoryRef(id=r.category_id, name=r.category_name, slug=r.category_slug)
        if r.category_id is not None
        else None
    )
    return ProductOut(
        id=r.id,
        shop_id=r.shop_id,
        shop=ShopRef(id=r.shop_id, name=r.shop_name),
        category_id=r.category_id,
        category=category,
        name=r.name,
        description=r.description,
        price=r.price,
        currency=r.currency,
        stock=r.stock,
        views=r.views,
        sales_count=r.sales_count,
        rating=r.rating,
        rating_count=r.rating_count,
        is_active=r.is_active,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


def product_detail(db: Session, product_id: int) -> ProductOut:
    row = _detail_row(db, product_id)
    if row is None:
        raise NotFound("Product", product_id)
    return _detail_out(row)


def _can_manage(principal: Principal | None, owner_id: int) -> bool:
    return principal is not None and (principal.user_id == owner_id or principal.is_admin)


def visible_product(db: Session, principal: Principal | None, product_id: int) -> ProductOut:
    """The product as the caller may see it: inactive products exist only for their owner (and admins)."""
    row = _detail_row(db, product_id)
    if row is None or (not row.is_active and not _can_manage(principal, row.owner_id)):
        raise NotFound("Product", product_id)
    return _detail_out(row)


def cached_product(cache: ReadCache, db: Session, principal: Principal | None, product_id: int) -> bytes:
    """visible_product's response data as JSON bytes, through the read cache. The entry carries the
    owner and the active flag, so an inactive product is still shown to its owner only."""
    slot = cache.product(product_id)
    if slot.body is not None:
        owner, _, active = slot.extra.partition(",")
        if active != "1" and not _can_manage(principal, int(owner)):
            raise NotFound("Product", product_id)
        return slot.body
    row = _detail_row(db, product_id)
    if row is None:
        raise NotFound("Product", product_id)
    body = dumps(_detail_out(row).model_dump(mode="json", by_alias=True))
    cache.fill(slot, body, f"{row.owner_id},{int(row.is_active)}")
    if not row.is_active and not _can_manage(principal, row.owner_id):
        raise NotFound("Product", product_id)
    return body


def update_product(uow: Uow, principal: Principal, product_id: int, body: ProductUpdate) -> ProductOut:
    s = uow.session
    product = s.execute(
        select(Product).where(Product.id == product_id).with_for_update()
    ).scalar_one_or_none()
    if product is None:
        raise NotFound("Product", product_id)
    owner_id = s.execute(select(Shop.owner_id).where(Shop.id == product.shop_id)).scalar_one()
    if not _can_manage(principal, owner_id):
        if not product.is_active:  # hidden from everyone but its owner: do not reveal it
            raise NotFound("Product", product_id)
        raise Forbidden("Only the shop's owner can change this product")
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ValidationFailed("Nothing to update", details=[])
    if changes.get("category_id") is not None:
        _require_category(s, changes["category_id"])
    if "price" in changes:
        changes["price"] = money(changes["price"])

    old_price, old_currency = product.price, product.currency
    before: dict[str, Any] = {}
    for key, value in changes.items():
        if getattr(product, key) != value:
            before[key] = getattr(product, key)
            setattr(product, key, value)
    if not before:
        return product_detail(s, product_id)
    product.updated_at = uow.now
    s.flush()

    price_moved = "price" in before or "currency" in before
    if price_moved:
        s.add(
            PriceHistory(
                product_id=product.id,
                old_price=old_price,
                new_price=product.price,
                currency=product.currency,
                changed_by=principal.user_id,
                changed_at=uow.now,
            )
        )
        uow.emit(
            EventType.price_changed,
            "product",
            product.id,
            {
                "oldPrice": str(old_price),
                "newPrice": str(product.price),
                "oldCurrency": old_currency,
                "currency": product.currency,
            },
            shop_id=product.shop_id,
            product_id=product.id,
        )
        if product.currency == old_currency:
            # A target price is in the product's currency: after a currency switch it means nothing.
            check_price_alerts(uow, product.id, product.price, product.currency, product.name)
    other = {k: v for k, v in before.items() if k not in ("price", "currency")}
    if other:
        uow.emit(
            EventType.product_updated,
            "product",
            product.id,
            {
                "changes": {
                    k: {"old": _jsonable(v), "new": _jsonable(getattr(product, k))} for k, v in other.items()
                }
            },
            shop_id=product.shop_id,
            product_id=product.id,
        )
    return product_detail(s, product_id)


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def price_history(
    db: Session, principal: Principal | None, product_id: int, *, page: int, page_size: int
) -> tuple[list[dict[str, Any]], int]:
    visible_product(db, principal, product_id)
    total = db.execute(
        select(func.count()).select_from(PriceHistory).where(PriceHistory.product_id == product_id)
    ).scalar_one()
    rows = db.execute(
        select(
            PriceHistory.id,
            PriceHistory.old_price,
            PriceHistory.new_price,
            PriceHistory.currency,
            PriceHistory.changed_at,
        )
        .where(PriceHistory.product_id == product_id)
        .order_by(PriceHistory.changed_at.desc(), PriceHistory.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [PriceHistoryOut.model_validate(r).model_dump(mode="json", by_alias=True) for r in rows], total


# --- listing --------------------------------------------------------------------------------------

# The columns of a product card (no description: the detail page has it).
CARD_COLUMNS = (
    Product.id,
    Product.shop_id,
    Product.category_id,
    Product.name,
    Product.price,
    Product.currency,
    Product.stock,
    Product.views,
    Product.sales_count,
    Product.rating,
    Product.rating_count,
    Product.created_at,
)

POPULARITY = Product.views + Product.sales_count


def sort_key(sort: str) -> str:
    """The column a sort reads: newest, price, rating or popular."""
    return "price" if sort in (ListingSort.price_asc, ListingSort.price_desc) else sort


def sort_order(sort: str) -> list[ColumnElement[Any]]:
    """ORDER BY of a listing sort. Each has an index on (is_active, key, id), and one per shop and per
    category on (shop_id | category_id, is_active, key, id), so a page is read in index order."""
    if sort == ListingSort.price_asc:
        return [Product.price.asc(), Product.id.asc()]
    if sort == ListingSort.price_desc:
        return [Product.price.desc(), Product.id.desc()]
    if sort == ListingSort.rating:
        return [Product.rating.desc(), Product.id.desc()]
    if sort == ListingSort.popular:
        return [POPULARITY.desc(), Product.id.desc()]
    return [Product.created_at.desc(), Product.id.desc()]


class FilterShape(NamedTuple):
    """Which filters a request sets (their values travel as bound parameters): with the sort, the shape
    picks one prepared statement, built once and reused (building SQL costs more than running it)."""

    shop: bool = False
    category: bool = False
    min_price: bool = False
    max_price: bool = False
    min_rating: bool = False
    in_stock: bool | None = None

    @property
    def ranges(self) -> frozenset[str]:
        out = set()
        if self.min_price or self.max_price:
            out.add("price")
        if self.min_rating:
            out.add("rating")
        return frozenset(out)

    def without_ranges(self) -> FilterShape:
        return self._replace(min_price=False, max_price=False, min_rating=False)


RANGE_KEYS = ("price", "rating")


@dataclass(frozen=True)
class ProductFilter:
    """Filters on products (active ones only) shared by the listing and the search."""

    shop_id: int | None = None
    category_id: int | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    min_rating: float | None = None
    in_stock: bool | None = None

    @property
    def shape(self) -> FilterShape:
        return FilterShape(
            self.shop_id is not None,
            self.category_id is not None,
            self.min_price is not None,
            self.max_price is not None,
            self.min_rating is not None,
            self.in_stock,
        )

    def params(self) -> dict[str, Any]:
        values = {
            "shop_id": self.shop_id,
            "category_id": self.category_id,
            "min_price": self.min_price,
            "max_price": self.max_price,
            "min_rating": self.min_rating,
        }
        return {k: v for k, v in values.items() if v is not None}

    @property
    def count_key(self) -> tuple[Any, ...]:
        return astuple(self)


def filter_terms(shape: FilterShape, indexable: Sequence[str] = RANGE_KEYS) -> list[ColumnElement[bool]]:
    """WHERE terms of a filter shape, on bound parameters named after ProductFilter's fields. Range
    terms not in `indexable` are written so that SQLite cannot drive a scan with them (CAST on both
    sides: the same values and numeric comparison, but no index)."""
    terms: list[ColumnElement[bool]] = [Product.is_active == true()]
    if shape.shop:
        terms.append(Product.shop_id == bindparam("shop_id"))
    if shape.category:
        terms.append(Product.category_id == bindparam("category_id"))
    if shape.in_stock is True:
        terms.append(Product.stock > 0)
    elif shape.in_stock is False:
        terms.append(Product.stock == 0)
    bounds: tuple[tuple[str, Any, str, bool, bool], ...] = (
        ("price", Product.price, "min_price", shape.min_price, True),
        ("price", Product.price, "max_price", shape.max_price, False),
        ("rating", Product.rating, "min_rating", shape.min_rating, True),
    )
    for key, col, name, present, is_min in bounds:
        if not present:
            continue
        target: Any = col
        value: Any = bindparam(name, type_=col.type)
        if key not in indexable:
            target, value = cast(col, Numeric()), cast(value, Numeric())
        terms.append(target >= value if is_min else target <= value)
    return terms


@lru_cache(maxsize=256)
def count_statement(shape: FilterShape) -> Select[Any]:
    return select(func.count()).select_from(Product).where(*filter_terms(shape))


def choose_indexable(db: Session, f: ProductFilter, sort: str, *, total: int, window: int) -> tuple[str, ...]:
    """The range filters a page query may use an index for. SQLite's planner has no statistics on value
    ranges and prefers a range filter's index (then sorts every match) over walking the sort's index;
    with the exact total known, walk the sort's index whenever that reads fewer rows: about
    window * base / total (base = rows without the range filters) against `total`."""
    shape, key = f.shape, sort_key(sort)
    if db.get_bind().dialect.name != "sqlite" or not (shape.ranges - {key}):
        return RANGE_KEYS
    eq = shape.without_ranges()
    base = count_rows(
        db,
        ("base", f.shop_id, f.category_id, f.in_stock),
        count_statement(eq),
        ProductFilter(shop_id=f.shop_id, category_id=f.category_id).params(),
    )
    walk = window * base / max(total, 1)
    return RANGE_KEYS if walk > 2 * total else (key,)


def card(r: Any) -> dict[str, Any]:
    """A product card from a row of CARD_COLUMNS and shop_name."""
    return {
        "id": r.id,
        "shopId": r.shop_id,
        "shopName": r.shop_name,
        "categoryId": r.category_id,
        "name": r.name,
        "price": r.price,
        "currency": r.currency,
        "stock": r.stock,
        "views": r.views,
        "salesCount": r.sales_count,
        "rating": r.rating,
        "ratingCount": r.rating_count,
        "createdAt": r.created_at,
    }


def count_rows(
    db: Session, key: tuple[Any, ...], query: Select[Any], params: dict[str, Any] | None = None
) -> int:
    """The size of a result set, through the read cache when the session has one.

    Counting a six-figure result set costs more than reading the page itself. A cached total is
    invalidated by every commit that could change it (see api/core/cache.py), so it is never stale."""
    cache: ReadCache | None = db.info.get("read_cache")
    slot = cache.total(key) if cache is not None else None
    if slot is not None and slot.body is not None:
        return int(slot.body)
    total = int(db.connection().execute(query, params or {}).scalar_one())
    if cache is not None and slot is not None:
        cache.fill(slot, str(total).encode())
    return total


PAGE: tuple[Any, Any] = (bindparam("offset"), bindparam("limit"))


@lru_cache(maxsize=1024)
def _listing_page(shape: FilterShape, sort: str, indexable: tuple[str, ...]) -> Any:
    return (
        select(*CARD_COLUMNS, Shop.name.label("shop_name"))
        .join(Shop, Shop.id == Product.shop_id)
        .where(*filter_terms(shape, indexable))
        .order_by(*sort_order(sort))
        .offset(PAGE[0])
        .limit(PAGE[1])
    )


def list_products(db: Session, q: ListingQuery) -> tuple[list[dict[str, Any]], int]:
    f = ProductFilter(
        shop_id=q.shop_id,
        category_id=q.category_id,
        min_price=q.min_price,
        max_price=q.max_price,
        in_stock=q.in_stock,
    )
    params = f.params()
    total = count_rows(db, ("listing", *f.count_key), count_statement(f.shape), params)
    offset = (q.page - 1) * q.page_size
    if total <= offset:
        return [], total
    indexable = choose_indexable(db, f, q.sort, total=total, window=offset + q.page_size)
    rows = (
        db.connection()
        .execute(
            _listing_page(f.shape, q.sort.value, indexable), params | {"offset": offset, "limit": q.page_size}
        )
        .all()
    )
    return [card(r) for r in rows], total


def listing_page(cache: ReadCache, db: Session, q: ListingQuery) -> tuple[bytes, int]:
    """A listing page as the JSON bytes of its items, and the total, through the read cache."""
    return cache.page_bytes("listing", q.model_dump().values(), lambda: list_products(db, q))
