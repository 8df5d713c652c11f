"""/v1/items: the list reviewers and storefronts read; /v1/items/{id}/approve|reject, done by actors."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from quart import Blueprint, current_app, g
from quart_schema import document_response, tag, validate_querystring

from actors.ingest import approve_item, reject_item
from db.ingest import select_item_status
from db.items import ItemCard, select_items
from domain.tokens import grants
from web.auth import require, who
from web.enqueue import enqueue
from web.errors import document_errors, problem
from web.schemas import Accepted, Problem

blueprint = Blueprint("items", __name__, url_prefix="/v1/items")


class ItemQuery(BaseModel):
    """Filters and a page of the item list (status other than available, and source, need admin:read)."""

    status: Literal["pending", "available", "sold", "archived", "rejected"] = "available"
    source: str | None = Field(None, min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")
    kind: Literal["one_of_one", "stable", "print_on_demand"] | None = None
    text: str | None = Field(None, min_length=1, max_length=100, description="In the title or brand.")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, pattern=r"^i[1-9][0-9]{0,17}$", description="next_cursor of the previous page.")


class ItemPage(BaseModel):
    """Items newest first; `next_cursor` (null on the last page) asks for the next page."""

    items: list[ItemCard]
    next_cursor: str | None


@blueprint.get("")
@require("jobs")
@tag(["items"])
@validate_querystring(ItemQuery)
@document_response(ItemPage)
@document_response(Problem, 403)
async def list_items(query_args: ItemQuery) -> Any:
    """Items by status (default available), source, kind and text, newest first, a page at a time."""
    q = query_args
    if (q.status != "available" or q.source is not None) and not grants(g.token.scopes, "admin:read"):
        return problem(403, "only admin:read tokens may list items that are not available, or filter by source")
    async with current_app.config["DB_POOL"].acquire() as conn:
        cards = await select_items(
            conn,
            status=q.status,
            source=q.source,
            kind=q.kind,
            text=q.text,
            before_id=int(q.cursor[1:]) if q.cursor else None,
            limit=q.limit,
        )
    next_cursor = f"i{cards[-1].id}" if len(cards) == q.limit else None
    return ItemPage(items=cards, next_cursor=next_cursor).model_dump(mode="json")


async def _status(item_id: int) -> str | None:
    async with current_app.config["DB_POOL"].acquire() as conn:
        return await select_item_status(conn, item_id)


@blueprint.post("/<id:item_id>/approve")
@require("admin")
@tag(["items"])
@document_response(Accepted, 202)
@document_errors(409)
async def post_approve(item_id: int) -> Any:
    """Put a pending (or rejected) item live; 409 when it is sold or archived."""
    status = await _status(item_id)
    if status is None:
        return problem(404, "no such item")
    if status in ("sold", "archived"):
        return problem(409, f"the item is {status}; it cannot be approved")
    return await enqueue(approve_item, unique_key=f"approve_item:{item_id}", item_id=item_id, by=who())


@blueprint.post("/<id:item_id>/reject")
@require("admin")
@tag(["items"])
@document_response(Accepted, 202)
@document_errors(409)
async def post_reject(item_id: int) -> Any:
    """Take a pending or available item out of the shop; 409 when it is sold or archived."""
    status = await _status(item_id)
    if status is None:
        return problem(404, "no such item")
    if status in ("sold", "archived"):
        return problem(409, f"the item is {status}; it cannot be rejected")
    return await enqueue(reject_item, unique_key=f"reject_item:{item_id}", item_id=item_id, by=who())
