"""Every request gets an id (echoed, carried by what it enqueues) and is counted by endpoint."""

from __future__ import annotations

import json
import re
import uuid

import redis

import actors
from tests.web.conftest import bearer
from web.enqueue import random_uuid


def enqueued_request_ids(redis_client: redis.Redis) -> list[str]:
    raw = redis_client.hvals(actors.broker.jobs.keys.messages("default"))
    return [json.loads(message)["options"]["request_id"] for message in raw]


async def test_a_new_id_is_made_echoed_and_carried_by_the_message(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    request_id = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert enqueued_request_ids(redis_client) == [request_id]
    again = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert again.headers["X-Request-ID"] != request_id  # one per request


async def test_the_callers_id_is_kept_when_it_looks_like_one(client, tokens, redis_client: redis.Redis) -> None:
    headers = {**bearer(tokens["jobs"]), "X-Request-ID": "shop-42.retry:1"}
    response = await client.post("/v1/jobs/ping", json={}, headers=headers)
    assert response.headers["X-Request-ID"] == "shop-42.retry:1"
    assert enqueued_request_ids(redis_client) == ["shop-42.retry:1"]


async def test_a_callers_id_that_does_not_look_like_one_is_replaced(client, tokens, redis_client: redis.Redis) -> None:
    for bad in ("has spaces", "<script>", "x" * 129, ""):
        headers = {**bearer(tokens["jobs"]), "X-Request-ID": bad}
        response = await client.post("/v1/jobs/ping", json={}, headers=headers)
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"]), bad


async def test_refused_and_unknown_requests_are_tagged_and_counted(client, tokens) -> None:
    def count(text: str, endpoint: str, status: int) -> float:
        pattern = (
            rf'backroom_http_requests_total\{{endpoint="{re.escape(endpoint)}",method="POST",'
            rf'status="{status}"\}} ([0-9.e+]+)'
        )
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    before = await (await client.get("/metrics", headers=bearer(tokens["reader"]))).get_data(as_text=True)
    refused = await client.post("/v1/jobs/ping", json={})
    assert refused.status_code == 401 and refused.headers["X-Request-ID"]
    accepted = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert accepted.status_code == 202
    unknown = await client.post("/v1/nowhere", json={})
    assert unknown.status_code == 404 and unknown.headers["X-Request-ID"]
    after = await (await client.get("/metrics", headers=bearer(tokens["reader"]))).get_data(as_text=True)
    assert count(after, "jobs.post_ping", 401) == count(before, "jobs.post_ping", 401) + 1
    assert count(after, "jobs.post_ping", 202) == count(before, "jobs.post_ping", 202) + 1
    assert count(after, "unknown", 404) == count(before, "unknown", 404) + 1
    assert 'backroom_http_request_seconds_count{endpoint="jobs.post_ping"}' in after


def test_the_redis_ids_the_web_makes_are_random_version_4_uuids() -> None:
    made = [random_uuid() for _ in range(2000)]
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert len(set(made)) == len(made)
    assert {text[19] for text in made} == set("89ab")  # every variant digit turns up: those bits are random
