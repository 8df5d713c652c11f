"""Error responses: one JSON shape, and 422s that name every bad field."""
from __future__ import annotations

from typing import Any

import redis
from pydantic import ValidationError
from quart import Quart, jsonify
from quart_schema import RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from broker.outage import refusal


def problem(status: int, error: str, *, fields: dict[str, str] | None = None,
            headers: dict[str, str] | None = None) -> Any:
    """A JSON error response `{error, fields?}` with `status`."""
    body: dict[str, Any] = {"error": error}
    if fields:
        body["fields"] = fields
    return jsonify(body), status, headers or {}


def field_errors(error: ValidationError) -> dict[str, str]:
    """`{"a.b": "message"}` for each failing field of a pydantic error."""
    out: dict[str, str] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "body"
        out[name] = item["msg"]
    return out


def install_error_handlers(app: Quart) -> None:
    """JSON for validation errors (422) and for every HTTP error."""

    @app.errorhandler(RequestSchemaValidationError)
    async def invalid_body(error: RequestSchemaValidationError) -> Any:
        cause = error.validation_error
        if isinstance(cause, ValidationError):
            return problem(422, "invalid request body", fields=field_errors(cause))
        return problem(422, f"invalid request body: {cause}")

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Any:
        return problem(error.code or 500, error.description or error.name)

    @app.errorhandler(redis.ResponseError)
    async def redis_refused(error: redis.ResponseError) -> Any:
        # a full (maxmemory, noeviction) or read-only (replica) Redis refuses writes until it recovers
        why = refusal(error)
        if not why:
            raise error
        return problem(503, f"the job queue's Redis is {why} and refused the write; nothing was changed, "
                            "try again later", headers={"Retry-After": "30"})
