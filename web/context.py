"""What the web's modules know about the request being served, beyond Quart's request object."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

# the request's id (web.app.BackroomQuart sets it): carried by the messages it enqueues and by its logs
REQUEST_ID: ContextVar[str | None] = ContextVar("backroom_request_id", default=None)


def header(request: Any, name: bytes, default: Any = "") -> Any:
    """The first value of header `name` (lowercase bytes) as the client sent it, or `default`.

    Read from the ASGI scope, where header names are lowercase. `request.headers` is a
    werkzeug `Headers` built from the same list; its `get` compares names case-insensitively
    one by one and, for a header that is absent, raises and catches a KeyError: this is for
    the headers every request or enqueue looks for and most requests lack (`X-Request-ID`,
    `Unique-Key`).
    """
    for key, value in request.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return default
