"""Dead letters: listing, requeue (atomic, once), discard and trimming, with a real worker."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.common import current_millis
from dramatiq.message import Message

import actors
import broker.deadletters as deadletters_module
from broker.deadletters import DeadLetters
from domain.jobs import REDACTED, JobStatus
from tests.actors.helpers import wait_for_status
from tests.waiting import wait_until

FAIL_FLAG = "test:dlq:fail"
RUNS_KEY = "test:dlq:runs"
KEYS = actors.broker.jobs.keys


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=10_000)
def flaky_job(tag: str, api_key: str = "") -> dict:
    """Count each run; fail while the test's flag is set in Redis."""
    actors.broker.client.hincrby(RUNS_KEY, tag, 1)
    if actors.broker.client.exists(FAIL_FLAG):
        raise RuntimeError(f"flaky failure: {tag}")
    return {"tag": tag}  # not a bare str: JobStore cannot read back a str result (see the report)


def runs(client: redis.Redis, tag: str) -> int:
    return int(client.hget(RUNS_KEY, tag) or 0)


@pytest.fixture()
def dead(redis_client: redis.Redis) -> DeadLetters:
    return DeadLetters.for_broker(actors.broker)


@pytest.fixture()
def worker(redis_client: redis.Redis) -> Iterator[dramatiq.Worker]:
    worker = dramatiq.Worker(actors.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking").writer.flush()


def bury(
    client: redis.Redis,
    tag: str,
    *,
    at_ms: int,
    error: str | None = "RuntimeError: boom",
    retries: int = 0,
    record: bool = True,
    queue: str = "default",
    **options: Any,
) -> tuple[str, Message]:
    """Enqueue for real, then move the message to the DLQ the way Dramatiq's nack does."""
    message = actors.broker.enqueue(flaky_job.message(tag, api_key="k").copy(queue_name=queue))
    rid = message.options["redis_message_id"]
    stored = Message.decode(client.hget(KEYS.messages(queue), rid))
    stored = stored.copy(options={"retries": retries, **options})
    client.lrem(KEYS.queue(queue), 1, rid)
    client.hdel(KEYS.messages(queue), rid)
    client.zadd(KEYS.dead(queue), {rid: at_ms})
    client.hset(KEYS.dead_messages(queue), rid, stored.encode())
    job = KEYS.job(message.message_id)
    if record:
        client.hset(
            job,
            mapping={
                "status": "dead",
                "attempts": retries + 1,
                "finished_at": at_ms,
                "last_error": error or "",
                "traceback": "tb" if error else "",
            },
        )
        client.persist(job)
    else:
        client.delete(job)
    return rid, stored


def probe(worker: dramatiq.Worker) -> None:
    """Run one more job through the same queue: everything enqueued before it has been fetched."""
    message = flaky_job.send("probe")
    wait_for_status(message.message_id, JobStatus.SUCCEEDED)


def test_a_dead_job_requeued_runs_once_and_succeeds(
    redis_client: redis.Redis, dead: DeadLetters, worker: dramatiq.Worker
) -> None:
    redis_client.set(FAIL_FLAG, 1)
    message = flaky_job.send("a", api_key="secret-key")
    wait_for_status(message.message_id, JobStatus.DEAD, where=lambda r: r.traceback is not None)
    wait_until(
        lambda: dead.counts()["default"] == 1, what="the dead letter counted"
    )  # the nack follows the record write
    page = dead.list("default")
    assert page.total == 1 and runs(redis_client, "a") == 1
    item = page.items[0]
    assert (item.job_id, item.actor, item.args, item.kwargs) == (
        message.message_id,
        "flaky_job",
        ["a"],
        {"api_key": REDACTED},
    )
    assert item.error == "RuntimeError: flaky failure: a" and "flaky failure" in (item.traceback or "")
    assert (item.attempts, item.status) == (1, "dead")
    assert (item.expires_at - item.dead_at).total_seconds() * 1000 == pytest.approx(actors.broker.dead_message_ttl)

    redis_client.delete(FAIL_FLAG)
    result = dead.requeue("default", [item.redis_id])
    assert (result.requeued, result.job_ids, result.skipped) == ([item.redis_id], [message.message_id], [])
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert done.attempts == 2 and done.result == {"tag": "a"}
    assert dead.requeue("default", [item.redis_id]).skipped == [item.redis_id]  # the double click
    probe(worker)
    assert runs(redis_client, "a") == 2
    assert dead.counts()["default"] == 0
    raw = redis_client.hgetall(KEYS.job(message.message_id))
    assert b"requeued_at" in raw and b"finished_at" in raw  # finished again, by the new run
    assert 0 < redis_client.ttl(KEYS.job(message.message_id)) <= actors.broker.jobs.retention_s


def test_requeue_writes_a_fresh_message_and_record_in_one_step(redis_client: redis.Redis, dead: DeadLetters) -> None:
    old = current_millis() - 3_600_000
    rid, stored = bury(
        redis_client,
        "fresh",
        at_ms=old,
        retries=3,
        eta=old,
        traceback="tb",
        scheduled_at="x",
        requeue_timestamp=old,
        max_retries=5,
    )
    redis_client.hset(
        KEYS.dead_messages("default"), rid, stored.copy(queue_name="default.DQ", message_timestamp=old).encode()
    )
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(KEYS.wake("default"))
    pubsub.get_message(timeout=1)
    before = current_millis()
    result = dead.requeue("default", [rid])

    (new_rid,) = [i.decode() for i in redis_client.lrange(KEYS.queue("default"), 0, -1)]
    fresh = Message.decode(redis_client.hget(KEYS.messages("default"), new_rid))
    assert result.requeued == [rid] and new_rid != rid
    assert fresh.message_id == stored.message_id and fresh.queue_name == "default"
    assert fresh.options == {"redis_message_id": new_rid, "retries": 0, "max_retries": 5}
    assert fresh.message_timestamp >= before
    assert not redis_client.exists(KEYS.dead("default"), KEYS.dead_messages("default"))
    record = actors.broker.jobs.get(stored.message_id)
    assert record is not None and record.status is JobStatus.QUEUED and record.finished_at is None
    assert record.attempts == 4  # the history is kept; the next claim makes it 5
    raw = redis_client.hgetall(KEYS.job(stored.message_id))
    assert raw[b"rid"].decode() == new_rid and int(raw[b"requeued_at"]) >= before
    assert redis_client.ttl(KEYS.job(stored.message_id)) > 0
    assert pubsub.get_message(timeout=2)["channel"] == KEYS.wake("default").encode()
    pubsub.close()
    # the record is cancellable again: the cancel script finds the new redis id
    assert actors.broker.jobs.cancel(stored.message_id, now_ms=current_millis()) is JobStatus.CANCELLED
    assert redis_client.llen(KEYS.queue("default")) == 0


def test_requeue_without_a_job_record_recreates_one(redis_client: redis.Redis, dead: DeadLetters) -> None:
    rid, stored = bury(redis_client, "norecord", at_ms=current_millis(), record=False)
    assert dead.requeue("default", [rid]).requeued == [rid]
    record = actors.broker.jobs.get(stored.message_id)
    assert record is not None and record.status is JobStatus.QUEUED
    assert (record.actor, record.args, record.kwargs) == ("flaky_job", ["norecord"], {"api_key": REDACTED})


def test_eight_concurrent_requeues_of_one_id_move_it_once(redis_client: redis.Redis, dead: DeadLetters) -> None:
    rid, stored = bury(redis_client, "race", at_ms=current_millis())
    barrier = threading.Barrier(8)
    results: list[list[str]] = []

    def click() -> None:
        barrier.wait()
        results.append(dead.requeue("default", [rid]).requeued)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0] * 7 + [1]
    assert redis_client.llen(KEYS.queue("default")) == 1 and redis_client.hlen(KEYS.messages("default")) == 1
    worker = dramatiq.Worker(actors.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        wait_for_status(stored.message_id, JobStatus.SUCCEEDED)
        probe(worker)
    finally:
        worker.stop()
    assert runs(redis_client, "race") == 1


def test_a_message_is_never_in_neither_place_during_requeues(redis_client: redis.Redis, dead: DeadLetters) -> None:
    rids = [bury(redis_client, f"m{i}", at_ms=current_millis())[0] for i in range(150)]
    stop = threading.Event()
    snapshots: list[tuple[int, int]] = []

    def watch() -> None:
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        while not stop.is_set():
            with client.pipeline(transaction=True) as pipe:  # one snapshot
                pipe.hlen(KEYS.dead_messages("default")).hlen(KEYS.messages("default"))
                pipe.zcard(KEYS.dead("default")).llen(KEYS.queue("default"))
                xmsgs, msgs, xq, q = pipe.execute()
            snapshots.append((xmsgs + msgs, xq + q))
        client.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    for rid in rids:
        assert dead.requeue("default", [rid]).requeued == [rid]
    stop.set()
    watcher.join()
    assert len(snapshots) > 10 and set(snapshots) == {(150, 150)}


def test_a_concurrent_change_makes_the_transaction_retry(
    redis_client: redis.Redis, dead: DeadLetters, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid, _ = bury(redis_client, "w1", at_ms=current_millis())
    other, _ = bury(redis_client, "w2", at_ms=current_millis())
    calls: list[int] = []
    real_present = deadletters_module._present

    def meddling(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:  # between WATCH and EXEC another client requeues `other` and touches `rid`'s hash
            DeadLetters.for_broker(actors.broker).requeue("default", [other])
        return real_present(*args)

    monkeypatch.setattr(deadletters_module, "_present", meddling)
    result = dead.requeue("default", [rid, other])
    assert len(calls) == 3  # ours, the meddler's, ours again: the first EXEC was refused (WatchError)
    assert (result.requeued, result.skipped) == ([rid], [other])
    assert redis_client.llen(KEYS.queue("default")) == 2


def test_listing_pages_newest_first_and_filters(
    redis_client: redis.Redis, dead: DeadLetters, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = current_millis() - 100_000
    rids = [
        bury(redis_client, f"t{i}", at_ms=base + i * 1000, error="Timeout: slow" if i % 3 == 0 else "ValueError: bad")[
            0
        ]
        for i in range(10)
    ]
    monkeypatch.setattr(DeadLetters, "_walk", lambda *a: pytest.fail("an unfiltered page must not scan"))
    page = dead.list("default", offset=2, limit=3)
    assert page.total == 10 and [i.redis_id for i in page.items] == rids[::-1][2:5]
    timed = dead.list("default", since=base + 2000, until=base + 5000, limit=2)
    assert timed.total == 4 and [i.redis_id for i in timed.items] == [rids[5], rids[4]]
    monkeypatch.undo()
    monkeypatch.setattr(deadletters_module, "CHUNK", 3)
    errors = dead.list("default", error_contains="timeout", limit=2, offset=1)
    assert errors.total == 4 and [i.redis_id for i in errors.items] == [rids[6], rids[3]]
    first = dead.list("default", error_contains="valueerror", limit=1)  # chunks of 3 hold 2 matches each
    assert first.total == 6 and [i.redis_id for i in first.items] == [rids[8]]
    assert dead.list("default", actor="nobody").total == 0
    assert dead.list("default", actor="flaky_job", since=base + 8000).total == 2
    assert dead.counts() == {q: (10 if q == "default" else 0) for q in dead.queues}
    with pytest.raises(ValueError, match="unknown queue"):
        dead.list("nope")


def test_error_falls_back_to_the_payload_traceback(redis_client: redis.Redis, dead: DeadLetters) -> None:
    bury(
        redis_client,
        "tb",
        at_ms=current_millis(),
        record=False,
        retries=2,
        traceback="Traceback (most recent call last):\n  x\nKeyError: 'sku'\n",
    )
    (item,) = dead.list("default").items
    assert (item.error, item.attempts, item.status) == ("KeyError: 'sku'", 3, None)


def test_walk_survives_equal_scores_and_removals(
    redis_client: redis.Redis, dead: DeadLetters, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadletters_module, "CHUNK", 3)
    monkeypatch.setattr(deadletters_module, "BATCH", 2)
    at = current_millis()
    same = [bury(redis_client, f"s{i}", at_ms=at, error="Same: x")[0] for i in range(7)]
    others = [bury(redis_client, f"o{i}", at_ms=at - 10 - i, error="Other: y")[0] for i in range(4)]
    assert {i.redis_id for i in dead.list("default", error_contains="same", limit=50).items} == set(same)
    result = dead.requeue_matching("default", error_contains="same")
    assert sorted(result.requeued) == sorted(same) and result.skipped == []
    assert {i.redis_id for i in dead.list("default").items} == set(others)
    assert dead.requeue_matching("default", actor="flaky_job", until=at - 12).requeued == others[2:]


def test_discard_removes_and_lets_the_record_expire(redis_client: redis.Redis, dead: DeadLetters) -> None:
    rid, stored = bury(redis_client, "d1", at_ms=current_millis())
    gone, _ = bury(redis_client, "d2", at_ms=current_millis(), record=False)
    kept, _ = bury(redis_client, "d3", at_ms=current_millis(), error="Keep: me")
    assert dead.discard("default", [rid, gone, "no-such-id"]) == 2
    assert dead.discard("default", [rid]) == 0
    assert [i.redis_id for i in dead.list("default").items] == [kept]
    raw = redis_client.hgetall(KEYS.job(stored.message_id))
    assert b"discarded_at" in raw and raw[b"status"] == b"dead"
    assert 0 < redis_client.ttl(KEYS.job(stored.message_id)) <= actors.broker.jobs.retention_s
    assert redis_client.keys(KEYS.job("*")) and all(
        redis_client.hexists(k, "status") for k in redis_client.keys(KEYS.job("*"))
    )
    assert dead.discard_matching("default", error_contains="keep") == 1 and dead.counts()["default"] == 0


def test_discard_removes_an_entry_whose_payload_is_missing(redis_client: redis.Redis, dead: DeadLetters) -> None:
    redis_client.zadd(KEYS.dead("ml"), {"orphan": current_millis()})
    (item,) = dead.list("ml").items
    assert item.error == "payload missing or undecodable" and item.job_id is None
    assert dead.requeue("ml", ["orphan"]).skipped == ["orphan"]
    assert dead.discard("ml", ["orphan"]) == 1 and dead.counts()["ml"] == 0


def test_trim_expired_drops_old_dead_letters_only(
    redis_client: redis.Redis, dead: DeadLetters, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadletters_module, "BATCH", 2)
    now = current_millis()
    old = [bury(redis_client, f"old{i}", at_ms=now - dead.retention_ms - 1 - i) for i in range(3)]
    old_ml = bury(redis_client, "old-ml", at_ms=now - dead.retention_ms - 5, queue="ml")
    young, _ = bury(redis_client, "young", at_ms=now - dead.retention_ms + 60_000)
    assert dead.trim_expired(now) == 4
    assert [i.redis_id for i in dead.list("default").items] == [young] and dead.counts()["ml"] == 0
    for _, message in (*old, old_ml):
        assert 0 < redis_client.ttl(KEYS.job(message.message_id)) <= actors.broker.jobs.retention_s
    assert dead.trim_expired(now) == 0


def test_resolve_accepts_job_ids(redis_client: redis.Redis, dead: DeadLetters) -> None:
    rid, stored = bury(redis_client, "r", at_ms=current_millis())
    assert dead.resolve("default", [stored.message_id, rid, "unknown"]) == ([rid], ["unknown"])
    assert json.loads(dead.list("default").model_dump_json())["items"][0]["job_id"] == stored.message_id
