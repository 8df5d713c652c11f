"""GET /v1/items: filters, cursor pages, public fields only, scopes."""

from __future__ import annotations

import secrets

import asyncpg

from tests.web.conftest import bearer


async def _items(database_url: str, word: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        ids = []
        for n, (status, kind) in enumerate(
            [
                ("pending", "one_of_one"),
                ("available", "stable"),
                ("available", "one_of_one"),
                ("available", "stable"),
                ("sold", "one_of_one"),
            ]
        ):
            ids.append(
                await conn.fetchval(
                    "INSERT INTO items (source, source_listing_id, source_url, title, brand, kind, status, stock,"
                    " image_urls) VALUES ('listsrc', $1, 'https://www.vinted.fr/items/1-secret', $2, 'Brand%_x', $3,"
                    " $4, $5, '{https://images.vinted.net/secret.jpg}') RETURNING id",
                    secrets.token_hex(6),
                    f"{word} piece {n}",
                    kind,
                    status,
                    3 if kind == "stable" else None,
                )
            )
        return ids
    finally:
        await conn.close()


async def test_filters_pages_and_public_fields(client, tokens, database_url) -> None:
    word = f"zq{secrets.token_hex(3)}"
    ids = await _items(database_url, word)
    page = await client.get(f"/v1/items?text={word.upper()}&limit=2", headers=bearer(tokens["jobs"]))
    assert page.status_code == 200
    first = await page.get_json()
    assert [i["id"] for i in first["items"]] == [ids[3], ids[2]] and first["next_cursor"] == f"i{ids[2]}"
    rest = await (
        await client.get(f"/v1/items?text={word}&limit=2&cursor={first['next_cursor']}", headers=bearer(tokens["jobs"]))
    ).get_json()
    assert [i["id"] for i in rest["items"]] == [ids[1]] and rest["next_cursor"] is None
    body = str(first)
    assert "vinted" not in body and "listsrc" not in body and "source" not in body
    stable = await (await client.get(f"/v1/items?text={word}&kind=stable", headers=bearer(tokens["jobs"]))).get_json()
    assert [i["id"] for i in stable["items"]] == [ids[3], ids[1]]
    literal = await (await client.get("/v1/items?text=%25_x&limit=200", headers=bearer(tokens["jobs"]))).get_json()
    assert {ids[1], ids[2], ids[3]} <= {i["id"] for i in literal["items"]}  # % and _ matched literally


async def test_pending_and_source_need_admin_read(client, tokens, database_url) -> None:
    word = f"zq{secrets.token_hex(3)}"
    ids = await _items(database_url, word)
    refused = await client.get(f"/v1/items?status=pending&text={word}", headers=bearer(tokens["jobs"]))
    assert refused.status_code == 403
    pending = await (
        await client.get(f"/v1/items?status=pending&source=listsrc&text={word}", headers=bearer(tokens["admin"]))
    ).get_json()
    assert [i["id"] for i in pending["items"]] == [ids[0]]
    for query in (
        "status=gone",
        "limit=0",
        "limit=201",
        "cursor=12",
        "cursor=i0",
        "source=BAD!",
        "kind=big",
        "text=" + "x" * 101,
    ):
        response = await client.get(f"/v1/items?{query}", headers=bearer(tokens["admin"]))
        assert response.status_code in (400, 422), query
    assert (await client.get("/v1/items")).status_code == 401


async def test_the_review_page_lists_pending_items_and_queues_a_decision(
    client, tokens, database_url, redis_client
) -> None:
    import actors
    from tests.web.test_admin_pages import sign_in

    word = f"zq{secrets.token_hex(3)}"
    ids = await _items(database_url, word)
    csrf = await sign_in(client, tokens["admin"])
    page = await (await client.get(f"/admin/review?text={word}")).get_data(as_text=True)
    assert f"{word} piece 0" in page and f"{word} piece 1" not in page  # pending only
    assert "vinted" not in page
    posted = await client.post(f"/admin/review/{ids[0]}/approve", form={"csrf_token": csrf, "status": "pending"})
    assert posted.status_code == 303
    queued = redis_client.hvals(actors.broker.jobs.keys.messages("ingest"))
    assert any(b"approve_item" in m and str(ids[0]).encode() in m for m in queued)
    assert (await client.get("/admin/review?status=nope")).status_code == 404
