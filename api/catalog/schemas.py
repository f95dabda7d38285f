from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from api.core.query import QueryModel
from api.core.schemas import Currency, MoneyIn, Page, PageSize, RequestModel, ResponseModel

ProductName = Annotated[str, Field(min_length=2, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
Stock = Annotated[int, Field(ge=0, le=1_000_000_000)]
CategoryId = Annotated[int, Field(ge=1)]


class CategoryCreate(RequestModel):
    name: Annotated[str, Field(min_length=2, max_length=80)]
    parent_id: CategoryId | None = None


class CategoryOut(ResponseModel):
    id: int
    name: str
    slug: str
    parent_id: int | None
    created_at: datetime


class ProductCreate(RequestModel):
    name: ProductName
    description: Description = ""
    price: MoneyIn
    currency: Currency
    stock: Stock
    category_id: CategoryId | None = None


class ProductUpdate(RequestModel):
    name: ProductName | None = None
    description: Description | None = None
    price: MoneyIn | None = None
    currency: Currency | None = None
    stock: Stock | None = None
    category_id: CategoryId | None = None  # null clears the category
    is_active: bool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> ProductUpdate:
        for name in self.model_fields_set - {"category_id"}:
            if getattr(self, name) is None:
                raise ValueError(f"{to_camel(name)} cannot be null")
        return self


class ShopRef(ResponseModel):
    id: int
    name: str


class CategoryRef(ResponseModel):
    id: int
    name: str
    slug: str


class ProductOut(ResponseModel):
    id: int
    shop_id: int
    shop: ShopRef
    category_id: int | None
    category: CategoryRef | None
    name: str
    description: str
    price: Decimal
    currency: str
    stock: int
    views: int
    sales_count: int
    rating: float
    rating_count: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class PriceHistoryOut(ResponseModel):
    id: int
    old_price: Decimal
    new_price: Decimal
    currency: str
    changed_at: datetime


class ListingSort(StrEnum):
    newest = "newest"
    price_asc = "price_asc"
    price_desc = "price_desc"
    rating = "rating"
    popular = "popular"


class PriceRangeQuery(QueryModel):
    min_price: MoneyIn | None = None
    max_price: MoneyIn | None = None
    page: Page = 1
    page_size: PageSize = 20

    @model_validator(mode="after")
    def _price_range(self) -> PriceRangeQuery:
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("minPrice must not exceed maxPrice")
        return self


class ListingQuery(PriceRangeQuery):
    shop_id: Annotated[int, Field(ge=1)] | None = None
    category_id: CategoryId | None = None
    in_stock: bool | None = None
    sort: ListingSort = ListingSort.newest


class PageQuery(QueryModel):
    page: Page = 1
    page_size: PageSize = 20


class ProductCard(ResponseModel):
    """A listing or search result (documentation of the plain dicts the listing builds)."""

    id: int
    shop_id: int
    shop_name: str
    category_id: int | None
    name: str
    price: Decimal
    currency: str
    stock: int
    views: int
    sales_count: int
    rating: float
    rating_count: int
    created_at: datetime
