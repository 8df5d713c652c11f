"""The edge registry in Redis: each edge worker process beats a small hash; the server reads the live ones.

Edge workers hold no database credentials, so the registry lives in Redis: one HASH per
process (`edgenode:<node>:<pid>`, expiring when the process falls silent) and one ZSET of
processes by last beat, so readers never scan keys. A node is live while any of its
processes beat within the TTL.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from dramatiq.message import Message

from broker.keys import Keys
from domain.contracts import EDGE_QUEUE, SERVER_ACTORS
from domain.edge_registry import EdgeBeat, LiveEdgeNode, live_nodes


class NoLiveEdgeNode(RuntimeError):
    """No edge node heartbeats: work sent to the `edge` queue would wait for nobody."""


def write_beat(client: Any, keys: Keys, beat: EdgeBeat, *, ttl_s: int) -> None:
    """Write one process's registry entry (expiring after `ttl_s`) and its place in the index."""
    key = keys.edge_node(beat.node_id, beat.pid)
    now_ms = int(beat.last_beat.timestamp() * 1000)
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping={"beat": beat.model_dump_json()})
        pipe.expire(key, ttl_s)
        pipe.zadd(keys.edge_nodes, {f"{beat.node_id}/{beat.pid}": now_ms})
        pipe.execute()


def remove_beat(client: Any, keys: Keys, node_id: str, pid: int) -> None:
    """Take one process out of the registry (a clean shutdown)."""
    with client.pipeline(transaction=False) as pipe:
        pipe.delete(keys.edge_node(node_id, pid))
        pipe.zrem(keys.edge_nodes, f"{node_id}/{pid}")
        pipe.execute()


def live_edge_nodes(client: Any, keys: Keys, *, ttl_s: int, now: datetime | None = None) -> list[LiveEdgeNode]:
    """Every edge node with a process that beat within `ttl_s` (server side; prunes stale index entries)."""
    now_ms = int((now or datetime.now(timezone.utc)).timestamp() * 1000)
    since = now_ms - ttl_s * 1000
    members = [m.decode() for m in client.zrangebyscore(keys.edge_nodes, since, "+inf")]
    with client.pipeline(transaction=False) as pipe:
        for member in members:
            node_id, _, pid = member.rpartition("/")
            pipe.hget(keys.edge_node(node_id, pid), "beat")
        pipe.zremrangebyscore(keys.edge_nodes, "-inf", f"({since}")
        raw = pipe.execute()[:-1]
    return live_nodes(EdgeBeat.model_validate(json.loads(r)) for r in raw if r)


def require_live_edge_node(client: Any, keys: Keys, *, ttl_s: int) -> list[LiveEdgeNode]:
    """The live edge nodes; raises NoLiveEdgeNode when there is none."""
    nodes = live_edge_nodes(client, keys, ttl_s=ttl_s)
    if not nodes:
        raise NoLiveEdgeNode(f"no edge node has heartbeated in the last {ttl_s} s: start `backroom worker --edge`")
    return nodes


def edge_message(actor_name: str, kwargs: dict[str, Any], *, options: dict[str, Any] | None = None) -> Message:
    """A message for edge actor `actor_name`, built by hand (server processes do not declare edge actors)."""
    if actor_name in SERVER_ACTORS:
        raise ValueError(f"{actor_name} is a server actor, not an edge one")
    return Message(queue_name=EDGE_QUEUE, actor_name=actor_name, args=(), kwargs=kwargs, options=options or {})


def send_edge_message(broker: Any, actor_name: str, kwargs: dict[str, Any], *, ttl_s: int, force: bool = False,
                      options: dict[str, Any] | None = None) -> Message:
    """Enqueue edge work (with its job record); raises NoLiveEdgeNode when no node beats, unless `force`."""
    if not force:
        require_live_edge_node(broker.client, broker.jobs.keys, ttl_s=ttl_s)
    return broker.enqueue(edge_message(actor_name, kwargs, options=options))
