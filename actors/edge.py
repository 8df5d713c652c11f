"""The server-side sender of edge work: refuses when no edge node is live, so work never waits for nobody."""

from __future__ import annotations

from typing import Any

from actors.broker import broker, settings
from broker.edge_registry import NoLiveEdgeNode, send_edge_message

__all__ = ["NoLiveEdgeNode", "send_to_edge"]


def send_to_edge(
    actor_name: str, kwargs: dict[str, Any], *, force: bool = False, options: dict[str, Any] | None = None
) -> str:
    """Enqueue edge actor `actor_name` on `edge`; returns the job id (raises NoLiveEdgeNode unless `force`)."""
    message = send_edge_message(
        broker, actor_name, kwargs, ttl_s=settings.edge_node_ttl_s, force=force, options=options
    )
    return message.message_id
