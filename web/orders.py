"""/v1/orders: read an order; cancel, refund and dispatch it through actors (admin only)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, current_app
from quart_schema import document_response, tag

from actors.orders import cancel_order, dispatch_order, refund_order
from db.orders import select_order
from domain.orders import Order
from web.auth import require
from web.bodies import validate_body
from web.enqueue import enqueue
from web.errors import document_errors, problem
from web.schemas import TEXT, Accepted, reply

blueprint = Blueprint("orders", __name__, url_prefix="/v1/orders")


class DispatchBody(BaseModel):
    """Shipping details the buyer is told."""

    model_config = ConfigDict(extra="forbid")

    carrier: str = Field("", max_length=100, pattern=TEXT)
    tracking_number: str = Field("", max_length=100, pattern=TEXT)
    tracking_url: str = Field("", max_length=500, pattern=r"^(https?://\S*)?$")


class OrderLineView(BaseModel):
    """One line of an order."""

    item_id: int | None
    kind: str
    quantity: int
    unit_price_cents: int
    title: str | None


class OrderView(BaseModel):
    """An order as admins see it (never the items' source URLs)."""

    id: int
    status: str
    hold_until: datetime | None
    amount_total_cents: int | None
    currency: str | None
    customer_email: str | None
    cancel_reason: str | None
    review_reason: str | None = None
    paid_at: datetime | None = None
    refunded_cents: int | None = None
    dispute_status: str | None = None
    printify_order_id: str | None
    printify_status: str | None
    tracking: dict[str, Any] | None
    refunded: bool
    released_at: datetime | None
    created_at: datetime
    lines: list[OrderLineView]


def _view(order: Order) -> OrderView:
    # a projection: only what OrderView declares leaves the process (never metadata or shipping)
    return OrderView.model_validate({**asdict(order), "refunded": order.stripe_refund_id is not None})


async def _order(order_id: int) -> Order | None:
    async with current_app.config["DB_POOL"].acquire() as conn:
        return await select_order(conn, order_id)


@blueprint.get("/<id:order_id>")
@require("admin:read")
@tag(["orders"])
@document_response(OrderView)
async def get_order(order_id: int) -> Any:
    """One order: status, hold, lines, Printify and refund state."""
    order = await _order(order_id)
    if order is None:
        return problem(404, "no such order")
    return reply(_view(order))


@blueprint.post("/<id:order_id>/cancel")
@require("admin")
@tag(["orders"])
@document_response(Accepted, 202)
@document_errors(409)
async def post_cancel(order_id: int) -> Any:
    """Cancel an order during its hold (or under review): refund (idempotent), items and stock back, buyer told."""
    order = await _order(order_id)
    if order is None:
        return problem(404, "no such order")
    if order.status not in ("on_hold", "needs_review", "cancelled"):
        return problem(409, f"the order is {order.status}; only an order on hold or under review can be cancelled")
    return await enqueue(cancel_order, unique_key=f"cancel_order:{order_id}", order_id=order_id)


@blueprint.post("/<id:order_id>/refund")
@require("admin")
@tag(["orders"])
@document_response(Accepted, 202)
@document_errors(409)
async def post_refund(order_id: int) -> Any:
    """Refund an order in full (an order on hold is cancelled first); items and stock go back."""
    order = await _order(order_id)
    if order is None:
        return problem(404, "no such order")
    if order.status == "releasing":
        return problem(409, "the order is being released right now; try again in a minute")
    return await enqueue(refund_order, unique_key=f"refund_order:{order_id}", order_id=order_id)


@blueprint.post("/<id:order_id>/dispatch")
@require("admin")
@tag(["orders"])
@validate_body(DispatchBody)
@document_response(Accepted, 202)
@document_errors(409)
async def post_dispatch(order_id: int, data: DispatchBody) -> Any:
    """Mark a released order dispatched and email the buyer its tracking."""
    order = await _order(order_id)
    if order is None:
        return problem(404, "no such order")
    if order.status not in ("released", "in_production", "dispatched"):
        return problem(409, f"the order is {order.status}; only a released order can be dispatched")
    return await enqueue(
        dispatch_order, unique_key=f"dispatch_order:{order_id}", order_id=order_id, **data.model_dump()
    )
