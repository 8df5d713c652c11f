"""Reading checkouts, the hold, and the forward-only order statuses."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from domain.orders import (
    CheckoutLine,
    InvalidCheckout,
    PricedItem,
    delay_ms,
    may_progress,
    parse_checkout,
    parse_items,
    payment_mismatch,
    printify_address,
    printify_step,
    status_from_printify,
    tracking_from_printify,
)

SESSION = {
    "id": "cs_1",
    "payment_status": "paid",
    "payment_intent": "pi_1",
    "amount_total": 9000,
    "amount_subtotal": 8500,
    "currency": "eur",
    "customer_details": {"email": "a@example.com", "name": "Ada Lovelace"},
    "metadata": {"type": "archive", "items": "3,4x2", "auvra_session_id": "s1", "auvra_creative_id": "c9"},
    "total_details": {"amount_shipping": 500},
    "collected_information": {
        "shipping_details": {
            "name": "Ada Lovelace",
            "address": {"line1": "1 Rue X", "city": "Paris", "postal_code": "75001", "country": "FR"},
        }
    },
}


@pytest.mark.parametrize(
    ("raw", "lines"),
    [
        ("3", (CheckoutLine(3, 1),)),
        ("3,4x2, 3", (CheckoutLine(3, 2), CheckoutLine(4, 2))),
        ('[{"id": 7, "qty": 3}]', (CheckoutLine(7, 3),)),
        ("", ()),
    ],
)
def test_items_metadata(raw: str, lines: tuple) -> None:
    assert parse_items(raw) == lines


@pytest.mark.parametrize("raw", ["a,b", "3x0", "-1", '[{"qty": 1}]'])
def test_bad_items_metadata_is_refused(raw: str) -> None:
    with pytest.raises(InvalidCheckout):
        parse_items(raw)


def test_a_paid_session_becomes_a_checkout_with_shipping_and_attribution() -> None:
    checkout = parse_checkout(SESSION)
    assert checkout.type == "goods" and checkout.currency == "EUR" and checkout.payment_intent == "pi_1"
    assert checkout.lines == (CheckoutLine(3, 1), CheckoutLine(4, 2))
    assert checkout.shipping["address"]["city"] == "Paris" and checkout.shipping_cents == 500
    assert checkout.attribution == {"auvra_session_id": "s1", "auvra_creative_id": "c9"}


@pytest.mark.parametrize("change", [{"payment_status": "unpaid"}, {"metadata": {"type": "archive"}}])
def test_unpaid_or_itemless_sessions_are_not_orders(change: dict) -> None:
    with pytest.raises(InvalidCheckout):
        parse_checkout({**SESSION, **change})


def test_a_membership_needs_no_items() -> None:
    checkout = parse_checkout({**SESSION, "metadata": {"type": "membership"}})
    assert checkout.type == "membership" and checkout.profile_email == "a@example.com"


def test_delay_until_the_hold_ends() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert delay_ms(now, now + timedelta(minutes=15)) == 900_000
    assert delay_ms(now, now - timedelta(seconds=1)) == 0


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("released", "in_production", True),
        ("released", "dispatched", True),
        ("in_production", "dispatched", True),
        ("dispatched", "in_production", False),
        ("in_production", "in_production", False),
        ("on_hold", "dispatched", False),
        ("cancelled", "in_production", False),
    ],
)
def test_orders_only_move_forward(current: str, target: str, allowed: bool) -> None:
    assert may_progress(current, target) is allowed


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (None, "create"),
        ("pending", "wait"),
        ("on-hold", "send"),
        ("sending-to-production", "done"),
        ("in-production", "done"),
        ("fulfilled", "done"),
        ("canceled", "dead"),
        ("something-new", "wait"),
    ],
)
def test_printify_release_steps(status: str | None, step: str) -> None:
    assert printify_step(status) == step


def test_printify_status_and_tracking_shapes() -> None:
    assert status_from_printify("in-production", []) == "in_production"
    assert status_from_printify("on-hold", []) is None
    shipped = {"shipments": [{"carrier": "dhl", "number": "1", "url": "u"}]}
    assert status_from_printify("in-production", shipped["shipments"]) == "dispatched"
    assert tracking_from_printify(shipped) == {"carrier": "dhl", "number": "1", "url": "u"}
    webhook_shape = {"shipments": [{"carrier": {"code": "ups", "tracking_number": "2", "tracking_url": "v"}}]}
    assert tracking_from_printify(webhook_shape) == {"carrier": "ups", "number": "2", "url": "v"}


def test_printify_address_from_stripe_shipping() -> None:
    address = printify_address(SESSION["collected_information"]["shipping_details"], "a@example.com")
    assert address["first_name"] == "Ada" and address["last_name"] == "Lovelace"
    assert address["zip"] == "75001" and address["country"] == "FR" and address["email"] == "a@example.com"


@pytest.mark.parametrize(
    ("prices", "change", "reason"),
    [
        ({3: (2500, "EUR"), 4: (3000, "EUR")}, {}, None),  # 2500 + 2 x 3000 = 8500, the subtotal
        ({3: (2500, "EUR"), 4: (3000, "EUR")}, {"amount_subtotal": None, "amount_total": 8500}, None),
        ({3: (2500, "EUR")}, {}, "paid 85.00 EUR for items priced 25.00 EUR"),  # item 4 unknown: the claims cancel
        ({3: (62200, "EUR"), 4: (0, "EUR")}, {"amount_subtotal": 5000}, "paid 50.00 EUR for items priced 622.00 EUR"),
        ({3: (2500, "EUR"), 4: (3000, "EUR")}, {"currency": "usd"}, "paid in USD, the items are priced in EUR"),
        ({3: (2500, "EUR"), 4: (None, None)}, {}, "item 4 has no price"),
        ({}, {}, None),
    ],
)
def test_the_paid_amount_and_currency_must_match_the_items(prices: dict, change: dict, reason: str | None) -> None:
    checkout = parse_checkout({**SESSION, **change})
    items = {item: PricedItem(price, currency) for item, (price, currency) in prices.items()}
    assert payment_mismatch(checkout, items) == reason
