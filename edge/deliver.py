"""Edge -> server delivery: results travel, signed by this node, to the edge gateway on `results`.

A result for server actor X (named in domain.contracts) is one `accept_edge_result` message
on the edge namespace's `results` queue: an envelope naming this node and X, with an
HMAC of its content under this node's signing key (domain.edge_results, derived from the
password in REDIS_URL). The server's edge gateway checks it, validates the payload and
forwards it to X. The message is built by hand and enqueued through the edge broker (one
script call that also writes its job record). When
Redis is unreachable the message goes to the durable on-device outbox instead, and the
outbox flusher delivers it when the link returns. The message id is derived from the
delivery id, so every re-delivery of one result carries the same id.
"""

from __future__ import annotations

import functools
import logging
from typing import Any
from uuid import NAMESPACE_URL, uuid5

import dramatiq
import redis
from dramatiq.message import Message

from config.settings import get_edge_settings
from domain.contracts import ACCEPT_EDGE_RESULT, EDGE_QUEUE, RESULTS_QUEUE, queue_of
from domain.edge_results import sign, signing_key
from edge.outbox import UNREACHABLE, Outbox
from edge.registry import node_id

log = logging.getLogger(__name__)


@functools.cache
def outbox() -> Outbox:
    """This process's outbox (EDGE_OUTBOX_PATH), opened on first use."""
    return Outbox(get_edge_settings().edge_outbox_path)


@functools.cache
def signer() -> tuple[str, str]:
    """This node's id and delivery signing key (from EDGE_NODE_ID and the password in REDIS_URL)."""
    settings = get_edge_settings()
    password = redis.connection.parse_url(settings.redis_url).get("password") or ""
    return node_id(settings), signing_key(password)


def delivery_message(
    actor_name: str, kwargs: dict[str, Any], *, delivery_id: str, signed_by: tuple[str, str] | None = None
) -> Message:
    """The signed envelope for server actor `actor_name` on `results`, with an id fixed by `delivery_id`."""
    if queue_of(actor_name) == EDGE_QUEUE:
        raise ValueError(f"{actor_name} is an edge actor: deliver() sends to server actors only")
    node, key = signed_by or signer()
    envelope = {
        "node_id": node,
        "actor": actor_name,
        "delivery_id": delivery_id,
        "payload": kwargs,
        "signature": sign(key, node, actor_name, delivery_id, kwargs),
    }
    message: Message[Any] = Message(
        queue_name=RESULTS_QUEUE,
        actor_name=ACCEPT_EDGE_RESULT,
        args=(),
        kwargs=envelope,
        options={},
        message_id=str(uuid5(NAMESPACE_URL, f"backroom-delivery:{actor_name}:{delivery_id}")),
    )
    message.encode()  # fail here, in the job, when kwargs are not JSON (never store what cannot be sent)
    return message


def deliver(actor_name: str, kwargs: dict[str, Any], *, delivery_id: str, broker: Any = None) -> None:
    """Send `kwargs` to server actor `actor_name`, or keep the message in the outbox when Redis is unreachable."""
    message = delivery_message(actor_name, kwargs, delivery_id=delivery_id)
    broker = broker or dramatiq.get_broker()
    store = outbox()
    if store.pending():  # older results wait: keep the order, and try the whole backlog now
        store.store(message)
        store.flush(broker.enqueue)
        return
    try:
        broker.enqueue(message)
    except UNREACHABLE as error:
        store.store(message, f"{type(error).__name__}: {error}")
        log.warning(
            "Redis unreachable: %s for %s kept in the outbox (delivery %s)", message.message_id, actor_name, delivery_id
        )
