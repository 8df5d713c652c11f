"""`backroom queues|jobs|workers|edge nodes|schedules|audit` and the admin side of `backroom dead`."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import redis
from typer.testing import CliRunner

import actors
from actors.ops import ping
from cli.main import app
from domain.jobs import JobStatus
from tests.admin_support import make_dead, reaches, record, running_worker, runs

runner = CliRunner()
KEYS = actors.broker.jobs.keys
WIDE = {"COLUMNS": "220"}


def last_audit(database_url: str, action: str) -> asyncpg.Record:
    async def fetch() -> asyncpg.Record:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchrow("select * from audit_log where action = $1 order by id desc limit 1", action)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def test_queues_table_json_and_pause_resume(redis_client: redis.Redis, database_url: str) -> None:
    actors.broker.enqueue(ping.message(message="q").copy(queue_name="notify"))
    table = runner.invoke(app, ["queues"], env=WIDE)
    assert table.exit_code == 0, table.output
    assert "notify" in table.output and "ready" in table.output
    data = json.loads(runner.invoke(app, ["queues", "--json"]).output)
    assert next(q for q in data if q["name"] == "notify")["ready"] == 1
    paused = runner.invoke(app, ["queues", "pause", "notify"])
    assert paused.exit_code == 0 and redis_client.smembers(KEYS.paused) == {b"notify"}
    assert "(paused)" in runner.invoke(app, ["queues"], env=WIDE).output
    row = last_audit(database_url, "queue.pause")
    assert row["actor"].startswith("cli:") and row["target"] == "queue:notify"
    assert runner.invoke(app, ["queues", "resume", "notify"]).exit_code == 0
    assert not redis_client.smembers(KEYS.paused)
    assert runner.invoke(app, ["queues", "pause", "nope"]).exit_code == 2


def test_jobs_list_and_show_every_attempt(redis_client: redis.Redis) -> None:
    job_id = make_dead("cli-show")
    listed = runner.invoke(app, ["jobs", "list", "--status", "dead", "--json"])
    assert [j["job_id"] for j in json.loads(listed.output)["items"]] == [job_id]
    shown = runner.invoke(app, ["jobs", "show", job_id], env=WIDE)
    assert shown.exit_code == 0, shown.output
    assert "attempt 1: dead" in shown.output and "RuntimeError: admin flaky failure" in shown.output
    assert "Traceback" in shown.output and "timeline" in shown.output
    detail = json.loads(runner.invoke(app, ["jobs", "show", job_id, "--json"]).output)
    assert detail["dead_letter"]["queue"] == "default"
    assert runner.invoke(app, ["jobs", "show", "no-such-job"]).exit_code == 1
    bad = runner.invoke(app, ["jobs", "list", "--cursor", "soon:x"])
    assert bad.exit_code == 2 and "cursor" in bad.output


def test_dead_requeue_is_audited_and_the_job_succeeds(redis_client: redis.Redis, database_url: str) -> None:
    job_id = make_dead("cli-requeue")
    with running_worker():
        result = runner.invoke(app, ["dead", "requeue", "default", job_id, "--json"])
        assert result.exit_code == 0, result.output
        reaches(job_id, JobStatus.SUCCEEDED)
    assert runs("cli-requeue") == 2
    row = last_audit(database_url, "dead.requeue")
    assert row["actor"].startswith("cli:") and json.loads(row["after"])["job_ids"] == [job_id]


def test_dead_replay_and_groups(redis_client: redis.Redis, database_url: str) -> None:
    old_id = make_dead("cli-replay", fail=True)
    groups = json.loads(runner.invoke(app, ["dead", "groups", "default", "--json"]).output)
    assert groups["groups"][0]["count"] == 1
    bad = runner.invoke(app, ["dead", "replay", "default", old_id, "--kwargs", "[1]"])
    assert bad.exit_code == 2
    with running_worker():
        replayed = runner.invoke(app, ["dead", "replay", "default", old_id, "--kwargs", '{"fail": false}', "--json"])
        assert replayed.exit_code == 0, replayed.output
        new_id = json.loads(replayed.output)["job_id"]
        done = reaches(new_id, JobStatus.SUCCEEDED)
    assert done.replayed_from == old_id and record(old_id).replayed_as == new_id
    assert runner.invoke(app, ["dead", "replay", "default", old_id]).exit_code == 1
    assert last_audit(database_url, "dead.replay")["target"] == f"job:{old_id}"


def test_workers_edge_schedules_and_audit_commands(redis_client: redis.Redis) -> None:
    from dramatiq.common import current_millis

    beat = current_millis() + 60_000  # alive throughout; the edge gateway beats in the edge namespace
    redis_client.zadd(KEYS.edge.heartbeats, {"gateway-1": beat})
    redis_client.hset(
        KEYS.edge.worker("gateway-1"),
        mapping={"name": "gw:9", "host": "gw", "pid": 9, "queues": "results", "last_beat": beat},
    )
    with running_worker():
        reaches(ping.send(message="w").message_id, JobStatus.SUCCEEDED)
        workers = json.loads(runner.invoke(app, ["workers", "--json"]).output)
        table = runner.invoke(app, ["workers"], env=WIDE)
    (worker,) = [w for w in workers["workers"] if w["alive"] and not w["edge"]]
    assert worker["rss_bytes"] > 0 and worker["processed"] >= 1 and worker["threads"] == 2
    assert "alive" in table.output and "MiB" in table.output and "gw:9 edge" in table.output
    edge = runner.invoke(app, ["edge", "nodes"], env=WIDE)
    assert edge.exit_code == 0, edge.output
    schedules = runner.invoke(app, ["schedules"], env=WIDE)
    assert schedules.exit_code == 0 and "schedule_purge_expired" in schedules.output
    audit = runner.invoke(app, ["audit", "--json"])
    assert audit.exit_code == 0 and isinstance(json.loads(audit.output), list)
