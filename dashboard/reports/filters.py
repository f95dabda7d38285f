"""What a report is about: a date range (UTC days, both included), optionally a shop, a category and a
product, and whose numbers the reader may see (`scope`).

The same filters come from the dashboard's URL (`?start=&end=&shop=&category=&product=`), from
`GET /api/export/{type}` (`startDate`, `endDate`, `shopId`, `categoryId`, `productId`, as seed 000's
camelCase) and from a scheduled report's definition, so `from_params` reads both spellings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

DEFAULT_DAYS = 30
MAX_DAYS = 3660  # ten years: longer ranges are a typo, and would build huge date spines

# A shop owner's scope: the shops they own. None: the whole platform (analysts, admins).
Scope = tuple[int, ...] | None

_NAMES = {
    "start": ("start", "startDate"),
    "end": ("end", "endDate"),
    "shop": ("shop", "shopId"),
    "category": ("category", "categoryId"),
    "product": ("product", "productId"),
}


class InvalidFilter(ValueError):
    """A filter value that cannot be read; `field` is the parameter's name as given."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Filters:
    start: date
    end: date
    shop_id: int | None = None
    category_id: int | None = None
    product_id: int | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The same number of days just before: what period-over-period changes compare with."""
        length = timedelta(days=self.days)
        return replace(self, start=self.start - length, end=self.end - length)

    def bounds(self) -> tuple[datetime, datetime]:
        """[start 00:00, the day after end 00:00) in UTC."""
        return (
            datetime.combine(self.start, datetime.min.time(), UTC),
            datetime.combine(self.end + timedelta(days=1), datetime.min.time(), UTC),
        )

    def to_params(self) -> dict[str, str]:
        """The dashboard URL's query parameters for these filters."""
        params = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        for key, value in (
            ("shop", self.shop_id),
            ("category", self.category_id),
            ("product", self.product_id),
        ):
            if value is not None:
                params[key] = str(value)
        return params

    def describe(self) -> str:
        text = f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d} (UTC)"
        for label, value in (
            ("shop", self.shop_id),
            ("category", self.category_id),
            ("product", self.product_id),
        ):
            if value is not None:
                text += f", {label} {value}"
        return text


def default_filters(today: date, days: int = DEFAULT_DAYS) -> Filters:
    return Filters(start=today - timedelta(days=days - 1), end=today)


def _get(params: Mapping[str, str], key: str) -> tuple[str, str] | None:
    for name in _NAMES[key]:
        value = params.get(name)
        if value not in (None, ""):
            return name, str(value)
    return None


def _day(params: Mapping[str, str], key: str) -> date | None:
    found = _get(params, key)
    if found is None:
        return None
    name, value = found
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidFilter(name, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _id(params: Mapping[str, str], key: str) -> int | None:
    found = _get(params, key)
    if found is None:
        return None
    name, value = found
    if not value.isdigit() or int(value) < 1:
        raise InvalidFilter(name, f"{value!r} is not an id (a positive whole number)")
    return int(value)


def from_params(params: Mapping[str, str], today: date, *, strict: bool = True) -> Filters:
    """The filters `params` ask for; the last DEFAULT_DAYS days up to `today` where they name no dates.

    strict: a bad value raises InvalidFilter (the API answers 422); otherwise it is ignored (a shared
    dashboard URL that was edited by hand shows the default rather than an error)."""
    try:
        start, end = _day(params, "start"), _day(params, "end")
        shop, category, product = _id(params, "shop"), _id(params, "category"), _id(params, "product")
    except InvalidFilter:
        if strict:
            raise
        return default_filters(today)
    if start is None and end is None:
        base = default_filters(today)
        start, end = base.start, base.end
    elif start is None:
        assert end is not None
        start = end - timedelta(days=DEFAULT_DAYS - 1)
    elif end is None:
        end = max(start, today)
    if start > end:
        if strict:
            raise InvalidFilter(_NAMES["start"][1], "the start date is after the end date")
        start, end = end, start
    if (end - start).days + 1 > MAX_DAYS:
        if strict:
            raise InvalidFilter(_NAMES["end"][1], f"a range may cover at most {MAX_DAYS} days")
        start = end - timedelta(days=MAX_DAYS - 1)
    return Filters(start=start, end=end, shop_id=shop, category_id=category, product_id=product)


class OutOfScope(PermissionError):
    """The filters name a shop the reader may not see."""


def scoped(filters: Filters, scope: Scope) -> Filters:
    """The filters as a reader of `scope` may use them: a shop owner with one shop gets it selected; a
    shop outside their scope is refused."""
    if scope is None:
        return filters
    if filters.shop_id is not None and filters.shop_id not in scope:
        raise OutOfScope(f"shop {filters.shop_id} is not one of yours")
    if filters.shop_id is None and len(scope) == 1:
        return replace(filters, shop_id=scope[0])
    return filters
