"""A reaped worker's late writes are refused; a suspect of the poison guard runs alone."""

from __future__ import annotations

import threading

import redis
from dramatiq.broker import MessageProxy
from dramatiq.message import Message

import actors
from broker.gate import Fence, StartGate
from broker.tracking import OutcomeWriter
from domain.jobs import JobStatus
from tests.waiting import wait_until


def _job(redis_client: redis.Redis) -> str:
    message = actors.broker.enqueue(Message(queue_name="default", actor_name="ping", args=(), kwargs={}, options={}))
    return message.message_id


def test_a_reaped_worker_cannot_claim_a_job(redis_client: redis.Redis) -> None:
    store, job_id = actors.broker.jobs, _job(redis_client)
    claim = dict(worker="w", actor="ping", queue="default", now_ms=2, broker_id="gone")
    redis_client.set(store.keys.reaped("gone"), 1)
    assert store.claim(job_id, **claim) is False
    assert store.get(job_id).status is JobStatus.QUEUED
    assert store.claim(job_id, **{**claim, "broker_id": "live"}) is True


def test_a_reaped_workers_record_writes_are_dropped(redis_client: redis.Redis) -> None:
    store, job_id = actors.broker.jobs, _job(redis_client)
    writer = OutcomeWriter(store)
    writer.fence_key = store.keys.reaped("w1")
    try:
        writer.put(job_id, {"status": JobStatus.RUNNING.value, "worker": "h:1"}, keep=False)
        writer.flush()
        assert store.get(job_id).status is JobStatus.RUNNING  # not reaped: written
        redis_client.set(writer.fence_key, 1)  # the reaper re-queued this worker's jobs
        writer.put(job_id, {"status": JobStatus.SUCCEEDED.value}, keep=False, event={"event": "succeeded"})
        writer.flush()
        assert store.get(job_id).status is JobStatus.RUNNING
        assert "succeeded" not in [e["event"] for e in store.events(job_id)]
    finally:
        writer.close()


def _proxy(job_id: str, isolate: bool = False) -> MessageProxy:
    options = {"backroom_isolate": 1} if isolate else {}
    return MessageProxy(
        Message(queue_name="default", actor_name="ping", args=(), kwargs={}, options=options, message_id=job_id)
    )


def test_a_suspect_waits_for_running_jobs_and_holds_back_new_ones() -> None:
    gate = StartGate(Fence(timeout_ms=60_000))
    order: list[str] = []

    def run(job_id: str, isolate: bool) -> None:
        message = _proxy(job_id, isolate)
        gate.before_process_message(actors.broker, message)
        order.append(f"start {job_id}")

    gate.before_process_message(actors.broker, first := _proxy("first"))  # an ordinary job runs
    suspect = threading.Thread(target=run, args=("suspect", True))
    suspect.start()
    wait_until(lambda: gate.waiting_alone == 1, 10, "the suspect waits")
    later = threading.Thread(target=run, args=("later", False))
    later.start()
    later.join(0.5)  # `later` waits behind the suspect, which waits for `first`
    assert later.is_alive() and suspect.is_alive() and order == []
    gate.after_process_message(actors.broker, first)
    suspect.join(10)
    assert order == ["start suspect"]
    gate.after_process_message(actors.broker, _proxy("suspect", True))
    later.join(10)
    assert order == ["start suspect", "start later"]
