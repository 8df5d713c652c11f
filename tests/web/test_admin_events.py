"""/v1/admin/endpoints: scopes, bounds, the secret shown once, the delivery log, replay, audit."""

from __future__ import annotations

import asyncpg
import pytest

from tests.admin_support import running_worker
from tests.events_support import fast_retries, forget_backlog, storefronts  # noqa: F401
from tests.orders_support import insert_item
from tests.web.conftest import bearer
from tests.waiting import eventually, wait_until

BASE = "/v1/admin/endpoints"


async def _clean(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await forget_backlog(conn)
    finally:
        await conn.close()


async def test_reads_need_admin_read_and_changes_need_admin(client, tokens) -> None:
    assert (await client.get(BASE)).status_code == 401
    assert (await client.get(BASE, headers=bearer(tokens["jobs"]))).status_code == 403
    assert (await client.get(BASE, headers=bearer(tokens["reader"]))).status_code == 200
    body = {"name": "ro", "url": "https://shop.example.com/api/backroom"}
    assert (await client.post(BASE, json=body, headers=bearer(tokens["reader"]))).status_code == 403


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "a", "url": "ftp://x.example.com/hook"}, "url"),
        ({"name": "a", "url": "https://x.example.com/" + "a" * 2000}, "url"),
        ({"name": "", "url": "https://x.example.com/hook"}, "name"),
        ({"name": "a", "url": "https://x.example.com/hook", "event_types": ["item.exploded"]}, "event_types"),
        ({"name": "a", "url": "https://x.example.com/hook", "secret": "plain"}, "secret"),
        ({"name": "a", "url": "https://x.example.com/hook", "extra": 1}, "extra"),
    ],
)
async def test_bad_endpoints_are_422_naming_the_field(client, tokens, body, field) -> None:
    response = await client.post(BASE, json=body, headers=bearer(tokens["admin"]))
    assert response.status_code == 422
    assert any(name.startswith(field) for name in (await response.get_json())["errors"])


@pytest.mark.parametrize(
    "path", ["/9223372036854775808/disable", "/9223372036854775808/enable", "/9223372036854775808", "/0/disable"]
)
async def test_an_id_no_bigint_holds_is_404(client, tokens, path) -> None:
    """Ids past 2^63-1 name nothing (they reached Postgres and answered 500)."""
    method = client.delete if path.count("/") == 1 else client.post
    assert (await method(BASE + path, headers=bearer(tokens["admin"]))).status_code == 404


async def test_add_shows_the_secret_once_then_the_log_and_replay_work(
    client, tokens, storefronts, fast_retries, database_url
) -> None:
    await _clean(database_url)
    with running_worker():
        await _add_log_replay(client, tokens, storefronts[0], database_url)


async def _add_log_replay(client, tokens, front, database_url) -> None:  # type: ignore[no-untyped-def]
    created = await client.post(
        BASE,
        json={"name": "kickz", "url": front.url, "event_types": ["item.stock_changed"]},
        headers=bearer(tokens["admin"]),
    )
    assert created.status_code == 201
    endpoint = await created.get_json()
    assert endpoint["secret"].startswith("whsec_")
    taken = await client.post(BASE, json={"name": "kickz", "url": front.url}, headers=bearer(tokens["admin"]))
    assert taken.status_code == 409
    listed = await (await client.get(BASE, headers=bearer(tokens["reader"]))).get_json()
    assert [e["name"] for e in listed["endpoints"]] == ["kickz"] and listed["endpoints"][0]["secret"] is None
    conn = await asyncpg.connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=4)
        front.fail_next("events", 500)
        await conn.execute("UPDATE items SET stock = 3 WHERE id = $1", item)
        wait_until(lambda: len(front.events()) == 1, what="the stock change delivered")
        await eventually(
            lambda: conn.fetchval("SELECT count(*) = 2 FROM delivery_attempts"), what="two attempts logged"
        )
        log = await (
            await client.get(f"{BASE}/{endpoint['id']}/deliveries", headers=bearer(tokens["reader"]))
        ).get_json()
        assert [a["status_code"] for a in log["attempts"]] == [204, 500]  # newest first
        assert log["attempts"][1]["excerpt"] and log["attempts"][0]["event_type"] == "item.stock_changed"
        event_id = log["attempts"][0]["event_id"]
        replayed = await client.post(
            f"{BASE}/{endpoint['id']}/replay", json={"event_id": event_id}, headers=bearer(tokens["admin"])
        )
        assert (await replayed.get_json()) == {"replayed": 1}
        wait_until(lambda: len(front.events()) == 2, what="the replay delivered")
        assert front.received[1].headers["webhook-id"] == front.received[0].headers["webhook-id"]
        both = await client.post(
            f"{BASE}/{endpoint['id']}/replay",
            json={"event_id": 1, "since": "2026-01-01T00:00:00Z"},
            headers=bearer(tokens["admin"]),
        )
        assert both.status_code == 409
        missing = await client.post(f"{BASE}/999999/disable", headers=bearer(tokens["admin"]))
        assert missing.status_code == 404
        off = await client.post(f"{BASE}/{endpoint['id']}/disable", headers=bearer(tokens["admin"]))
        assert (await off.get_json())["changed"] is True
        actions = await eventually(
            lambda: conn.fetch(
                "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"endpoint:{endpoint['id']}"
            ),
            what="audit",
        )
        assert [a["action"] for a in actions] == ["endpoints.add", "endpoints.replay", "endpoints.disable"]
        assert (await client.delete(f"{BASE}/{endpoint['id']}", headers=bearer(tokens["admin"]))).status_code == 204
    finally:
        await conn.close()


async def test_the_storefronts_page_lists_endpoints_their_log_and_switches_them(client, tokens, database_url) -> None:
    from tests.web.test_admin_pages import sign_in

    await _clean(database_url)
    created = await client.post(
        BASE, json={"name": "gifter", "url": "https://gifter.example.com/hooks"}, headers=bearer(tokens["admin"])
    )
    endpoint_id = (await created.get_json())["id"]
    csrf = await sign_in(client, tokens["admin"])
    page = await (await client.get("/admin/storefronts")).get_data(as_text=True)
    assert "gifter" in page and "https://gifter.example.com/hooks" in page and "Nothing delivered yet" in page
    off = await client.post(f"/admin/storefronts/{endpoint_id}/disable", form={"csrf_token": csrf})
    assert off.status_code == 303
    assert "disabled by token:" in await (await client.get("/admin/storefronts")).get_data(as_text=True)
    bad = await client.post(f"/admin/storefronts/{endpoint_id}/replay", form={"csrf_token": csrf, "since": "soon"})
    assert bad.status_code == 400
    forged = await client.post(f"/admin/storefronts/{endpoint_id}/enable", form={"csrf_token": "x"})
    assert forged.status_code == 403
