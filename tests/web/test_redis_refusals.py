"""A full (maxmemory, noeviction) or read-only (replica) Redis: 503 with Retry-After, and /healthz names it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.web.conftest import bearer


@pytest.fixture(params=["full", "read-only"])
def refusing_redis(request: pytest.FixtureRequest, redis_client: redis.Redis) -> Iterator[str]:
    """The suite's Redis refusing writes, as a full or a read-only one does; restored afterwards."""
    if request.param == "full":
        redis_client.config_set("maxmemory", "1")  # any used memory is over it: every write is refused (OOM)
    else:
        redis_client.replicaof("127.0.0.1", "1")  # a replica (of nothing reachable) refuses writes: READONLY
    try:
        yield request.param
    finally:
        redis_client.config_set("maxmemory", "0")
        redis_client.replicaof("NO", "ONE")


async def test_an_enqueue_on_a_refusing_redis_is_a_503_with_retry_after(client, tokens, refusing_redis) -> None:
    response = await client.post("/v1/jobs/ping", json={"message": "hi"}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert refusing_redis in (await response.get_json())["detail"]


async def test_healthz_names_a_refusing_redis(client, refusing_redis) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "degraded" and body["redis"].startswith(f"down: {refusing_redis}")
