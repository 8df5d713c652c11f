"""The watches with a real worker: a silent edge node alerts once per silence; dead letters alert when they grow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, UTC
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.common import current_millis
from dramatiq.message import Message

import actors
from actors.ops import ping
from actors.watch import check_edge_nodes, watch_dead_letters, watch_key
from broker.deadletters import DeadLetters
from broker.edge_registry import write_beat
from domain.edge_registry import EdgeBeat
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status

KEYS = actors.broker.jobs.keys


@pytest.fixture()
def default_worker(redis_client: redis.Redis) -> Iterator[dramatiq.Worker]:
    """A real worker on `default` only: the alerts it sends wait on `notify` to be read."""
    worker = dramatiq.Worker(actors.broker, queues={"default"}, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking").writer.flush()


def alerts(client: redis.Redis) -> list[list[Any]]:
    """The args (channel, recipient, template, data, key) of every notify message waiting, oldest first."""
    messages = [Message.decode(p) for p in client.hvals(KEYS.messages("notify"))]
    return [m.args for m in sorted(messages, key=lambda m: m.message_timestamp) if m.actor_name == "notify"]


def run(actor: dramatiq.Actor) -> Any:
    """Run the actor on the worker; its result."""
    return wait_for_status(actor.send().message_id, JobStatus.SUCCEEDED).result


def beat(client: redis.Redis, node_id: str, *, seconds_ago: float = 0) -> None:
    when = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    write_beat(client, KEYS, EdgeBeat(node_id=node_id, pid=1, version="1", host=node_id, last_beat=when), ttl_s=600)


def test_a_node_that_goes_silent_alerts_once_per_silence(
    redis_client: redis.Redis, default_worker: dramatiq.Worker
) -> None:
    beat(redis_client, "pi-1")
    beat(redis_client, "pi-2")
    beat(redis_client, "pi-old", seconds_ago=3600)  # silent before the watch ever saw it live: no alert
    assert run(check_edge_nodes) == {"live": ["pi-1", "pi-2"], "alerted": []}
    beat(redis_client, "pi-1", seconds_ago=120)  # pi-1 stops beating
    assert run(check_edge_nodes)["alerted"] == ["pi-1"]
    assert run(check_edge_nodes)["alerted"] == []  # still silent: not alerted again
    (first,) = alerts(redis_client)
    channel, recipient, template, data, key = first
    assert (channel, recipient, template) == ("push", "admin", "ops_message")
    assert data["title"] == "Edge node pi-1 went silent" and key.startswith("edge_node_silent:pi-1:")
    beat(redis_client, "pi-1")  # back
    assert run(check_edge_nodes) == {"live": ["pi-1", "pi-2"], "alerted": []}
    beat(redis_client, "pi-1", seconds_ago=120)  # a new silence
    assert run(check_edge_nodes)["alerted"] == ["pi-1"]
    keys = [a[4] for a in alerts(redis_client)]
    assert len(keys) == 2 and keys[0] != keys[1]


def die(queue_tag: str) -> str:
    """A ping that fails with no retries: a real dead letter on `default`; its job id."""
    job_id = ping.send_with_options(kwargs={"message": queue_tag, "fail": True}, max_retries=0).message_id
    wait_for_status(job_id, JobStatus.DEAD)
    return job_id


def after_last_check() -> None:
    """Make sure the next dead letter is stamped after the watch's last check (same-millisecond guard)."""
    checked = int(actors.broker.client.get(watch_key("dead:checked")))
    while current_millis() <= checked:
        pass


def test_dead_letters_alert_when_they_grow_and_not_otherwise(
    redis_client: redis.Redis, default_worker: dramatiq.Worker
) -> None:
    die("before the first check")
    assert run(watch_dead_letters) == {"grown": {}}  # the first check only records
    assert run(watch_dead_letters) == {"grown": {}}
    after_last_check()
    die("one")
    die("two")
    assert run(watch_dead_letters) == {"grown": {"default": 2}}
    (alert,) = alerts(redis_client)
    assert alert[3]["title"] == "Dead letters grew on default"
    assert "default: 2 new dead letter(s), 3 in all (ping x2)" in alert[3]["text"]
    assert run(watch_dead_letters) == {"grown": {}}  # nothing new since
    dead = DeadLetters.for_broker(actors.broker)
    dead.discard("default", [item.redis_id for item in dead.list("default").items[:2]])  # the count shrinks
    assert run(watch_dead_letters) == {"grown": {}}
    assert len(alerts(redis_client)) == 1
