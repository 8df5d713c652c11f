"""JSON request bodies validated by pydantic straight from the request's bytes.

quart-schema's `validate_request` parses the body with `json.loads` and then validates the
Python objects; pydantic's `validate_json` does both in one pass. Validation is strict:
JSON types are taken as they are (`"yes"` is no boolean, `false` no integer), as the
OpenAPI document states them. The body is documented through
quart-schema's `document_request`. A body that is not JSON answers 400 naming where it
breaks; an invalid one, or one sent with another Content-Type, raises quart-schema's
`RequestSchemaValidationError` (422 naming each field, web.errors).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from pydantic import TypeAdapter, ValidationError
from quart import request
from quart_schema import RequestSchemaValidationError, document_request

from web.errors import problem

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def validate_body(model: type) -> Callable[[F], F]:
    """Pass the handler `data=`, the request's JSON body validated as `model`."""
    adapter: TypeAdapter[Any] = TypeAdapter(model)

    def decorate(handler: F) -> F:
        document_request(model)(handler)  # marks `handler`; functools.wraps carries the mark over

        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                if request.is_json:
                    data = adapter.validate_json(await request.get_data(), strict=True)
                else:  # get_json() gives None for another Content-Type, and None is no valid body
                    data = adapter.validate_python(None)
            except ValidationError as error:
                broken = next((item for item in error.errors() if item["type"] == "json_invalid"), None)
                if broken is not None:
                    return problem(400, f"the body is not valid JSON: {broken['ctx'].get('error', broken['msg'])}")
                raise RequestSchemaValidationError(error) from None
            return await handler(*args, data=data, **kwargs)

        return cast(F, wrapper)

    return decorate
