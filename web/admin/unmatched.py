"""/v1/admin/unmatched-events: Stripe and Printify events kept because they name no order Backroom knows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from db.webhooks import select_unmatched_event_page
from domain.webhooks import RefKind, Source
from web.auth import require
from web.schemas import MAX_ID, reply

blueprint = Blueprint("admin_unmatched", __name__, url_prefix="/v1/admin")


class UnmatchedQuery(BaseModel):
    """Which kept events (all optional): one source; newest first, paged by `before` (a row id)."""

    source: Source | None = None
    before: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)


class UnmatchedEventView(BaseModel):
    """A kept event: its source and id, its type, when it came, and the order reference it names."""

    id: int
    source: str
    event_id: str
    type: str
    received_at: datetime
    order_ref: str
    refers_to: RefKind


class UnmatchedEvents(BaseModel):
    """A page of kept events, newest first; `next_before` continues (null: the last page)."""

    events: list[UnmatchedEventView]
    next_before: int | None


@blueprint.get("/unmatched-events")
@require("admin:read")
@tag(["admin"])
@validate_querystring(UnmatchedQuery)
@document_response(UnmatchedEvents)
async def list_unmatched_events(query_args: UnmatchedQuery) -> Any:
    """Provider events kept because no order here matches them (yet), newest first."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        rows = await select_unmatched_event_page(conn, **query_args.model_dump())
    page = UnmatchedEvents(
        events=[
            UnmatchedEventView(
                id=r.id,
                source=r.source,
                event_id=r.event_id,
                type=r.event_type,
                received_at=r.received_at,
                order_ref=r.order_ref,
                refers_to=r.refers_to,
            )
            for r in rows
        ],
        next_before=rows[-1].id if len(rows) == query_args.limit else None,
    )
    return reply(page)
