"""Error responses: one RFC 9457 problem body (`application/problem+json`) for every error answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import asyncpg
import redis
from pydantic import BaseModel, Field, ValidationError
from quart import Quart, Response
from quart_schema import RequestSchemaValidationError, document_response
from werkzeug.exceptions import HTTPException

from broker.outage import refusal

PROBLEM_JSON = "application/problem+json"
T = TypeVar("T", bound=Callable[..., Any])
# Postgres unreachable, refusing connections, or the pool waited too long: the request can be tried again
DATABASE_DOWN = (
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


class Problem(BaseModel):
    """An error (RFC 9457): `detail` says what went wrong; a 422's `errors` names each bad field."""

    type: str = Field("about:blank", description="A URI naming the kind of problem; about:blank: see `status`.")
    title: str = Field(description="The HTTP status phrase, e.g. 'Unprocessable Content'.")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong with this request, for people.")
    errors: dict[str, str] | None = Field(
        None, description="A 422's bad fields: dotted path (`item_ids.0`, `query.q`, `header.unique-key`) -> reason."
    )


def problem(
    status: int, detail: str, *, fields: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A problem response with `status`: `detail` for people, `fields` (-> `errors`) for a 422's bad fields."""
    body: dict[str, Any] = {"type": "about:blank", "title": _title(status), "status": status, "detail": detail}
    if fields:
        body["errors"] = fields
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type=PROBLEM_JSON)


class InvalidInput(Exception):
    """Raised where a request's input is found bad outside its body model (answered 422 naming the fields)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(", ".join(f"{name}: {reason}" for name, reason in fields.items()))
        self.fields = fields


def document_errors(*statuses: int) -> Callable[[T], T]:
    """Document a handler's own error answers (problem bodies) in the OpenAPI document.

    The answers every handler of a kind shares (401/403 of a bearer operation, 422 of a body...)
    are documented by web.openapi; this names the others (a 409, an unknown source's 404...).
    """

    def decorate(handler: T) -> T:
        for status in statuses:
            document_response(Problem, status)(handler)
        return handler

    return decorate


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def field_errors(error: ValidationError, *, prefix: str = "") -> dict[str, str]:
    """`{"a.b": "message"}` for each failing field of a pydantic error (`prefix` e.g. "query.")."""
    out: dict[str, str] = {}
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "body"
        out[prefix + name] = item["msg"]
    return out


def install_error_handlers(app: Quart) -> None:
    """Problem bodies for validation errors (422) and for every HTTP error."""

    @app.errorhandler(RequestSchemaValidationError)
    async def invalid_body(error: RequestSchemaValidationError) -> Any:
        cause = error.validation_error
        if isinstance(cause, ValidationError):
            return problem(422, "invalid request", fields=field_errors(cause))
        return problem(422, f"invalid request: {cause}")

    @app.errorhandler(InvalidInput)
    async def invalid_input(error: InvalidInput) -> Any:
        return problem(422, "invalid request", fields=error.fields)

    async def database_down(error: Exception) -> Any:
        return problem(503, "the database is unreachable; nothing was done, try again", headers={"Retry-After": "5"})

    for down in DATABASE_DOWN:
        app.register_error_handler(down, database_down)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Any:
        response = problem(error.code or 500, error.description or error.name)
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):  # what the error carried for the client
            if name in (headers := dict(error.get_headers())):
                response.headers[name] = headers[name]
        return response

    @app.errorhandler(redis.ResponseError)
    async def redis_refused(error: redis.ResponseError) -> Any:
        # a full (maxmemory, noeviction) or read-only (replica) Redis refuses writes until it recovers
        why = refusal(error)
        if not why:
            raise error
        return problem(
            503,
            f"the job queue's Redis is {why} and refused the write; nothing was changed, try again later",
            headers={"Retry-After": "30"},
        )
