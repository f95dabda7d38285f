"""Query-string models validated in one pydantic call.

FastAPI's own handling of `Annotated[Model, Query()]` inspects every field on every request, which cost
more than the database query on the listing and search hot paths. `query_model(Model)` validates the
query string with the model directly and documents the same parameters in OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

M = TypeVar("M", bound=BaseModel)


class QueryModel(BaseModel):
    """Query-string parameters: camelCase, unknown names rejected, strings coerced (they are all text)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        str_strip_whitespace=True,
    )


def query_model(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    async def parse(request: Request) -> M:
        try:
            return model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
            raise RequestValidationError(errors) from exc

    parse.__name__ = f"query_{model.__name__}"
    return parse


@cache
def query_docs(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI `parameters` for a query model, for a route's `openapi_extra`."""
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    required = set(schema.get("required", []))
    params = [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": inline(prop),
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in schema.get("properties", {}).items()
    ]
    return {"parameters": params}
