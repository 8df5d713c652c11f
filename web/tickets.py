"""/v1/tickets: ops tickets for admins (list, read, assign, comment, close, approve a refund), and
/v1/orders/{id}/refund-request for the storefront; every write through an actor."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, current_app, g
from quart_schema import document_response, tag, validate_querystring

from actors.refund_requests import approve_refund, request_refund
from actors.tickets import act_on_ticket
from db.orders import select_order
from db.tickets import select_ticket, select_tickets
from domain.tickets import Ticket
from web.auth import require
from web.bodies import validate_body
from web.enqueue import enqueue
from web.errors import document_errors, problem
from web.schemas import MAX_ID, TEXT, Accepted, reply

blueprint = Blueprint("tickets", __name__, url_prefix="/v1")
Kind = Literal["payment_failed", "dispute", "provider_rejected", "shipping_problem", "refund_request", "mismatch"]


class TicketQuery(BaseModel):
    """Ticket listing filters (all optional); newest first, paged by `before_id`."""

    status: Literal["open", "waiting", "closed"] | None = None
    kind: Kind | None = None
    order_id: int | None = Field(None, ge=1, le=MAX_ID)
    before_id: int | None = Field(None, ge=1, le=MAX_ID)
    limit: int = Field(50, ge=1, le=200)


class AssignBody(BaseModel):
    """Who works the ticket."""

    model_config = ConfigDict(extra="forbid", strict=True)
    assignee: str = Field(min_length=1, max_length=100, pattern=TEXT)


class NoteBody(BaseModel):
    """A closing note (optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    body: str = Field("", max_length=5000, pattern=TEXT)


class CommentBody(BaseModel):
    """A comment: some text that is not only blanks."""

    model_config = ConfigDict(extra="forbid", strict=True)
    body: str = Field(min_length=1, max_length=5000, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")


class RefundRequestBody(BaseModel):
    """A customer's refund request, with the buyer's email as the storefront knows it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    email: str = Field(min_length=3, max_length=320, pattern=TEXT)
    reason: str = Field("", max_length=2000, pattern=TEXT)


class InteractionView(BaseModel):
    """One entry of a ticket's thread."""

    author: str
    action: str
    body: str
    created_at: datetime


class TicketView(BaseModel):
    """A ticket (its thread when read alone)."""

    id: int
    kind: str
    subject: str
    order_id: int | None
    contact: str | None
    status: str
    assignee: str | None
    created_at: datetime
    closed_at: datetime | None
    thread: list[InteractionView] = []


class TicketList(BaseModel):
    """A page of tickets."""

    tickets: list[TicketView]


def _view(ticket: Ticket) -> TicketView:
    # a projection: only what TicketView declares (its thread included) is read from the ticket
    return TicketView.model_validate(ticket, from_attributes=True)


async def _ticket(ticket_id: int) -> Ticket | None:
    async with current_app.config["DB_POOL"].acquire() as conn:
        return await select_ticket(conn, ticket_id)


@blueprint.get("/tickets")
@require("admin:read")
@tag(["tickets"])
@validate_querystring(TicketQuery)
@document_response(TicketList)
async def list_tickets(query_args: TicketQuery) -> Any:
    """Tickets, newest first, by status, kind and order."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        tickets = await select_tickets(conn, **query_args.model_dump())
    return reply(TicketList(tickets=[_view(t) for t in tickets]))


@blueprint.get("/tickets/<id:ticket_id>")
@require("admin:read")
@tag(["tickets"])
@document_response(TicketView)
@document_errors(404)
async def get_ticket(ticket_id: int) -> Any:
    """One ticket with its thread of interactions."""
    ticket = await _ticket(ticket_id)
    return problem(404, "no such ticket") if ticket is None else reply(_view(ticket))


async def _act(ticket_id: int, action: str, body: str = "", assignee: str | None = None) -> Any:
    if await _ticket(ticket_id) is None:
        return problem(404, "no such ticket")
    author = str(getattr(g.token, "name", "admin"))
    return await enqueue(act_on_ticket, ticket_id=ticket_id, action=action, author=author, body=body, assignee=assignee)


@blueprint.post("/tickets/<id:ticket_id>/assign")
@require("admin")
@tag(["tickets"])
@validate_body(AssignBody)
@document_response(Accepted, 202)
@document_errors(404)
async def assign_ticket(ticket_id: int, data: AssignBody) -> Any:
    """Assign the ticket to someone (noted in its thread)."""
    return await _act(ticket_id, "assigned", assignee=data.assignee)


@blueprint.post("/tickets/<id:ticket_id>/comments")
@require("admin")
@tag(["tickets"])
@validate_body(CommentBody)
@document_response(Accepted, 202)
@document_errors(404)
async def comment_ticket(ticket_id: int, data: CommentBody) -> Any:
    """Add a comment to the ticket's thread."""
    return await _act(ticket_id, "comment", body=data.body)


@blueprint.post("/tickets/<id:ticket_id>/close")
@require("admin")
@tag(["tickets"])
@validate_body(NoteBody)
@document_response(Accepted, 202)
@document_errors(404)
async def close_ticket(ticket_id: int, data: NoteBody) -> Any:
    """Close the ticket, with an optional note."""
    return await _act(ticket_id, "closed", body=data.body)


@blueprint.post("/tickets/<id:ticket_id>/approve-refund")
@require("admin")
@tag(["tickets"])
@document_response(Accepted, 202)
@document_errors(404, 409)
async def approve_ticket_refund(ticket_id: int) -> Any:
    """Approve a waiting refund request: the order is refunded, the ticket closed."""
    ticket = await _ticket(ticket_id)
    if ticket is None:
        return problem(404, "no such ticket")
    if ticket.kind != "refund_request":
        return problem(409, f"ticket {ticket_id} is a {ticket.kind} ticket, not a refund request")
    return await enqueue(
        approve_refund,
        unique_key=f"approve_refund:{ticket_id}",
        ticket_id=ticket_id,
        author=str(getattr(g.token, "name", "admin")),
    )


@blueprint.post("/orders/<id:order_id>/refund-request")
@require("jobs")
@tag(["orders"])
@validate_body(RefundRequestBody)
@document_response(Accepted, 202)
@document_errors(404)
async def post_refund_request(order_id: int, data: RefundRequestBody) -> Any:
    """A customer asks for a refund: approved at once inside REFUND_WINDOW_DAYS, else an admin decides."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        order = await select_order(conn, order_id)
    if order is None or (order.customer_email or "").lower() != data.email.lower():
        return problem(404, "no such order for this email")  # never tells whether the order exists
    return await enqueue(request_refund, unique_key=f"request_refund:{order_id}", order_id=order_id, reason=data.reason)
