"""JSON bodies: validated from the bytes, answered as before when they are not JSON, still documented."""
from __future__ import annotations

import redis

from tests.web.conftest import bearer


async def test_a_body_that_is_not_json_is_refused_and_nothing_enqueued(client, tokens, redis_client: redis.Redis) -> None:
    headers = bearer(tokens["jobs"])
    wrong_type = await client.post("/v1/jobs/ping", data="message=hi",
                                   headers={**headers, "Content-Type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 422  # as quart-schema answered it
    malformed = await client.post("/v1/jobs/ping", data='{"message": ', headers={**headers, "Content-Type": "application/json"})
    assert malformed.status_code == 400
    assert "error" in await malformed.get_json()
    empty = await client.post("/v1/jobs/ping", data="", headers={**headers, "Content-Type": "application/json"})
    assert empty.status_code == 400
    not_an_object = await client.post("/v1/jobs/ping", json=[1, 2], headers=headers)
    assert not_an_object.status_code == 422
    assert redis_client.dbsize() == 0


async def test_values_are_checked_as_json_types(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post("/v1/jobs/ping", json={"sleep_ms": "5", "fail": "no"}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202  # lax JSON mode, as before: "5" -> 5, "no" -> False
    record = await (await client.get((await response.get_json())["status_url"], headers=bearer(tokens["jobs"]))).get_json()
    assert record["kwargs"]["sleep_ms"] == 5 and record["kwargs"]["fail"] is False


async def test_request_bodies_stay_in_the_openapi_document(client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    ping = document["paths"]["/v1/jobs/ping"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(ping["properties"]) == {"message", "fail", "sleep_ms", "unique_key"}
    assert ping["additionalProperties"] is False
    for path in ("/v1/jobs/scrape", "/v1/jobs/notify"):
        assert "requestBody" in document["paths"][path]["post"], path
