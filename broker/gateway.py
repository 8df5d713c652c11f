"""The edge gateway: the only way an edge node's result reaches a server actor.

Edge nodes deliver signed envelopes (domain.edge_results) to `results` in the edge
namespace. The gateway, a worker the server pool runs on that namespace with only the
`accept_edge_result` actor, checks each one: a well-formed envelope, a node with a live
credential (its signing key is in the server namespace, which no node can read), a valid
signature, an actor edge nodes may reach and a payload within bounds. Only then does it
enqueue the server actor's message in the server namespace, with the sender's node id
(option `edge_node`) and an id fixed by the delivery, so a replayed delivery is the same
message and ingest absorbs it. Anything else is refused: dead-lettered with the reason as
its error, and recorded for the audit log like every refused message (broker.guard).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import redis
from dramatiq import Middleware
from dramatiq.common import current_millis
from dramatiq.message import Message
from pydantic import ValidationError

from broker.guard import record_refusal
from broker.keys import Keys
from domain.contracts import EDGE_QUEUE, RESULTS_QUEUE, queue_of
from domain.edge_results import EdgeDelivery, forwarded_kwargs, signature_valid

log = logging.getLogger(__name__)
_garbled: set[str] = set()  # keys already reported as unreadable (logged once per process)


class RefusedDelivery(Exception):
    """An edge result the gateway will not forward (terminal: never retried)."""


def store_signing_key(client: Any, keys: Keys, node_id: str, key: str) -> None:
    """Make `key` the one `node_id`'s deliveries must be signed with (replaces any older one)."""
    client.hset(keys.edge_signing_keys, node_id, key)


def drop_signing_key(client: Any, keys: Keys, node_id: str) -> bool:
    """Refuse every further delivery of `node_id`; False when it had no key."""
    return bool(client.hdel(keys.edge_signing_keys, node_id))


def signing_key_of(client: Any, keys: Keys, node_id: str) -> str | None:
    """`node_id`'s signing key, or None (unknown node, or an unreadable key: logged once)."""
    try:
        raw = client.hget(keys.edge_signing_keys, node_id)
        key = raw.decode() if raw else None
        return key if key and len(key) == 64 and all(c in "0123456789abcdef" for c in key) else None
    except (redis.ResponseError, UnicodeDecodeError) as error:
        if keys.edge_signing_keys not in _garbled:
            _garbled.add(keys.edge_signing_keys)
            log.error(
                "%s is unreadable (%s): every edge delivery is refused until it is fixed", keys.edge_signing_keys, error
            )
        return None


def forwarded_message(delivery: EdgeDelivery) -> Message:
    """The server actor's message for a checked delivery (raises RefusedDelivery when out of bounds)."""
    try:
        kwargs = forwarded_kwargs(delivery)
    except KeyError:
        raise RefusedDelivery(f"actor {delivery.actor!r} cannot be reached from the edge") from None
    except ValidationError as error:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in error.errors()[:5])
        raise RefusedDelivery(
            f"payload for {delivery.actor} out of bounds: {error.error_count()} error(s): {fields}"
        ) from None
    message_id = str(uuid5(NAMESPACE_URL, f"backroom-delivery:{delivery.actor}:{delivery.delivery_id}"))
    return Message(
        queue_name=queue_of(delivery.actor),
        actor_name=delivery.actor,
        args=(),
        kwargs=kwargs,
        options={"edge_node": delivery.node_id},
        message_id=message_id,
    )


def checked_delivery(client: Any, keys: Keys, args: tuple, envelope: dict[str, Any]) -> EdgeDelivery:
    """The envelope as a signed delivery of a node with a live credential (raises RefusedDelivery)."""
    try:
        if args:
            raise RefusedDelivery("an edge delivery takes keyword arguments only")
        delivery = EdgeDelivery.model_validate(envelope)
    except ValidationError as error:
        raise RefusedDelivery(f"malformed edge delivery: {error.error_count()} invalid field(s)") from None
    key = signing_key_of(client, keys, delivery.node_id)
    if key is None:
        raise RefusedDelivery(f"node {delivery.node_id!r} has no live credential")
    if not signature_valid(key, delivery):
        raise RefusedDelivery(f"the signature is not node {delivery.node_id!r}'s")
    return delivery


def accept(server: Any, args: tuple, envelope: dict[str, Any]) -> dict[str, Any]:
    """Check one edge delivery and forward it to its server actor through `server` (a server-namespace broker)."""
    keys: Keys = server.jobs.keys
    try:
        delivery = checked_delivery(server.client, keys, args, envelope)
        message = forwarded_message(delivery)
    except RefusedDelivery as error:
        node = str(envelope.get("node_id", ""))[:63] if isinstance(envelope, dict) else ""
        record_refusal(
            server.client,
            keys.refused,
            {
                "at": current_millis(),
                "queue": "results",
                "actor": str(envelope.get("actor", ""))[:64],
                "node_id": node,
                "namespace": keys.edge.ns,
                "reason": f"edge delivery refused: {error}",
            },
        )
        raise
    server.enqueue(message)
    return {"node_id": delivery.node_id, "actor": delivery.actor, "forwarded": message.message_id}


def expected_types(keys: Keys) -> dict[str, bytes]:
    """The shared edge-namespace keys every edge consumer (and the gateway) needs, with their Redis type."""
    edge = keys.edge
    types = {edge.heartbeats: b"zset", edge.edge_nodes: b"zset", edge.job_index: b"zset", edge.paused: b"set"}
    for queue in (EDGE_QUEUE, f"{EDGE_QUEUE}.DQ", RESULTS_QUEUE):
        types.update({edge.queue(queue): b"list", edge.messages(queue): b"hash"})
    return types


def repair_edge_keys(client: Any, keys: Keys) -> list[str]:
    """Delete shared edge keys a node overwrote with the wrong type (they would stop every edge consumer)."""
    expected = expected_types(keys)
    with client.pipeline(transaction=False) as pipe:
        for key in expected:
            pipe.type(key)
        found = pipe.execute()
    broken = [key for (key, want), got in zip(expected.items(), found) if got not in (want, b"none", want.decode())]
    if broken:
        client.delete(*broken)
        log.warning("edge keys of the wrong type deleted (a node wrote them): %s", ", ".join(broken))
    return broken


class EdgeKeyRepair(Middleware):
    """Checks the shared edge keys every `interval_s` from a thread of the gateway, and repairs them."""

    def __init__(self, keys: Keys, interval_s: float = 5.0) -> None:
        self.keys = keys
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, args=(broker.client,), name="edge-key-repair", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self, client: Any) -> None:
        while not self.stopping.is_set():
            try:
                repair_edge_keys(client, self.keys)
            except redis.RedisError as error:
                log.warning("edge key repair failed: %s", error)
            self.stopping.wait(self.interval_s)
