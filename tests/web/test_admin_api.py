"""/v1/admin on real Redis and Postgres, with a real worker: scopes, queues, dead letters, jobs, audit."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import pytest
import redis
from dramatiq.common import current_millis

import actors
from actors.ops import ping
from domain.jobs import REDACTED, JobStatus
from tests.admin_support import admin_flaky, make_dead, reaches, record, running_worker, runs
from tests.waiting import eventually
from tests.web.conftest import bearer

KEYS = actors.broker.jobs.keys


async def audit_rows(database_url: str, action: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch("select * from audit_log where action = $1 order by id", action)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/admin/queues",
        "/v1/admin/dead",
        "/v1/admin/jobs",
        "/v1/admin/workers",
        "/v1/admin/schedules",
        "/v1/admin/edge-nodes",
        "/v1/admin/audit",
    ],
)
async def test_reads_need_admin_read(client, tokens, path: str) -> None:
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=bearer(tokens["jobs"]))).status_code == 403
    for who in ("reader", "admin"):
        response = await client.get(path, headers=bearer(tokens[who]))
        assert response.status_code == 200, (who, await response.get_data())


async def test_admin_read_cannot_act(client, tokens, redis_client: redis.Redis) -> None:
    job_id = make_dead("ro")
    for path, body in (
        ("/v1/admin/queues/default/pause", None),
        ("/v1/admin/queues/default/resume", None),
        ("/v1/admin/dead/default/requeue", {"ids": [job_id]}),
        ("/v1/admin/dead/default/discard", {"ids": [job_id]}),
        (f"/v1/admin/dead/default/{job_id}/replay", {}),
    ):
        response = await client.post(path, json=body, headers=bearer(tokens["reader"]))
        assert response.status_code == 403, path
    assert redis_client.zcard(KEYS.dead("default")) == 1 and not redis_client.smembers(KEYS.paused)


async def test_queue_overview_counts_latency_and_outcomes(client, tokens, redis_client: redis.Redis) -> None:
    for i in range(3):
        actors.broker.enqueue(ping.message(message=f"m{i}").copy(queue_name="ml"))
    actors.broker.enqueue(ping.message(message="later").copy(queue_name="ml"), delay=60_000)
    make_dead("counted")
    body = await (await client.get("/v1/admin/queues", headers=bearer(tokens["reader"]))).get_json()
    queues = {q["name"]: q for q in body["queues"]}
    assert (queues["ml"]["ready"], queues["ml"]["delayed"], queues["ml"]["dead"]) == (3, 1, 0)
    assert queues["ml"]["latency_s"] > 0 and queues["edge"]["latency_s"] == 0
    assert queues["default"]["dead"] == 1 and queues["default"]["ready"] == 0
    assert queues["default"]["processed_5m"] == 1 and queues["default"]["failed_5m"] == 1
    assert queues["default"]["processed_60m"] == 1 and queues["default"]["paused"] is False


async def test_pause_stops_consumption_and_resume_restarts_it(client, tokens, database_url) -> None:
    with running_worker():
        paused = await client.post("/v1/admin/queues/default/pause", headers=bearer(tokens["admin"]))
        assert paused.status_code == 200 and (await paused.get_json())["paused"] is True
        message = admin_flaky.send("paused")
        # a job sent after it to another queue has run: the worker is fetching, and left the paused queue alone
        actors.broker.enqueue(ping.message(message="probe").copy(queue_name="ml"))
        await asyncio.to_thread(actors.broker.join, "ml", timeout=30_000)
        assert record(message.message_id).status is JobStatus.QUEUED and runs("paused") == 0
        queues = await (await client.get("/v1/admin/queues", headers=bearer(tokens["reader"]))).get_json()
        assert next(q for q in queues["queues"] if q["name"] == "default")["paused"] is True
        resumed = await client.post("/v1/admin/queues/default/resume", headers=bearer(tokens["admin"]))
        assert resumed.status_code == 200
        await asyncio.to_thread(reaches, message.message_id, JobStatus.SUCCEEDED)
    assert runs("paused") == 1
    pauses = await audit_rows(database_url, "queue.pause")
    assert pauses[-1]["actor"].startswith("token:") and "test-admin" in pauses[-1]["actor"]
    assert json.loads(pauses[-1]["after"]) == {"paused": True} and pauses[-1]["target"] == "queue:default"
    assert json.loads((await audit_rows(database_url, "queue.resume"))[-1]["before"]) == {"paused": True}


async def test_dead_job_requeued_from_the_api_succeeds(client, tokens, database_url) -> None:
    job_id = make_dead("again")
    listing = await (await client.get("/v1/admin/dead/default", headers=bearer(tokens["reader"]))).get_json()
    assert [i["job_id"] for i in listing["items"]] == [job_id] and "admin flaky failure" in listing["items"][0]["error"]
    with running_worker():
        response = await client.post(
            "/v1/admin/dead/default/requeue", json={"ids": [job_id]}, headers=bearer(tokens["admin"])
        )
        assert response.status_code == 200 and (await response.get_json())["job_ids"] == [job_id]
        done = await asyncio.to_thread(reaches, job_id, JobStatus.SUCCEEDED)
    assert done.requeued_at is not None and runs("again") == 2
    row = (await audit_rows(database_url, "dead.requeue"))[-1]
    assert json.loads(row["before"]) == {"ids": [job_id]} and json.loads(row["after"])["job_ids"] == [job_id]
    detail = await (await client.get(f"/v1/admin/jobs/{job_id}", headers=bearer(tokens["reader"]))).get_json()
    assert [a["outcome"] for a in detail["attempts"]] == ["dead", "succeeded"]
    assert "RuntimeError: admin flaky failure" in detail["attempts"][0]["traceback"]
    events = [e["event"] for e in detail["timeline"]]
    assert events == ["queued", "started", "dead", "requeued", "started", "succeeded"]


async def test_edit_and_replay_links_lineage(client, tokens, database_url, redis_client: redis.Redis) -> None:
    old_id = make_dead("orig", fail=True, api_key="s3cret")
    body = {"args": ["edited"], "kwargs": {"fail": False, "api_key": REDACTED}}
    with running_worker():
        response = await client.post(
            f"/v1/admin/dead/default/{old_id}/replay", json=body, headers=bearer(tokens["admin"])
        )
        assert response.status_code == 201, await response.get_data()
        result = await response.get_json()
        new = await asyncio.to_thread(reaches, result["job_id"], JobStatus.SUCCEEDED)
    assert new.result == {"tag": "edited", "klen": 6}  # the redacted secret kept its value ("s3cret")
    assert new.replayed_from == old_id and record(old_id).replayed_as == new.job_id
    assert result["kwargs"]["api_key"] == REDACTED and result["original_kwargs"]["fail"] is True
    assert redis_client.zcard(KEYS.dead("default")) == 0
    again = await client.post(f"/v1/admin/dead/default/{old_id}/replay", json={}, headers=bearer(tokens["admin"]))
    assert again.status_code == 404
    row = (await audit_rows(database_url, "dead.replay"))[-1]
    assert row["target"] == f"job:{old_id}" and json.loads(row["after"])["job_id"] == new.job_id
    assert "s3cret" not in row["before"] + row["after"]
    detail = await (await client.get(f"/v1/admin/jobs/{old_id}", headers=bearer(tokens["reader"]))).get_json()
    assert detail["record"]["replayed_as"] == new.job_id and detail["timeline"][-1]["event"] == "replayed"


async def test_an_edge_dead_letter_is_replayed_onto_the_edge_namespace(client, tokens, redis_client) -> None:
    from broker.edge_registry import send_edge_message
    from domain.contracts import SCRAPE_SOURCE

    old = send_edge_message(
        actors.broker, SCRAPE_SOURCE, {"source": "vinted", "query": "q", "limit": 1}, ttl_s=30, force=True
    )
    edge = KEYS.edge
    rid = redis_client.lpop(edge.queue("edge"))  # its last attempt died: on edge.XQ, its record dead
    redis_client.zadd(edge.dead("edge"), {rid: current_millis()})
    redis_client.hset(edge.dead_messages("edge"), rid, redis_client.hget(edge.messages("edge"), rid))
    redis_client.hset(edge.job(old.message_id), "status", "dead")
    response = await client.post(
        f"/v1/admin/dead/edge/{old.message_id}/replay",
        json={"kwargs": {"query": "new"}},
        headers=bearer(tokens["admin"]),
    )
    assert response.status_code == 201, await response.get_data()
    new_id = (await response.get_json())["job_id"]
    assert redis_client.llen(edge.queue("edge")) == 1 and redis_client.llen(KEYS.queue("edge")) == 0
    detail = await (await client.get(f"/v1/admin/jobs/{new_id}", headers=bearer(tokens["reader"]))).get_json()
    assert detail["record"]["replayed_from"] == old.message_id and detail["record"]["kwargs"]["query"] == "new"
    old_detail = await (
        await client.get(f"/v1/admin/jobs/{old.message_id}", headers=bearer(tokens["reader"]))
    ).get_json()
    assert old_detail["record"]["replayed_as"] == new_id


async def test_discard_and_bad_selections(client, tokens, database_url, redis_client: redis.Redis) -> None:
    job_id = make_dead("gone")
    neither = await client.post("/v1/admin/dead/default/discard", json={}, headers=bearer(tokens["admin"]))
    assert neither.status_code == 422
    unknown = await client.post("/v1/admin/dead/nope/discard", json={"ids": ["x"]}, headers=bearer(tokens["admin"]))
    assert unknown.status_code == 404
    done = await client.post(
        "/v1/admin/dead/default/discard", json={"all_matching": True, "error": "FLAKY"}, headers=bearer(tokens["admin"])
    )
    assert (await done.get_json())["discarded"] == 1 and redis_client.zcard(KEYS.dead("default")) == 0
    assert record(job_id).status is JobStatus.DEAD
    row = (await audit_rows(database_url, "dead.discard"))[-1]
    assert json.loads(row["before"]) == {"filter": {"error_contains": "FLAKY"}}


async def test_dead_letters_grouped_by_error_fingerprint(client, tokens) -> None:
    for i in range(3):
        make_dead(f"g{i}")
    body = await (await client.get("/v1/admin/dead/default/groups", headers=bearer(tokens["reader"]))).get_json()
    assert body["scanned"] == 3 and body["total"] == 3
    (group,) = body["groups"]  # "... g0 #1", "... g1 #1": numbers blanked, one fingerprint
    assert group["count"] == 3 and group["actors"] == ["admin_flaky"]


async def test_job_search_filters(client, tokens, redis_client: redis.Redis) -> None:
    first = admin_flaky.send("needle-one")
    ping.send(message="hay")
    admin_flaky.send("other")

    def search(**params):  # noqa: ANN202
        return client.get("/v1/admin/jobs", query_string=params, headers=bearer(tokens["reader"]))

    by_text = await (await search(text="NEEDLE")).get_json()
    assert [j["job_id"] for j in by_text["items"]] == [first.message_id] and by_text["complete"] is True
    by_actor = await (await search(actor="admin_flaky", status="queued")).get_json()
    assert len(by_actor["items"]) == 2
    assert (await (await search(status="dead")).get_json())["items"] == []
    page = await (await search(limit=1)).get_json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = await (await search(limit=5, cursor=page["next_cursor"])).get_json()
    ids = [page["items"][0]["job_id"]] + [j["job_id"] for j in rest["items"]]
    assert len(ids) == 3 == len(set(ids))
    assert (await search(status="bogus")).status_code == 422


async def test_job_search_pages_through_server_and_edge_jobs(client, tokens, redis_client: redis.Redis) -> None:
    from broker.edge_registry import send_edge_message
    from domain.contracts import SCRAPE_SOURCE

    server = ping.send(message="first")
    edge = send_edge_message(
        actors.broker, SCRAPE_SOURCE, {"source": "vinted", "query": "q", "limit": 1}, ttl_s=30, force=True
    )
    redis_client.zadd(KEYS.edge.job_index, {edge.message_id: current_millis() + 60_000})  # newest: first page
    page = await (
        await client.get("/v1/admin/jobs", query_string={"limit": 1}, headers=bearer(tokens["reader"]))
    ).get_json()
    assert [(j["job_id"], j["queue"]) for j in page["items"]] == [(edge.message_id, "edge")]
    rest = await (
        await client.get(
            "/v1/admin/jobs", query_string={"limit": 5, "cursor": page["next_cursor"]}, headers=bearer(tokens["reader"])
        )
    ).get_json()
    assert [(j["job_id"], j["queue"]) for j in rest["items"]] == [(server.message_id, "default")]


async def test_workers_and_orphans_with_rescue_time(client, tokens, redis_client: redis.Redis) -> None:
    message = actors.broker.enqueue(ping.message(message="held"))
    rid = message.options["redis_message_id"]
    redis_client.lrem(KEYS.queue("default"), 1, rid)
    beat = current_millis() - 60_000
    redis_client.zadd(KEYS.heartbeats, {"deadbeef": beat})
    redis_client.sadd(KEYS.acks("deadbeef", "default"), rid)
    redis_client.hset(
        KEYS.worker("deadbeef"),
        mapping={"name": "gone:42", "host": "gone", "pid": 42, "queues": "default", "threads": 2, "last_beat": beat},
    )
    with running_worker():

        async def after_the_first_heartbeat() -> dict | None:
            body = await (await client.get("/v1/admin/workers", headers=bearer(tokens["reader"]))).get_json()
            return body if any(w["alive"] for w in body["workers"]) else None

        body = await eventually(after_the_first_heartbeat, what="the worker's first heartbeat")
    live = [w for w in body["workers"] if w["alive"]]
    assert len(live) == 1 and live[0]["rss_bytes"] > 1_000_000 and "default" in live[0]["queues"]
    (orphan,) = body["orphans"]
    assert orphan["job_id"] == message.message_id and orphan["worker"] == "gone:42"
    timeout_ms = actors.broker.heartbeat_timeout
    from broker.recovery import reap_interval_s

    expected = beat + timeout_ms + reap_interval_s(timeout_ms) * 1000
    from datetime import datetime

    assert abs(datetime.fromisoformat(orphan["rescue_expected_at"]).timestamp() * 1000 - expected) < 2


async def test_edge_nodes_from_table_and_heartbeats(client, tokens, database_url, redis_client) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("delete from edge_nodes")
        await conn.execute(
            "insert into edge_nodes (node_id, version, host, last_seen, done_count, failed_count) "
            "values ('pi-kitchen', '1.2.0', 'pi-kitchen', now() - interval '1 hour', 40, 2)"
        )
        # edge workers beat in the edge namespace
        redis_client.zadd(KEYS.edge.heartbeats, {"edge-pi-hall-1": current_millis()})
        redis_client.hset(
            KEYS.edge.worker("edge-pi-hall-1"),
            mapping={
                "name": "pi-hall:7",
                "host": "pi-hall",
                "pid": 7,
                "queues": "edge",
                "threads": 2,
                "last_beat": current_millis(),
            },
        )
        body = await (await client.get("/v1/admin/edge-nodes", headers=bearer(tokens["reader"]))).get_json()
    finally:
        await conn.execute("delete from edge_nodes")
        await conn.close()
    nodes = {n["node_id"]: n for n in body["nodes"]}
    assert nodes["pi-hall"]["online"] is True and nodes["pi-hall"]["source"] == "heartbeat"
    kitchen = nodes["pi-kitchen"]
    assert kitchen["online"] is False and kitchen["offline_since"] and (kitchen["done"], kitchen["failed"]) == (40, 2)


async def test_schedules_and_openapi(client, tokens) -> None:
    body = await (await client.get("/v1/admin/schedules", headers=bearer(tokens["reader"]))).get_json()
    names = {s["actor"]: s for s in body["schedules"]}
    assert names["schedule_purge_expired"]["spec"] == "17 3 * * *" and names["schedule_purge_expired"]["next_tick"]
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["paths"]["/v1/admin/queues"]["get"]["summary"]
    assert "/v1/admin/dead/{queue}/{ident}/replay" in spec["paths"]


async def test_metrics_has_queue_gauges(client, tokens, redis_client: redis.Redis) -> None:
    actors.broker.enqueue(ping.message(message="gauge").copy(queue_name="notify"))
    text = (await (await client.get("/metrics", headers=bearer(tokens["reader"]))).get_data()).decode()
    assert 'backroom_queue_ready{queue="notify"} 1.0' in text
    assert 'backroom_queue_dead{queue="default"} 0.0' in text
    assert 'backroom_queue_latency_seconds{queue="notify"}' in text


async def test_redis_down_is_503_for_admin_and_metrics_still_answer(client, tokens, monkeypatch) -> None:
    from cli.stack import free_port

    dead = redis.ConnectionPool.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    monkeypatch.setattr(actors.broker.client, "connection_pool", dead)
    response = await client.get("/v1/admin/queues", headers=bearer(tokens["reader"]))
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    metrics = await client.get("/metrics", headers=bearer(tokens["reader"]))
    assert metrics.status_code == 200 and b"backroom_queue_stats_up 0.0" in await metrics.get_data()
