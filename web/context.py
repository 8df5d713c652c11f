"""What the web's modules know about the request being served, beyond Quart's request object."""
from __future__ import annotations

from contextvars import ContextVar

# the request's id (web.app.BackroomQuart sets it): carried by the messages it enqueues and by its logs
REQUEST_ID: ContextVar[str | None] = ContextVar("backroom_request_id", default=None)
