"""/v1/items/{id}/approve|reject: the admin's review of scraped items, done by actors."""
from __future__ import annotations

from typing import Any

from quart import current_app, g
from quart import Blueprint
from quart_schema import document_response, tag

from actors.ingest import approve_item, reject_item
from db.ingest import select_item_status
from web.auth import require
from web.enqueue import enqueue
from web.errors import document_errors, problem
from web.schemas import Accepted

blueprint = Blueprint("items", __name__, url_prefix="/v1/items")


def _by() -> str:
    """The acting token, as the audit log names it."""
    return f"token:{g.token.id}:{g.token.name}"


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
    return await enqueue(approve_item, unique_key=f"approve_item:{item_id}", item_id=item_id, by=_by())


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
    return await enqueue(reject_item, unique_key=f"reject_item:{item_id}", item_id=item_id, by=_by())
