"""Templates and the send decision behind 'never sends twice'."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, UTC

import pytest

from domain.notifications import TEMPLATES, TemplateError, decide, render, required_fields
from domain.retrying import RetryBudget

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_render_fills_subject_and_body() -> None:
    message = render(
        "order_dispatched", {"order_id": 7, "carrier": "dhl", "tracking_number": "X1", "tracking_url": "https://t/X1"}
    )
    assert message.subject == "Order #7 is on its way" and "X1" in message.text


def test_every_template_renders_with_its_required_fields() -> None:
    for name in TEMPLATES:
        fields = required_fields(name)
        message = render(name, {field: f"<{field}>" for field in fields})
        assert message.subject.strip() and message.text.strip(), name
        # every required field is used, and nothing is left unfilled
        assert all(f"<{field}>" in message.subject + message.text for field in fields), name
        assert not re.search(r"\$\{?[A-Za-z_]", message.subject + message.text), name


@pytest.mark.parametrize(
    ("template", "data", "error"),
    [
        ("nope", {}, "unknown template"),
        ("ops_message", {"title": "t"}, "needs field 'text'"),
    ],
)
def test_render_refuses_unknown_templates_and_missing_fields(template: str, data: dict, error: str) -> None:
    with pytest.raises(TemplateError, match=error):
        render(template, data)


@pytest.mark.parametrize(
    ("status", "lease", "idempotent", "decision"),
    [
        ("pending", None, False, "send"),
        ("failed", None, False, "send"),
        ("sent", None, True, "done"),
        ("skipped", None, True, "skipped"),
        ("unknown", None, True, "maybe_sent"),
        ("sending", NOW + timedelta(seconds=5), True, "busy"),
        ("sending", NOW - timedelta(seconds=5), True, "send"),
        ("sending", NOW - timedelta(seconds=5), False, "maybe_sent"),
    ],
)
def test_the_send_decision(status: str, lease: datetime | None, idempotent: bool, decision: str) -> None:
    assert decide(status, lease, NOW, idempotent=idempotent) == decision


@pytest.mark.parametrize(
    ("failures", "waits", "waiting", "allowed"),
    [
        (0, 0, False, True),
        (2, 50, False, True),
        (3, 0, False, False),
        (0, 9, True, True),
        (0, 10, True, False),
    ],
)
def test_waits_and_failures_have_separate_budgets(failures: int, waits: int, waiting: bool, allowed: bool) -> None:
    assert RetryBudget(max_failures=3, max_waits=10).allows(failures=failures, waits=waits, waiting=waiting) is allowed
