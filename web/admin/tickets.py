"""/admin/tickets: the ops tickets page (list, one ticket's thread) and its forms (assign,
comment, close, approve a refund), each a message to the ticket actors."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from actors.refund_requests import approve_refund
from actors.tickets import act_on_ticket
from db.tickets import select_ticket, select_tickets
from domain.tickets import STATUSES
from web.admin.session import page_error, signed_in
from web.enqueue import BROKER_DOWN, send

blueprint = Blueprint("admin_tickets", __name__, url_prefix="/admin")
FORM_ACTIONS = {"assign": "assigned", "comment": "comment", "close": "closed", "reopen": "reopened"}


@blueprint.get("/tickets")
@signed_in()
async def tickets() -> Any:
    """Tickets by status, newest first; `?id=` shows one ticket's thread beside them."""
    status = request.args.get("status") or "open"
    if status not in (*STATUSES, "all"):
        return await page_error(404, "No such ticket status.")
    chosen = request.args.get("id", "")
    async with current_app.config["DB_POOL"].acquire() as conn:
        rows = await select_tickets(conn, status=None if status == "all" else status, limit=100)
        ticket = await select_ticket(conn, int(chosen)) if chosen.isdigit() and len(chosen) < 19 else None
    return await render_template(
        "admin/tickets.html", rows=rows, ticket=ticket, status=status, statuses=(*STATUSES, "all")
    )


@blueprint.post("/tickets/<id:ticket_id>/<action>")
@signed_in("admin")
async def ticket_action(ticket_id: int, action: str) -> Any:
    """Assign, comment, close, reopen or approve a refund, from the page's forms."""
    form = await request.form
    text = (form.get("text") or "").strip()
    if action not in (*FORM_ACTIONS, "approve-refund") or len(text) > 5000:
        return await page_error(400, "No such action, or the text is longer than 5000 characters.")
    if action in ("assign", "comment") and not text:
        return await page_error(400, "Say who to assign it to, or what to comment.")
    author = str(getattr(g.token, "name", "admin"))
    args: tuple[Any, ...]
    if action == "approve-refund":
        actor, args = approve_refund, (ticket_id, author)
    else:
        assignee = text[:100] if action == "assign" else None
        actor, args = act_on_ticket, (ticket_id, FORM_ACTIONS[action], author, "" if assignee else text, assignee)
    try:
        await send(actor, args=args)
    except BROKER_DOWN:
        return await page_error(503, "The job queue is unreachable; try again in a minute.")
    await flash(f"Ticket #{ticket_id}: {action} sent.")
    return redirect(url_for("admin_tickets.tickets", id=ticket_id), 303)
