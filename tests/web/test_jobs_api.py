"""/v1/jobs: validation, auth, enqueue, status, cancel and the 503 path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio
from dramatiq import Worker

import actors
from broker.enqueuer import AsyncEnqueuer
from broker.replication import ReplicaWait
from cli.stack import free_port
from domain.jobs import JobStatus
from tests.waiting import eventually
from tests.web.conftest import bearer


async def test_post_ping_enqueues_and_answers_202(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post("/v1/jobs/ping", json={"message": "hi"}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    body = await response.get_json()
    assert body["status_url"] == f"/v1/jobs/{body['job_id']}"
    assert redis_client.llen(actors.broker.jobs.keys.queue("default")) == 1
    status = await client.get(body["status_url"], headers=bearer(tokens["jobs"]))
    assert status.status_code == 200
    record = await status.get_json()
    assert record["status"] == "queued" and record["actor"] == "ping" and record["kwargs"]["message"] == "hi"


async def test_job_runs_in_a_real_worker_and_shows_succeeded(client, tokens) -> None:
    worker = Worker(actors.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        response = await client.post("/v1/jobs/ping", json={"message": "run"}, headers=bearer(tokens["jobs"]))
        url = (await response.get_json())["status_url"]

        async def finished() -> dict[str, Any] | None:
            record = await (await client.get(url, headers=bearer(tokens["jobs"]))).get_json()
            return record if record["status"] == "succeeded" and record["result"] is not None else None

        record = await eventually(finished, what="the job to succeed with its result")
        assert record["status"] == "succeeded" and record["result"] == {"message": "run"}
        assert record["attempts"] == 1 and record["worker"]
    finally:
        await asyncio.to_thread(worker.stop)


async def test_bad_body_is_422_naming_each_field(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post(
        "/v1/jobs/ping", json={"sleep_ms": -1, "fail": "maybe", "extra": 1}, headers=bearer(tokens["jobs"])
    )
    assert response.status_code == 422
    fields = (await response.get_json())["errors"]
    assert set(fields) == {"sleep_ms", "fail", "extra"}
    assert redis_client.dbsize() == 0  # nothing half-written


async def test_operations_validate_then_enqueue(client, tokens) -> None:
    bad = await client.post("/v1/jobs/notify", json={"channel": "fax"}, headers=bearer(tokens["jobs"]))
    assert bad.status_code == 422
    assert {"channel", "recipient", "template", "idempotency_key"} <= set((await bad.get_json())["errors"])
    good = await client.post("/v1/jobs/prune", json={"source": "grailed"}, headers=bearer(tokens["jobs"]))
    assert good.status_code == 202 and (await good.get_json())["job_id"]


async def test_unknown_operation_is_404_and_an_operation_is_no_job(client, tokens) -> None:
    response = await client.post("/v1/jobs/teleport", json={}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 404 and response.content_type == "application/problem+json"
    not_a_job = await client.get("/v1/jobs/ping", headers=bearer(tokens["jobs"]))
    assert not_a_job.status_code == 405 and set(not_a_job.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}])
async def test_missing_or_invalid_token_is_401(client, headers) -> None:
    response = await client.post("/v1/jobs/ping", json={}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_revoked_token_is_401(client, tokens) -> None:
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["revoked"]))
    assert response.status_code == 401


async def test_wrong_scope_is_403_and_admin_implies_jobs(client, tokens) -> None:
    reader = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["reader"]))
    assert reader.status_code == 403
    admin = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["admin"]))
    assert admin.status_code == 202


async def test_unknown_job_is_404(client, tokens) -> None:
    for job_id in ("00000000-0000-0000-0000-000000000000", "not-a-job"):
        response = await client.get(f"/v1/jobs/{job_id}", headers=bearer(tokens["jobs"]))
        assert response.status_code == 404


async def test_cancel_cancels_a_job_that_has_not_started(client, tokens) -> None:
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    url = (await response.get_json())["status_url"]
    cancelled = await client.post(f"{url}/cancel", headers=bearer(tokens["jobs"]))
    assert cancelled.status_code == 200
    assert (await cancelled.get_json())["status"] == "cancelled"
    again = await client.post(f"{url}/cancel", headers=bearer(tokens["jobs"]))
    assert again.status_code == 200
    assert (await client.get(url, headers=bearer(tokens["jobs"]))).status_code == 200  # cancelled, not deleted


async def test_cancel_of_a_finished_job_is_409(client, tokens, redis_client: redis.Redis) -> None:
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    job_id = (await response.get_json())["job_id"]
    redis_client.hset(actors.broker.jobs.keys.job(job_id), "status", JobStatus.SUCCEEDED.value)
    conflict = await client.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(tokens["jobs"]))
    assert conflict.status_code == 409


async def test_redis_unreachable_is_503_and_nothing_recorded(app, client, tokens, redis_client, monkeypatch) -> None:
    # point the Redis clients at a port where nothing listens: a real refused connection
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    dead = redis.ConnectionPool.from_url(dead_url, socket_connect_timeout=0.2)
    monkeypatch.setattr(actors.broker.client, "connection_pool", dead)
    async_dead = redis.asyncio.ConnectionPool.from_url(dead_url, socket_connect_timeout=0.2)
    monkeypatch.setattr(app.app.config["REDIS"], "connection_pool", async_dead)
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    health = await client.get("/healthz")
    assert health.status_code == 503 and (await health.get_json())["redis"].startswith("down")
    monkeypatch.undo()
    assert redis_client.dbsize() == 0


async def test_an_enqueue_no_replica_confirmed_is_503_saying_it_may_still_run(
    app, client, tokens, redis_client, monkeypatch
) -> None:
    # REDIS_WAIT_REPLICAS=1 against the suite's Redis, which has no replica: WAIT answers 0
    monkeypatch.setattr(actors.broker, "replica_wait", ReplicaWait(1, 50))
    monkeypatch.setitem(app.app.config, "ENQUEUER", AsyncEnqueuer(actors.broker, app.app.config["REDIS"]))
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "no replica confirmed" in (await response.get_json())["detail"]
    assert redis_client.zcard(actors.broker.jobs.keys.job_index) == 1  # the primary has it: it may still run


async def test_views_enqueue_through_the_enqueuer_opened_with_the_app(app, client, tokens, monkeypatch) -> None:
    enqueuer = app.app.config["ENQUEUER"]
    assert isinstance(enqueuer, AsyncEnqueuer) and enqueuer.client is app.app.config["REDIS"]
    sent: list[str] = []
    enqueue = enqueuer.enqueue

    async def counted(message, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(message.message_id)
        return await enqueue(message, **kwargs)

    monkeypatch.setattr(enqueuer, "enqueue", counted)
    response = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202 and sent == [(await response.get_json())["job_id"]]


async def test_healthz_writes_through_the_asyncio_client(app, client, monkeypatch) -> None:
    # only the asyncio client is cut off: the health check must notice (it no longer uses the sync one)
    dead = redis.asyncio.ConnectionPool.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(app.app.config["REDIS"], "connection_pool", dead)
    health = await client.get("/healthz")
    assert health.status_code == 503 and (await health.get_json())["redis"].startswith("down")


async def test_healthz_and_metrics_and_openapi(client, tokens) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert await health.get_json() == {"status": "ok", "redis": "ok", "postgres": "ok"}
    metrics = await client.get("/metrics", headers=bearer(tokens["reader"]))
    assert b"backroom_http_requests_total" in await metrics.get_data()
    spec = await (await client.get("/openapi.json")).get_json()
    assert "/v1/jobs/ping" in spec["paths"] and "/v1/jobs/{job_id}" in spec["paths"]
    assert spec["paths"]["/v1/jobs/ping"]["post"]["summary"]


async def test_unique_key_in_body_or_header_deduplicates(client, tokens, redis_client: redis.Redis) -> None:
    first = await (
        await client.post("/v1/jobs/ping", json={"unique_key": "u1"}, headers=bearer(tokens["jobs"]))
    ).get_json()
    again = await client.post(
        "/v1/jobs/ping", json={"message": "x"}, headers={**bearer(tokens["jobs"]), "Unique-Key": "u1"}
    )
    body = await again.get_json()
    assert again.status_code == 202 and body["job_id"] == first["job_id"] and body["deduplicated"] is True
    assert first["deduplicated"] is False
    assert redis_client.llen(actors.broker.jobs.keys.queue("default")) == 1
    record = await (await client.get(first["status_url"], headers=bearer(tokens["jobs"]))).get_json()
    assert "unique_key" not in record["kwargs"] and record["unique_key"] == "u1"
