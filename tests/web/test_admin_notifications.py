"""/admin/notifications: the log and template editing through the page (preview, required fields, versions)."""

from __future__ import annotations

import secrets
from datetime import date, datetime, UTC

import asyncpg

from db.reminders import upsert_subject
from domain.reminders import Occasion, Subject
from tests.web.test_admin_pages import sign_in


async def test_the_page_shows_the_log_and_previews_and_saves_template_versions(
    app, tokens, database_url, redis_client
) -> None:
    subject = f"occasion:{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await upsert_subject(
                conn,
                Subject(
                    subject,
                    "page-reader",
                    {"email": "p@example.com"},
                    Occasion(date(2031, 1, 1), "UTC"),
                    (0,),
                    ("email",),
                    "ops_message",
                ),
                datetime(2030, 1, 1, tzinfo=UTC),
            )
    finally:
        await conn.close()
    client = app.test_client()
    csrf = await sign_in(client, tokens["admin"])
    page = await (await client.get("/admin/notifications?recipient=page-reader")).get_data(as_text=True)
    assert subject in page and "queued" in page and "order_confirmation" in page
    name = f"note_{secrets.token_hex(3)}"
    form = {
        "csrf_token": csrf,
        "name": name,
        "channel": "email",
        "locale": "en",
        "subject": "Hi $who",
        "body": "Your $thing is ready",
    }
    preview = await client.post("/admin/notifications/preview", form=form)
    html = await preview.get_data(as_text=True)
    assert preview.status_code == 200 and "Your &lt;thing&gt; is ready" in html and "Needs: thing, who" in html
    bad = await client.post("/admin/notifications/preview", form={**form, "name": "ops_message", "body": "$nope"})
    assert bad.status_code == 422 and "no sender provides nope" in await bad.get_data(as_text=True)
    for _ in range(2):
        saved = await client.post("/admin/notifications/templates", form=form)
        assert saved.status_code == 303
    listed = await (await client.get("/admin/notifications")).get_data(as_text=True)
    assert f"Saved {name} (email, en) as version 2." in listed and listed.count(f">{name}<") == 2


async def test_a_read_only_session_previews_but_cannot_save(app, tokens) -> None:
    client = app.test_client()
    csrf = await sign_in(client, tokens["reader"])
    form = {"csrf_token": csrf, "name": "ops_message", "subject": "$title", "body": "$text!"}
    assert (await client.post("/admin/notifications/preview", form=form)).status_code == 200
    assert (await client.post("/admin/notifications/templates", form=form)).status_code == 403
    forged = await client.post("/admin/notifications/templates", form={**form, "csrf_token": "x"})
    assert forged.status_code == 403
