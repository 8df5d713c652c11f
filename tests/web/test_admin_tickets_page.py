"""/admin/tickets: the list, a ticket's thread, and its forms (CSRF, admin scope) through a worker."""

from __future__ import annotations

import asyncpg
import redis

from tests.admin_support import running_worker
from tests.waiting import eventually
from tests.web.test_admin_pages import sign_in


async def test_the_tickets_page_lists_shows_and_acts(app, tokens, database_url: str, redis_client: redis.Redis) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        ticket_id = await conn.fetchval(
            "INSERT INTO tickets (kind, key, subject, contact) VALUES ('shipping_problem', 'page:t1',"
            " 'Order #7 is has-issues at Printify', 'ada@example.com') RETURNING id"
        )
        reader = app.test_client()
        ro_csrf = await sign_in(reader, tokens["reader"])
        page = await (await reader.get(f"/admin/tickets?id={ticket_id}")).get_data(as_text=True)
        assert "has-issues at Printify" in page and '<button type="submit">Assign' not in page
        refused = await reader.post(f"/admin/tickets/{ticket_id}/close", form={"csrf_token": ro_csrf})
        assert refused.status_code == 403
        client = app.test_client()
        csrf = await sign_in(client, tokens["admin"])
        assert (await client.get("/admin/tickets?status=nope")).status_code == 404
        assert (await client.post(f"/admin/tickets/{ticket_id}/assign", form={"text": "ana"})).status_code == 403
        with running_worker({"orders"}):
            for action, text in (("assign", "ana"), ("comment", "asked Printify"), ("close", "reprinted")):
                answer = await client.post(
                    f"/admin/tickets/{ticket_id}/{action}", form={"csrf_token": csrf, "text": text}
                )
                assert answer.status_code == 303, action
            await eventually(
                lambda: conn.fetchval(
                    "SELECT status = 'closed' AND assignee = 'ana' FROM tickets WHERE id = $1", ticket_id
                ),
                what="the ticket closed",
            )
        closed = await (await client.get(f"/admin/tickets?status=closed&id={ticket_id}")).get_data(as_text=True)
        assert "asked Printify" in closed and "reprinted" in closed
        assert (
            await client.post(f"/admin/tickets/{ticket_id}/comment", form={"csrf_token": csrf, "text": ""})
        ).status_code == 400
    finally:
        await conn.close()
