"""Edit and replay a dead letter: a new job with edited arguments, linked both ways to the dead one.

One WATCH/MULTI/EXEC takes the dead letter out of its queue's dead-letter set, enqueues the
new message with its job record (the enqueue script, inside the transaction), and writes
the links (`replayed_from` on the new record, `replayed_as` on the dead one): a dead letter
is replayed at most once, and a double click finds nothing left to replay.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from dramatiq.message import Message

from admin.timeline import ReplayResult, unredact
from broker.deadletters import DROPPED_OPTIONS, DeadLetters, mark_if_exists
from broker.edge_registry import edge_broker
from domain.jobs import redact

if TYPE_CHECKING:
    from broker.redis import BackroomBroker


class NotDeadLettered(LookupError):
    """The id names no dead letter of the queue (never was, or already requeued, replayed or discarded)."""


def replay(
    broker: BackroomBroker,
    queue: str,
    ident: str,
    *,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> ReplayResult:
    """Replay dead letter `ident` (redis id or job id) of `queue` as a new job, arguments edited.

    Omitted `args`/`kwargs` keep the dead message's; a value left as the redaction marker
    (the admin saw it redacted) keeps the original value. An edge queue's dead letter is
    replayed in the edge namespace, where its record lives and edge workers consume.
    """
    dead = DeadLetters.for_broker(broker)
    found, _ = dead.resolve(queue, [ident])
    if not found:
        raise NotDeadLettered(f"{ident} is not a dead letter of {queue!r}")
    new_id = str(uuid4())
    made: list[Message] = []
    keys = broker.jobs.keys.for_queue(queue)
    target = broker if keys == broker.jobs.keys else edge_broker(broker)

    def stage(pipe: Any, queue_name: str, rid: str, message: Message, now_ms: int) -> None:
        fresh = _fresh(message, new_id, now_ms, args, kwargs)
        made.append(fresh)
        pipe.zrem(keys.dead(queue_name), rid).hdel(keys.dead_messages(queue_name), rid)
        target._enqueue_script(fresh, queue_name, "", client=pipe)  # noqa: SLF001  (same package)
        pipe.hset(keys.job(new_id), "replayed_from", message.message_id)
        event = _event(now_ms, "replay_of", message.message_id)
        pipe.rpush(keys.events(new_id), event)
        mark_if_exists(
            pipe,
            keys,
            message.message_id,
            {"replayed_as": new_id, "replayed_at": now_ms},
            ttl_s=broker.jobs.retention_s,
            event={"at": now_ms, "event": "replayed", "job_id": new_id},
        )

    moved, _ = dead.move(queue, found, stage)
    if not moved:
        raise NotDeadLettered(f"{ident} left the dead-letter queue of {queue!r} meanwhile")
    fresh, (_, original) = made[-1], moved[0]
    assert original is not None  # move() returns only the messages it decoded
    return ReplayResult(
        job_id=new_id,
        replayed_from=original.message_id,
        queue=queue,
        actor=fresh.actor_name,
        args=redact(list(fresh.args)),
        kwargs=redact(dict(fresh.kwargs)),
        original_args=redact(list(original.args)),
        original_kwargs=redact(dict(original.kwargs)),
    )


def _fresh(
    message: Message, new_id: str, now_ms: int, args: list[Any] | None, kwargs: dict[str, Any] | None
) -> Message:
    """The new message: edited arguments, a new id, retries reset, the failed run's options dropped."""
    options = {k: v for k, v in message.options.items() if k not in DROPPED_OPTIONS}
    options.update(redis_message_id=str(uuid4()), retries=0, replayed_from=message.message_id)
    new_args = tuple(unredact(args, list(message.args))) if args is not None else message.args
    new_kwargs = unredact(kwargs, dict(message.kwargs)) if kwargs is not None else message.kwargs
    return dataclasses.replace(
        message, args=new_args, kwargs=new_kwargs, options=options, message_id=new_id, message_timestamp=now_ms
    )


def _event(now_ms: int, name: str, job_id: str) -> str:
    return json.dumps({"at": now_ms, "event": name, "job_id": job_id})
