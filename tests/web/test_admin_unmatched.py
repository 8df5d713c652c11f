"""/v1/admin/unmatched-events: the report of provider events kept for orders Backroom does not know."""

from __future__ import annotations

import secrets

from tests.orders_support import connect
from tests.web.conftest import bearer

URL = "/v1/admin/unmatched-events"


async def keep(
    conn,
    provider: str,
    event_type: str,
    ref: str,
    *,  # type: ignore[no-untyped-def]
    processed: bool = False,
) -> tuple[int, str]:
    """A webhook_events row kept as the actors keep one; (row id, event id)."""
    event_id = f"evt_{secrets.token_hex(6)}"
    row_id = await conn.fetchval(
        "INSERT INTO webhook_events (provider, event_id, event_type, payload, order_ref, unmatched_at, processed_at)"
        " VALUES ($1, $2, $3, '{}', $4, now(), CASE WHEN $5 THEN now() END) RETURNING id",
        provider,
        event_id,
        event_type,
        ref,
        processed,
    )
    return row_id, event_id


async def test_kept_events_are_listed_newest_first_paged_and_filtered(client, tokens, database_url) -> None:
    conn = await connect(database_url)
    try:
        known = f"cs_{secrets.token_hex(8)}"
        await conn.execute("INSERT INTO orders (stripe_session_id, status) VALUES ($1, 'cancelled')", known)
        refund = await keep(conn, "stripe", "charge.refunded", f"pi_{secrets.token_hex(8)}")
        await keep(conn, "stripe", "checkout.session.expired", known)  # its order exists now: not reported
        await keep(conn, "stripe", "charge.dispute.created", "pi_done", processed=True)  # applied since
        expired = await keep(conn, "stripe", "checkout.session.expired", f"cs_{secrets.token_hex(8)}")
        printify = await keep(conn, "printify", "order:updated", secrets.token_hex(12))
    finally:
        await conn.close()
    top = printify[0] + 1
    first = await client.get(f"{URL}?before={top}&limit=2", headers=bearer(tokens["reader"]))
    assert first.status_code == 200
    page = await first.get_json()
    assert [(e["source"], e["event_id"], e["refers_to"]) for e in page["events"]] == [
        ("printify", printify[1], "printify_order"),
        ("stripe", expired[1], "checkout_session"),
    ]
    assert page["events"][0]["type"] == "order:updated" and page["events"][0]["received_at"]
    assert page["next_before"] == expired[0]
    rest = await (
        await client.get(f"{URL}?before={page['next_before']}&limit=1", headers=bearer(tokens["reader"]))
    ).get_json()
    assert [(e["event_id"], e["type"], e["refers_to"]) for e in rest["events"]] == [
        (refund[1], "charge.refunded", "payment_intent")
    ]
    stripe_only = await (
        await client.get(f"{URL}?source=stripe&before={top}&limit=200", headers=bearer(tokens["reader"]))
    ).get_json()
    ids = [e["event_id"] for e in stripe_only["events"]]
    assert printify[1] not in ids and {expired[1], refund[1]} <= set(ids) and stripe_only["next_before"] is None


async def test_bad_queries_and_tokens_get_problem_answers(client, tokens) -> None:
    for query in ("limit=0", "limit=201", "source=payload", "before=0", "before=9223372036854775808", "limit=x"):
        answer = await client.get(f"{URL}?{query}", headers=bearer(tokens["reader"]))
        assert answer.status_code == 422, query
        assert answer.content_type == "application/problem+json"
        assert (await answer.get_json())["errors"], query
    assert (await client.get(URL)).status_code == 401
    refused = await client.get(URL, headers=bearer(tokens["jobs"]))
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert (await client.get(URL, headers=bearer(tokens["admin"]))).status_code == 200
