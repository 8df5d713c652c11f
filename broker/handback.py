"""Handing back, at the end of a graceful stop, the messages still running past its deadline.

Dramatiq's `Worker.stop(timeout)` re-queues prefetched and delayed messages, but a job
still running when the shutdown timeout (WORKER_SHUTDOWN_TIMEOUT_S) runs out stays in this
process's ack set when the process exits. Its message is put back on its queue here, and
its record says so, so another worker runs it again; if Redis refuses, the caller keeps
this worker's heartbeat so that it expires and the reaper re-queues the message instead.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from dramatiq.common import q_name
from dramatiq.message import Message

from domain.jobs import JobStatus

log = logging.getLogger(__name__)
HANDED_BACK = "still running at the shutdown deadline (WORKER_SHUTDOWN_TIMEOUT_S): handed back to its queue"


def hand_back(broker: Any, queue_names: list[str], now_ms: int) -> bool:
    """Re-queue every message this process still holds on `queue_names`; False when Redis refused."""
    keys, handed = broker.jobs.keys, 0
    try:
        for queue_name in queue_names:
            ids = sorted(m.decode() for m in broker.client.smembers(keys.acks(broker.broker_id, queue_name)))
            if not ids:
                continue
            bodies = broker.client.hmget(keys.messages(queue_name), ids)
            _record(broker, [Message.decode(body) for body in bodies if body], queue_name, now_ms)
            broker.do_requeue(queue_name, *ids)
            handed += len(ids)
    except redis.RedisError as error:
        log.error(
            "could not hand back the jobs still running (%s); they re-run once this worker's heartbeat expires", error
        )
        return False
    if handed:
        log.warning("handed back %d job(s) %s", handed, HANDED_BACK.split(": ", 1)[0])
    return True


def _record(broker: Any, messages: list[Message], queue_name: str, now_ms: int) -> None:
    status = JobStatus.DELAYED if queue_name.endswith(".DQ") else JobStatus.QUEUED
    with broker.client.pipeline(transaction=False) as pipe:
        for message in messages:
            fields = {"status": status.value, "last_error": HANDED_BACK}
            event = {"at": now_ms, "event": "handed back", "queue": q_name(queue_name), "error": HANDED_BACK}
            broker.jobs.write_final(pipe, message.message_id, fields, keep=False, event=event)
        pipe.execute()
