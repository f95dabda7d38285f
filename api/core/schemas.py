"""Base classes and shared field types for request and response bodies (camelCase on the wire)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

MAX_PRICE = Decimal("9999999.99999999")  # 15 significant digits: exact on SQLite too (see db/types.py)

# Money accepts a JSON number or string ("12.50"); it is never stored or returned as a float.
MoneyIn = Annotated[Decimal, Strict(False), Field(ge=0, le=MAX_PRICE, max_digits=15, decimal_places=8)]
Currency = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,9}$")]
Page = Annotated[int, Field(ge=1, le=100_000)]
PageSize = Annotated[int, Field(ge=1, le=100)]


class RequestModel(BaseModel):
    """Strict input: unknown fields are rejected, types are not coerced, names are camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        strict=True,
        str_strip_whitespace=True,
    )


class ResponseModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, serialize_by_alias=True, from_attributes=True, validate_by_name=True
    )
