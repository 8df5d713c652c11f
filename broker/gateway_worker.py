"""The edge gateway's broker module (`python -m cli.worker_process broker.gateway_worker --queues results`).

The server pool (`backroom worker`) runs one such process: a worker on the edge namespace
with the server's reaper for it (dead edge workers' messages go back to `edge`), paused by
the server's paused set (which no node can write), repairing shared edge keys a node
overwrote with the wrong type, declaring `accept_edge_result` only.
"""

from __future__ import annotations

from typing import Any

import dramatiq

from broker.edge_registry import twin_broker
from broker.gateway import EdgeKeyRepair, RefusedDelivery, accept
from broker.keys import Keys
from broker.pauses import Pauses
from broker.setup import build_broker, install
from config.logging import configure_logging
from config.settings import get_edge_settings
from domain.contracts import ACCEPT_EDGE_RESULT, RESULTS_QUEUE

settings = get_edge_settings()
configure_logging(settings.log_level, settings.log_format)
broker = install(build_broker(settings, edge=True, reap=True, broker_id_prefix="gateway-"))
broker.pauses = Pauses(broker.client, Keys(settings.redis_namespace))
broker.add_middleware(EdgeKeyRepair(Keys(settings.redis_namespace)))  # a node may corrupt what all edge consumers share
server = twin_broker(broker, settings.redis_namespace)


@dramatiq.actor(
    actor_name=ACCEPT_EDGE_RESULT,
    queue_name=RESULTS_QUEUE,
    max_retries=5,
    min_backoff=1_000,
    max_backoff=60_000,
    time_limit=60_000,
    throws=(RefusedDelivery,),
)
def accept_edge_result(*args: Any, **envelope: Any) -> dict[str, Any]:
    """Check one signed edge result and forward it to its server actor (refused: dead-lettered and audited)."""
    return accept(server, args, envelope)
