"""Enqueueing edge work from the API: refused with 409 while no edge node is live (unless forced)."""

from __future__ import annotations

import asyncio
from typing import Any

import actors
from broker.edge_registry import edge_broker, edge_message, live_edge_nodes
from config.settings import get_settings
from web.enqueue import BROKER_DOWN, enqueue_message, message_options, unique_key_header, unreachable
from web.errors import problem


async def enqueue_edge(actor_name: str, kwargs: dict[str, Any], *, force: bool, unique_key: str | None) -> Any:
    """202 with the job id; 409 when no edge node heartbeats and not `force`; 503 when Redis is unreachable."""
    sent = unique_key_header()
    broker = actors.broker
    ttl_s = get_settings().edge_node_ttl_s
    try:
        live = force or bool(await asyncio.to_thread(live_edge_nodes, broker.client, broker.jobs.keys, ttl_s=ttl_s))
    except BROKER_DOWN:
        return unreachable()
    if not live:
        return problem(
            409,
            f"no edge node is live (none heartbeated in the last {ttl_s} s), so nothing would "
            "run this job; start `backroom worker --edge`, or send `force: true` to queue it anyway",
        )
    options = message_options(unique_key or sent)
    # on the edge namespace, where edge workers consume (the job's record lives there too)
    return await enqueue_message(edge_broker(broker), edge_message(actor_name, kwargs, options=options))
