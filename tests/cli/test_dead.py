"""`backroom dead ...` through typer's CliRunner against the test Redis."""

from __future__ import annotations

import json

import redis
from typer.testing import CliRunner

import actors
from cli.dead import dead_app
from tests.cli.conftest import Bury

runner = CliRunner()
KEYS = actors.broker.jobs.keys


def test_list_shows_counts_and_a_table_per_queue(bury: Bury) -> None:
    rid, job_id = bury("one", error="PingFailed: the printer is on fire")
    bury("two", queue="ml")
    result = runner.invoke(dead_app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "default 1" in result.output and "ml 1" in result.output and "orders 0" in result.output
    assert rid in result.output and job_id in result.output and "the printer is on fire" in result.output


def test_list_json_for_one_queue_with_filters(bury: Bury) -> None:
    bury("a", error="Timeout: upstream")
    wanted, _ = bury("b", error="ValueError: bad sku")
    result = runner.invoke(dead_app, ["list", "--queue", "default", "--error", "SKU", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"]["default"] == 2
    page = data["queues"]["default"]
    assert page["total"] == 1 and [i["redis_id"] for i in page["items"]] == [wanted]
    assert page["items"][0]["kwargs"]["message"] == "b" and page["items"][0]["attempts"] == 3


def test_list_when_empty_and_unknown_queue(redis_client: redis.Redis) -> None:
    empty = runner.invoke(dead_app, ["list"])
    assert empty.exit_code == 0 and "no dead letters" in empty.output
    bad = runner.invoke(dead_app, ["list", "--queue", "nope"])
    assert bad.exit_code == 2 and "unknown queue" in bad.output


def test_requeue_by_redis_id_and_by_job_id(redis_client: redis.Redis, bury: Bury) -> None:
    first, _ = bury("x")
    _, second_job = bury("y")
    result = runner.invoke(dead_app, ["requeue", "default", first, second_job, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["requeued"]) == 2 and data["skipped"] == [] and second_job in data["job_ids"]
    assert redis_client.llen(KEYS.queue("default")) == 2
    again = runner.invoke(dead_app, ["requeue", "default", first])
    assert again.exit_code == 1 and "skipped 1" in again.output
    assert redis_client.llen(KEYS.queue("default")) == 2


def test_requeue_all_matching_an_error(redis_client: redis.Redis, bury: Bury) -> None:
    bury("a", error="Timeout: upstream")
    bury("b", error="Timeout: upstream again")
    kept, _ = bury("c", error="ValueError: bad")
    result = runner.invoke(dead_app, ["requeue", "default", "--all-matching", "--error", "timeout"])
    assert result.exit_code == 0, result.output
    assert "requeued 2" in result.output
    assert [m.decode() for m in redis_client.zrange(KEYS.dead("default"), 0, -1)] == [kept]


def test_requeue_refuses_ambiguous_selections(bury: Bury) -> None:
    rid, _ = bury("a")
    assert runner.invoke(dead_app, ["requeue", "default"]).exit_code == 2
    assert runner.invoke(dead_app, ["requeue", "default", rid, "--all-matching"]).exit_code == 2
    assert runner.invoke(dead_app, ["requeue", "default", rid, "--error", "x"]).exit_code == 2


def test_discard_asks_first_and_shows_how_many(redis_client: redis.Redis, bury: Bury) -> None:
    bury("a", error="Timeout: 1")
    bury("b", error="Timeout: 2")
    bury("c", error="Other: 3")
    declined = runner.invoke(dead_app, ["discard", "default", "--all-matching", "--error", "timeout"], input="n\n")
    assert declined.exit_code == 1 and "Discard 2 matching dead letter(s) from default?" in declined.output
    assert redis_client.zcard(KEYS.dead("default")) == 3
    accepted = runner.invoke(dead_app, ["discard", "default", "--all-matching", "--error", "timeout"], input="y\n")
    assert accepted.exit_code == 0 and "discarded 2" in accepted.output
    assert redis_client.zcard(KEYS.dead("default")) == 1


def test_discard_ids_with_yes_and_json(redis_client: redis.Redis, bury: Bury) -> None:
    rid, job_id = bury("a")
    result = runner.invoke(dead_app, ["discard", "default", rid, "missing-id", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"discarded": 1, "unknown": ["missing-id"]}
    assert redis_client.hexists(KEYS.job(job_id), "discarded_at") and redis_client.ttl(KEYS.job(job_id)) > 0
    assert runner.invoke(dead_app, ["discard", "default", rid, "--json"]).exit_code == 2  # --json needs --yes


def test_discard_all_without_filters_says_all(redis_client: redis.Redis, bury: Bury) -> None:
    bury("a", queue="notify")
    result = runner.invoke(dead_app, ["discard", "notify", "--all-matching"], input="y\n")
    assert result.exit_code == 0 and "Discard 1 ALL dead letter(s)" in result.output
    assert redis_client.zcard(KEYS.dead("notify")) == 0
