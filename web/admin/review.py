"""/admin/review: items by status (pending first) with approve and reject, done by the review actors."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Blueprint, current_app, flash, redirect, render_template, request, url_for

from actors.ingest import approve_item, reject_item
from db.items import select_items
from web.admin.session import page_error, signed_in
from web.auth import who

blueprint = Blueprint("admin_review", __name__, url_prefix="/admin", template_folder="templates")
STATUSES = ("pending", "available", "rejected", "sold", "archived")
PAGE = 50


@blueprint.get("/review")
@signed_in()
async def review() -> Any:
    """Items of one status (pending by default), newest first, with a text filter and pages."""
    status = request.args.get("status", "pending")
    if status not in STATUSES:
        return await page_error(404, "No such status.")
    text = request.args.get("text", "")[:100] or None
    before = request.args.get("before", "")
    async with current_app.config["DB_POOL"].acquire() as conn:
        items = await select_items(
            conn,
            status=status,
            source=None,
            kind=None,
            text=text,
            before_id=int(before) if before.isdigit() and len(before) < 18 else None,
            limit=PAGE,
        )
    return await render_template(
        "admin/review.html",
        items=items,
        status=status,
        text=text or "",
        statuses=STATUSES,
        next_before=items[-1].id if len(items) == PAGE else None,
    )


@blueprint.post("/review/<int:item_id>/<action>")
@signed_in("admin")
async def decide(item_id: int, action: str) -> Any:
    """Approve or reject one item (the actor checks its status and audits the change)."""
    if action not in ("approve", "reject"):
        return await page_error(404, "No such action.")
    actor = approve_item if action == "approve" else reject_item
    await asyncio.to_thread(
        actor.send_with_options, kwargs={"item_id": item_id, "by": who()}, unique_key=f"{actor.actor_name}:{item_id}"
    )
    await flash(f"Item {item_id}: {action} queued.")
    return redirect(url_for("admin_review.review", status=(await request.form).get("status", "pending")), 303)
