"""Reading the Stripe events that change an order after its checkout."""

from __future__ import annotations

import pytest

from domain.payments import parse_payment_event


def event(kind: str, obj: dict) -> dict:
    return {"id": "evt_1", "type": kind, "data": {"object": obj}}


@pytest.mark.parametrize(
    "kind, obj, change, ref",
    [
        (
            "payment_intent.payment_failed",
            {
                "object": "payment_intent",
                "id": "pi_1",
                "amount": 500,
                "last_payment_error": {"message": "Your card was declined."},
            },
            "payment_failed",
            "pi_1",
        ),
        (
            "checkout.session.async_payment_failed",
            {"object": "checkout.session", "id": "cs_1", "payment_intent": "pi_1"},
            "payment_failed",
            "cs_1",
        ),
        (
            "checkout.session.expired",
            {"object": "checkout.session", "id": "cs_2", "payment_intent": None},
            "expired",
            "cs_2",
        ),
        (
            "charge.refunded",
            {
                "object": "charge",
                "id": "ch_1",
                "payment_intent": {"id": "pi_3"},
                "amount": 500,
                "amount_refunded": 500,
                "refunds": {"data": [{"id": "re_1"}]},
            },
            "refunded",
            "pi_3",
        ),
        (
            "charge.dispute.created",
            {
                "object": "dispute",
                "id": "dp_1",
                "payment_intent": "pi_4",
                "status": "needs_response",
                "reason": "fraudulent",
            },
            "dispute_created",
            "pi_4",
        ),
        (
            "charge.dispute.closed",
            {"object": "dispute", "id": "dp_1", "payment_intent": "pi_4", "status": "lost"},
            "dispute_closed",
            "pi_4",
        ),
    ],
)
def test_each_event_names_its_change_and_order(kind: str, obj: dict, change: str, ref: str) -> None:
    parsed = parse_payment_event(event(kind, obj))
    assert parsed is not None and parsed.change == change and parsed.order_ref == ref


@pytest.mark.parametrize("amount_refunded, full", [(500, True), (200, False), (0, False)])
def test_only_a_refund_of_the_whole_charge_is_full(amount_refunded: int, full: bool) -> None:
    parsed = parse_payment_event(
        event(
            "charge.refunded",
            {
                "object": "charge",
                "id": "ch_1",
                "payment_intent": "pi",
                "amount": 500,
                "amount_refunded": amount_refunded,
            },
        )
    )
    assert parsed is not None and parsed.full_refund is full and parsed.refund_id == "charge:ch_1"


@pytest.mark.parametrize(
    "kind, obj",
    [
        ("checkout.session.completed", {"object": "checkout.session", "id": "cs_1"}),
        ("customer.created", {"object": "customer", "id": "cus_1"}),
        ("charge.refunded", {"object": "charge", "id": "ch_1", "payment_intent": None}),  # no order to name
        ("charge.dispute.created", "not an object"),
    ],
)
def test_other_events_change_no_order(kind: str, obj: object) -> None:
    assert parse_payment_event({"id": "evt_1", "type": kind, "data": {"object": obj}}) is None
