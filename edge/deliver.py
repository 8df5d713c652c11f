"""Edge -> server delivery: results travel as messages to server actors named in domain.contracts.

The edge process does not declare server actors, so the message is built by hand and
enqueued through the edge broker (one script call that also writes its job record). When
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
from dramatiq.message import Message

from config.settings import get_edge_settings
from domain.contracts import EDGE_QUEUE, queue_of
from edge.outbox import UNREACHABLE, Outbox

log = logging.getLogger(__name__)


@functools.cache
def outbox() -> Outbox:
    """This process's outbox (EDGE_OUTBOX_PATH), opened on first use."""
    return Outbox(get_edge_settings().edge_outbox_path)


def delivery_message(actor_name: str, kwargs: dict[str, Any], *, delivery_id: str) -> Message:
    """The message for server actor `actor_name` on its contract queue, with an id fixed by `delivery_id`."""
    queue_name = queue_of(actor_name)
    if queue_name == EDGE_QUEUE:
        raise ValueError(f"{actor_name} is an edge actor: deliver() sends to server actors only")
    message = Message(queue_name=queue_name, actor_name=actor_name, args=(), kwargs=kwargs, options={},
                      message_id=str(uuid5(NAMESPACE_URL, f"backroom-delivery:{actor_name}:{delivery_id}")))
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
        log.warning("Redis unreachable: %s for %s kept in the outbox (delivery %s)",
                    message.message_id, actor_name, delivery_id)
