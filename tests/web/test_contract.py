"""The API as a contract: a document that tells the truth, no 5xx from any input, refusals at the door."""

from __future__ import annotations

import json
import secrets

import asyncpg
import pytest
import redis

from cli.stack import free_port
from db.schedules import select_schedule_config
from tests.admin_support import make_dead
from tests.web.conftest import bearer

TOO_BIG = 2**63  # one past what a bigint column holds


@pytest.fixture()
async def document(client) -> dict:  # type: ignore[no-untyped-def]
    return await (await client.get("/openapi.json")).get_json()


def operations(document: dict):  # type: ignore[no-untyped-def]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


async def test_every_error_answer_is_a_documented_problem_body(document: dict) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "errors"} <= set(problem["properties"])
    for path, method, operation in operations(document):
        errors = {status: response for status, response in operation["responses"].items() if int(status) >= 400}
        assert "503" in errors, (method, path)
        if operation.get("security") != []:
            assert {"401", "403"} <= set(errors), (method, path)
        if "requestBody" in operation:
            assert operation["requestBody"]["required"] is True, (method, path)
            if "application/json" in operation["requestBody"]["content"]:
                assert {"400", "422"} <= set(errors), (method, path)
            else:  # raw bytes (a seed's image): a wrong Content-Type is 415, no JSON to be malformed
                assert {"413", "415", "422"} <= set(errors) and "400" not in errors, (method, path)
        if any(parameter["in"] == "path" for parameter in operation["parameters"]):
            assert "404" in errors, (method, path)
        for status, response in errors.items():
            if path != "/healthz":
                assert list(response["content"]) == ["application/problem+json"], (method, path, status)


async def test_the_document_states_what_is_required_public_and_bounded(document: dict) -> None:
    assert not [path for path in document["paths"] if path.startswith("/admin")]  # HTML pages, not bearer
    assert document["paths"]["/healthz"]["get"]["security"] == []
    surface = next(p for p in document["paths"]["/v1/collections"]["get"]["parameters"] if p["name"] == "surface")
    assert surface["required"] is True
    order_id = document["paths"]["/v1/orders/{order_id}"]["get"]["parameters"][0]["schema"]
    assert (order_id["minimum"], order_id["maximum"]) == (1, 2**63 - 1)
    ping = document["paths"]["/v1/jobs/ping"]["post"]
    unique_key = next(p for p in ping["parameters"] if p["name"] == "Unique-Key")
    assert unique_key["in"] == "header" and unique_key["schema"]["maxLength"] == 200
    notify = document["paths"]["/v1/jobs/notify"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    data = notify["properties"]["data"]
    assert data["maxProperties"] == 16 and "16 KiB" in data["description"] and notify["allOf"]
    assert "409" in document["paths"]["/v1/jobs/scrape"]["post"]["responses"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/v1/orders/{TOO_BIG}", None, 404),
        ("POST", f"/v1/items/{TOO_BIG}/approve", None, 404),
        ("GET", f"/v1/items/{TOO_BIG}/similar", None, 404),
        ("GET", f"/v1/collections/{TOO_BIG}", None, 404),
        ("POST", "/v1/stylist/match", {"seed_ids": [1, TOO_BIG]}, 422),
        ("POST", "/v1/jobs/embed", {"item_ids": [TOO_BIG]}, 422),
        ("POST", "/v1/jobs/enrich", {"item_ids": [0]}, 422),
        ("GET", "/v1/seeds?q=a%00", None, 422),
        ("GET", f"/v1/seeds?offset={10**30}", None, 422),
        ("GET", "/v1/admin/audit?action=%00", None, 422),
        ("POST", "/v1/jobs/prune", {"source": "vin\u0000ted"}, 422),
        ("POST", "/v1/jobs/scrape", {"source": "vinted", "query": "a\u0000", "force": True}, 422),
        (
            "POST",
            "/v1/jobs/notify",
            {
                "channel": "email",
                "recipient": "a@example.com",
                "template": "ops_message",
                "data": {"title": "t", "text": "x" * 961},
                "idempotency_key": "k",
            },
            422,
        ),
        (
            "POST",
            "/v1/jobs/notify",
            {
                "channel": "email",
                "recipient": "a@example.com",
                "template": "ops_message",
                "data": {"title": "t", "text": "a\u0000"},
                "idempotency_key": "k",
            },
            422,
        ),
    ],
)
async def test_out_of_range_ids_and_unstorable_text_are_refused_not_a_server_error(
    client, tokens, redis_client: redis.Redis, method: str, path: str, body: dict | None, status: int
) -> None:
    response = await client.open(path, method=method, json=body, headers=bearer(tokens["admin"]))
    assert response.status_code == status and response.content_type == "application/problem+json"
    assert redis_client.dbsize() == 0  # nothing enqueued


async def test_the_unique_key_header_is_bounded_like_the_body_field(client, tokens, redis_client: redis.Redis) -> None:
    headers = bearer(tokens["jobs"])
    long_key = await client.post("/v1/jobs/ping", json={}, headers={**headers, "Unique-Key": "k" * 10_240})
    assert long_key.status_code == 422 and "header.unique-key" in (await long_key.get_json())["errors"]
    on_approve = await client.post("/v1/items/1/approve", headers={**bearer(tokens["admin"]), "Unique-Key": "k" * 201})
    assert on_approve.status_code in (404, 409, 422)  # its own key is used; the header is still checked if it enqueues
    assert redis_client.dbsize() == 0
    fits = await client.post("/v1/jobs/ping", json={}, headers={**headers, "Unique-Key": "k" * 200})
    assert fits.status_code == 202


async def test_a_body_past_one_mebibyte_is_413_before_parsing(client, tokens, redis_client: redis.Redis) -> None:
    body = b'{"message": "' + b"x" * (1024 * 1024) + b'"}'
    response = await client.post(
        "/v1/jobs/ping", data=body, headers={**bearer(tokens["jobs"]), "Content-Type": "application/json"}
    )
    assert response.status_code == 413 and (await response.get_json())["status"] == 413
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/jobs/scrape", {"source": "nobody-configured", "query": "jacket", "force": True}),
        ("/v1/jobs/prune", {"source": "nobody-configured"}),
        ("/v1/jobs/collections", {"surface": "nobody-configured"}),
    ],
)
async def test_unknown_sources_and_surfaces_are_refused_at_the_door(
    client, tokens, redis_client: redis.Redis, path: str, body: dict
) -> None:
    response = await client.post(path, json=body, headers=bearer(tokens["jobs"]))
    assert response.status_code == 404 and "is configured" in (await response.get_json())["detail"]
    assert redis_client.dbsize() == 0  # no job, so no retries and no dead letter


async def test_configured_sources_and_surfaces_are_accepted(client, tokens, pool) -> None:  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:  # what the suite's other tests left configured
        config = await select_schedule_config(conn)
    source, surface = config.sources[0].source, config.surfaces[0]
    for path, body in (
        ("/v1/jobs/scrape", {"source": source, "query": "jacket", "force": True}),
        ("/v1/jobs/prune", {"source": source}),
        ("/v1/jobs/collections", {"surface": surface}),
    ):
        response = await client.post(path, json=body, headers=bearer(tokens["jobs"]))
        assert response.status_code == 202, (path, await response.get_json())


async def test_postgres_unreachable_is_503_as_documented(app, client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # a pool on a port where nothing listens: a real refused connection, for a token not cached yet
    dead = await asyncpg.create_pool(f"postgresql://backroom@127.0.0.1:{free_port()}/none", min_size=0)
    monkeypatch.setitem(app.app.config, "DB_POOL", dead)
    response = await client.get("/v1/seeds", headers=bearer("brt_" + secrets.token_hex(32)))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert (await response.get_json())["title"] == "Service Unavailable"
    await dead.close()


async def test_a_replay_whose_arguments_hold_nul_is_audited_not_a_server_error(client, tokens, pool) -> None:  # type: ignore[no-untyped-def]
    old_id = make_dead("nul")
    response = await client.post(
        f"/v1/admin/dead/default/{old_id}/replay", json={"args": ["a\u0000b"]}, headers=bearer(tokens["admin"])
    )
    assert response.status_code == 201  # the replay is done: its audit row must be written too
    after = await pool.fetchval(
        "SELECT after FROM audit_log WHERE target = $1 AND action = 'dead.replay'", f"job:{old_id}"
    )
    assert json.loads(after)["args"] == ["a\ufffdb"]
