"""/v1/tickets and /v1/orders/{id}/refund-request through the app, with a real worker behind."""

from __future__ import annotations

from actors.orders import handle_stripe_event
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect, fake, fakes, insert_item, order_of  # noqa: F401
from tests.web.conftest import bearer
from tests.web.test_webhooks import running_worker  # noqa: F401
from tests.waiting import eventually


async def test_admins_list_assign_comment_and_close_a_ticket(
    fake, client, tokens, running_worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=3, price_cents=2000)
        event = fake.stripe.checkout_completed(items=str(item), amount_total=2000, email="ada@example.com")
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        order = await order_of(conn, event["data"]["object"]["id"])
        await conn.execute("UPDATE orders SET paid_at = now() - interval '60 days' WHERE id = $1", order["id"])
        view = await (await client.get(f"/v1/orders/{order['id']}", headers=bearer(tokens["reader"]))).get_json()
        assert view["paid_at"] is not None and view["dispute_status"] is None and view["refunded_cents"] is None
        url = f"/v1/orders/{order['id']}/refund-request"
        wrong = await client.post(url, json={"email": "eve@example.com"}, headers=bearer(tokens["jobs"]))
        assert wrong.status_code == 404
        assert (
            await client.post(
                url, json={"email": "ada@example.com", "reason": "x" * 2001}, headers=bearer(tokens["jobs"])
            )
        ).status_code == 422
        asked = await client.post(
            url, json={"email": "ADA@example.com", "reason": "too small"}, headers=bearer(tokens["jobs"])
        )
        assert asked.status_code == 202
        ticket_id = await eventually(
            lambda: conn.fetchval("SELECT id FROM tickets WHERE order_id = $1 AND status = 'waiting'", order["id"]),
            what="the ticket",
        )
        listed = await (await client.get("/v1/tickets?status=waiting", headers=bearer(tokens["reader"]))).get_json()
        assert ticket_id in [t["id"] for t in listed["tickets"]]
        assert (await client.get("/v1/tickets?limit=1000", headers=bearer(tokens["reader"]))).status_code == 422
        assert (
            await client.post(f"/v1/tickets/{ticket_id}/close", json={}, headers=bearer(tokens["reader"]))
        ).status_code == 403
        steps = [("assign", {"assignee": "ana"}), ("comments", {"body": "called the buyer"}), ("close", {})]
        for path, body in steps:
            answer = await client.post(f"/v1/tickets/{ticket_id}/{path}", json=body, headers=bearer(tokens["admin"]))
            assert answer.status_code == 202, path
            wait_for_status((await answer.get_json())["job_id"], JobStatus.SUCCEEDED)
        view = await (await client.get(f"/v1/tickets/{ticket_id}", headers=bearer(tokens["reader"]))).get_json()
        assert view["status"] == "closed" and view["assignee"] == "ana" and view["contact"] == "ada@example.com"
        assert [e["action"] for e in view["thread"]] == ["opened", "assigned", "comment", "closed"]
        assert view["thread"][0]["body"] == "too small"
        assert (
            await client.post(f"/v1/tickets/{ticket_id}/comments", json={"body": " "}, headers=bearer(tokens["admin"]))
        ).status_code == 422
        assert (
            await client.post("/v1/tickets/99999999/close", json={}, headers=bearer(tokens["admin"]))
        ).status_code == 404
        assert (
            await client.post(
                f"/v1/tickets/{ticket_id}/assign", json={"assignee": "ana", "x": 1}, headers=bearer(tokens["admin"])
            )
        ).status_code == 422
    finally:
        await conn.close()
