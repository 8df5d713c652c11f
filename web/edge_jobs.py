"""Enqueueing edge work from the API: refused with 409 while no edge node is live (unless forced)."""
from __future__ import annotations

import asyncio
from typing import Any

from quart import current_app, g

import actors
from broker.edge_registry import edge_message, live_edge_nodes
from config.settings import get_settings
from web.enqueue import BROKER_DOWN, accepted
from web.errors import problem


async def enqueue_edge(actor_name: str, kwargs: dict[str, Any], *, force: bool, unique_key: str | None) -> Any:
    """202 with the job id; 409 when no edge node heartbeats and not `force`; 503 when Redis is unreachable."""
    broker = actors.broker
    ttl_s = get_settings().edge_node_ttl_s
    options: dict[str, Any] = {"request_id": getattr(g, "request_id", None)}
    if unique_key:
        options["unique_key"] = unique_key
    try:
        if not force and not await asyncio.to_thread(live_edge_nodes, broker.client, broker.jobs.keys, ttl_s=ttl_s):
            return problem(409, f"no edge node is live (none heartbeated in the last {ttl_s} s), so nothing would "
                                "run this job; start `backroom worker --edge`, or send `force: true` to queue it anyway")
        message = await broker.enqueue_async(current_app.config["ENQUEUE_SCRIPT"],
                                             edge_message(actor_name, kwargs, options=options))
    except BROKER_DOWN:
        return problem(503, "the job queue is unreachable; nothing was enqueued, try again", headers={"Retry-After": "5"})
    return accepted(message.message_id, deduplicated=bool(message.options.get("deduplicated")))
