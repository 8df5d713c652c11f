"""The queue guard: a message runs only when its actor is declared on the queue it arrived from.

Dramatiq runs whatever actor a message names, whichever queue it came from, so anyone who
can write one queue (an edge node's `results`, a stolen credential) could run any actor.
Every worker refuses such a message before any other middleware sees it: it is not run,
it is dead-lettered with the reason as its error, and the refusal is pushed onto a capped
Redis list that the server's audit writer (actors.refusals) drains into the audit log,
since the broker package never touches the database.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from dramatiq import Middleware
from dramatiq.common import current_millis, q_name
from dramatiq.errors import ActorNotFound
from dramatiq.middleware import SkipMessage

log = logging.getLogger(__name__)
CLAIMED_QUEUE = "backroom_claimed_queue"  # set by the consumer when a payload names another queue than its own
REFUSED = "backroom_refused"  # the reason, read by JobTracking for the job's last error
REFUSALS_CAP = 1000  # refusals kept while the audit writer is away


def refusal_reason(broker: Any, actor_name: str, queue_name: str, claimed: str | None) -> str | None:
    """Why a message for `actor_name` that arrived on `queue_name` must not run (None: it may run)."""
    if claimed is not None:
        return f"refused: the message names queue {str(claimed)[:80]!r} but arrived on {queue_name!r}"
    try:
        actor = broker.get_actor(actor_name)
    except ActorNotFound:
        return f"refused: actor {actor_name[:80]!r} is not declared on queue {queue_name!r} (not declared here)"
    if actor.queue_name != queue_name:
        return f"refused: actor {actor_name!r} is declared on queue {actor.queue_name!r}, not {queue_name!r}"
    return None


def record_refusal(client: Any, key: str, entry: dict[str, Any]) -> None:
    """Push one refusal for the audit writer (capped; the newest are kept)."""
    with client.pipeline(transaction=False) as pipe:
        pipe.lpush(key, json.dumps(entry, default=str))
        pipe.ltrim(key, 0, REFUSALS_CAP - 1)
        pipe.execute()


def oldest_refusals(client: Any, key: str, limit: int = 200) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` refusals, oldest first, and how many list entries they came from (garbage is skipped)."""
    raw = list(reversed(client.lrange(key, -limit, -1)))
    entries = []
    for item in raw:
        try:
            entry = json.loads(item)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries, len(raw)


def drop_oldest_refusals(client: Any, key: str, count: int) -> None:
    """Forget the `count` oldest refusals (once they are in the audit log; newer ones are pushed at the head)."""
    if count:
        client.ltrim(key, 0, -count - 1)


class QueueGuard(Middleware):
    """Refuses (dead-letters and records) a message whose actor is not declared on its arrival queue."""

    def __init__(self, refusals_key: str | None) -> None:
        self.refusals_key = refusals_key  # None: nowhere to record (an edge worker cannot write server keys)

    def before_process_message(self, broker: Any, message: Any) -> None:
        queue_name = q_name(message.queue_name)
        reason = refusal_reason(broker, str(message.actor_name), queue_name, message.options.get(CLAIMED_QUEUE))
        if reason is None:
            return
        message.options[REFUSED] = reason
        message.fail()  # nacked: the message goes to the dead-letter queue, and its job record says dead
        self._record(broker, message, queue_name, reason)
        raise SkipMessage(reason)

    def after_nack(self, broker: Any, message: Any) -> None:
        # Dramatiq's consumer dead-letters a message for an undeclared actor before any middleware
        # sees it (no before_process_message): record the refusal and the job's end here
        if REFUSED in message.options or str(message.actor_name) in broker.actors:
            return
        queue_name = q_name(message.queue_name)
        reason = refusal_reason(broker, str(message.actor_name), queue_name, None) or "refused"
        message.options[REFUSED] = reason
        self._record(broker, message, queue_name, reason)
        jobs = getattr(broker, "jobs", None)
        if jobs is None:
            return
        now = current_millis()
        try:
            with broker.client.pipeline(transaction=False) as pipe:
                jobs.write_final(
                    pipe,
                    message.message_id,
                    {"status": "dead", "finished_at": now, "last_error": reason},
                    keep=True,
                    event={"at": now, "event": "dead", "error": reason},
                )
                pipe.execute()
        except redis.RedisError as error:
            log.error("could not mark refused message %s dead: %s", message.message_id, error)

    def _record(self, broker: Any, message: Any, queue_name: str, reason: str) -> None:
        log.warning("message %s %s", message.message_id, reason)
        if self.refusals_key is None:
            return
        entry = {
            "at": current_millis(),
            "queue": queue_name,
            "actor": str(message.actor_name)[:200],
            "message_id": str(message.message_id)[:100],
            "namespace": broker.namespace,
            "reason": reason,
        }
        try:
            record_refusal(broker.client, self.refusals_key, entry)
        except redis.RedisError as error:
            log.error("could not record the refusal of %s for the audit log: %s", message.message_id, error)
