"""/v1/admin/notification-templates: preview with the required-fields check, versioned saves, audit."""

from __future__ import annotations

import re
import secrets

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.notifications import TEMPLATE_BODY, TEMPLATE_TEXT
from tests.web.conftest import bearer
from web.admin.notification_templates import TemplateEdit

URL = "/v1/admin/notification-templates"


async def test_preview_renders_with_placeholders_and_sample_data(client, tokens) -> None:
    body = {
        "subject": "Order #$order_id confirmed",
        "body": "Thanks! $total, held $hold_minutes min.\n$items",
        "data": {"total": "EUR 12.00"},
    }
    response = await client.post(f"{URL}/order_confirmation/preview", json=body, headers=bearer(tokens["reader"]))
    assert response.status_code == 200
    preview = await response.get_json()
    assert preview["subject"] == "Order #<order_id> confirmed"
    assert preview["text"].startswith("Thanks! EUR 12.00, held <hold_minutes> min.")
    assert preview["required_fields"] == ["hold_minutes", "items", "order_id", "total"]


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("order_confirmation", {"subject": "Hi $first_name", "body": "x"}, "no sender provides first_name"),
        ("order_confirmation", {"subject": "s", "body": "cost: $5"}, "malformed placeholder"),
        ("ops_message", {"subject": "s", "body": "   "}, "the body is empty"),
    ],
)
async def test_an_edit_using_a_field_no_sender_provides_or_malformed_is_422(client, tokens, name, body, error) -> None:
    for path in (f"{URL}/{name}/preview", f"{URL}/{name}"):
        response = await client.post(path, json=body, headers=bearer(tokens["admin"]))
        assert response.status_code == 422
        assert error in (await response.get_json())["errors"]["body"]


async def test_saves_are_numbered_versions_per_channel_and_locale_and_audited(client, tokens, database_url) -> None:
    name = f"promo_{secrets.token_hex(3)}"  # no code default: any fields
    first = await client.post(
        f"{URL}/{name}", json={"subject": "Hi $name", "body": "v1 $offer"}, headers=bearer(tokens["admin"])
    )
    second = await client.post(
        f"{URL}/{name}", json={"subject": "Hi $name", "body": "v2 $offer"}, headers=bearer(tokens["admin"])
    )
    french = await client.post(
        f"{URL}/{name}",
        json={"locale": "fr", "channel": "email", "subject": "Salut $name", "body": "v1 fr"},
        headers=bearer(tokens["admin"]),
    )
    assert [(await r.get_json())["version"] for r in (first, second, french)] == [1, 2, 1]
    assert first.status_code == 201
    listed = await (await client.get(URL, headers=bearer(tokens["reader"]))).get_json()
    assert "order_confirmation" in listed["defaults"]
    assert [(v["channel"], v["locale"], v["version"]) for v in listed["versions"] if v["name"] == name] == [
        ("*", "en", 2),
        ("*", "en", 1),
        ("email", "fr", 1),
    ]
    conn = await asyncpg.connect(database_url)
    try:
        audited = await conn.fetchval("SELECT count(*) FROM audit_log WHERE target LIKE $1", f"%:{name}:%")
    finally:
        await conn.close()
    assert audited == 3


async def test_saving_needs_the_admin_scope_and_a_sane_name(client, tokens) -> None:
    body = {"subject": "s", "body": "b"}
    assert (await client.post(f"{URL}/ops_message", json=body, headers=bearer(tokens["reader"]))).status_code == 403
    assert (await client.post(f"{URL}/Bad-Name", json=body, headers=bearer(tokens["admin"]))).status_code == 404
    long = {"subject": "s", "body": "b" * 10_001}
    assert (await client.post(f"{URL}/ops_message", json=long, headers=bearer(tokens["admin"]))).status_code == 422


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="$ {}a_1\t\x85\u3000x\n", max_size=12))
def test_the_schema_patterns_and_the_server_agree_on_template_text(text: str) -> None:
    """A schema-valid edit is one the server accepts, and the other way round (schemathesis relies on it)."""
    for field, pattern in (("subject", TEMPLATE_TEXT), ("body", TEMPLATE_BODY)):
        edit = {"subject": "s", "body": "b", field: text}
        try:
            TemplateEdit(**edit)
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == (re.fullmatch(pattern, text) is not None and (field == "subject" or len(text) >= 1)), (
            field,
            text,
        )
