from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from api.catalog.schemas import CategoryId, PriceRangeQuery, ProductCard
from api.shops.schemas import Latitude, Longitude

EARTH_HALF_CIRCUMFERENCE_KM = 20_038
RadiusKm = Annotated[float, Field(gt=0, le=EARTH_HALF_CIRCUMFERENCE_KM, allow_inf_nan=False)]


class SearchSort(StrEnum):
    relevance = "relevance"
    price_asc = "price_asc"
    price_desc = "price_desc"
    newest = "newest"
    rating = "rating"
    popular = "popular"
    distance = "distance"


class SearchQuery(PriceRangeQuery):
    """GET /api/products/search: every filter is optional; lat, lon and radiusKm come together."""

    q: Annotated[str, Field(max_length=200)] | None = None
    category: CategoryId | None = None
    min_rating: Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)] | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    radius_km: RadiusKm | None = None
    delivery: bool | None = None
    sort: SearchSort | None = None

    @model_validator(mode="after")
    def _geo_together(self) -> SearchQuery:
        given = [self.lat is not None, self.lon is not None, self.radius_km is not None]
        if any(given) and not all(given):
            raise ValueError("lat, lon and radiusKm go together")
        if self.sort is SearchSort.distance and not all(given):
            raise ValueError("sort=distance needs lat, lon and radiusKm")
        return self

    @property
    def geo(self) -> bool:
        return self.lat is not None and self.lon is not None and self.radius_km is not None


class SearchResult(ProductCard):
    distance_km: float | None = None
