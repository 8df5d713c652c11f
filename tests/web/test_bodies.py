"""JSON bodies: validated from the bytes, answered as before when they are not JSON, still documented."""

from __future__ import annotations

import pytest
import redis

from tests.web.conftest import bearer


async def test_a_body_that_is_not_json_is_refused_and_nothing_enqueued(
    client, tokens, redis_client: redis.Redis
) -> None:
    headers = bearer(tokens["jobs"])
    wrong_type = await client.post(
        "/v1/jobs/ping", data="message=hi", headers={**headers, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert wrong_type.status_code == 422  # as quart-schema answered it
    malformed = await client.post(
        "/v1/jobs/ping", data='{"message": ', headers={**headers, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.content_type == "application/problem+json"
    reason = await malformed.get_json()
    assert reason["status"] == 400 and reason["title"] == "Bad Request" and "EOF while parsing" in reason["detail"]
    empty = await client.post("/v1/jobs/ping", data="", headers={**headers, "Content-Type": "application/json"})
    assert empty.status_code == 400
    not_an_object = await client.post("/v1/jobs/ping", json=[1, 2], headers=headers)
    assert not_an_object.status_code == 422
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/jobs/ping", {"fail": "yes"}, "fail"),
        ("/v1/jobs/ping", {"sleep_ms": False}, "sleep_ms"),
        ("/v1/jobs/ping", {"sleep_ms": "5"}, "sleep_ms"),
        ("/v1/jobs/embed", {"item_ids": [False]}, "item_ids.0"),
        ("/v1/jobs/embed", {"force": 0}, "force"),
        ("/v1/jobs/enrich", {"item_ids": [1], "force": "true"}, "force"),
    ],
)
async def test_values_are_taken_as_their_json_types(
    client, tokens, redis_client: redis.Redis, path: str, body: dict, field: str
) -> None:
    response = await client.post(path, json=body, headers=bearer(tokens["jobs"]))
    assert response.status_code == 422 and response.content_type == "application/problem+json"
    assert field in (await response.get_json())["errors"]
    assert redis_client.dbsize() == 0


async def test_request_bodies_stay_in_the_openapi_document(client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    ping = document["paths"]["/v1/jobs/ping"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(ping["properties"]) == {"message", "fail", "sleep_ms", "unique_key"}
    assert ping["additionalProperties"] is False
    for path in ("/v1/jobs/scrape", "/v1/jobs/notify"):
        assert "requestBody" in document["paths"][path]["post"], path
