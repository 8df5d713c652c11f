"""The edge registry in Redis: each edge worker process beats a small hash; the server reads the live ones.

Edge workers hold no database credentials, so the registry lives in Redis: one HASH per
process (`edgenode:<node>:<pid>`, expiring when the process falls silent) and one ZSET of
processes by last beat, so readers never scan keys. A node is live while any of its
processes beat within the TTL.
"""

from __future__ import annotations

import json
import logging
import weakref
from datetime import datetime, UTC
from typing import Any

import redis
from dramatiq.message import Message

from broker.keys import Keys, edge_namespace
from broker.redis import BackroomBroker
from domain.contracts import EDGE_QUEUE, SERVER_ACTORS
from domain.edge_registry import EdgeBeat, LiveEdgeNode, live_nodes

log = logging.getLogger(__name__)
_twins: weakref.WeakKeyDictionary[BackroomBroker, dict[str, BackroomBroker]] = weakref.WeakKeyDictionary()


def twin_broker(broker: BackroomBroker, namespace: str) -> BackroomBroker:
    """A broker on `namespace` sharing `broker`'s Redis client, for enqueueing there (cached per broker)."""
    twins = _twins.setdefault(broker, {})
    if namespace not in twins:
        twins[namespace] = BackroomBroker(
            url="",
            client=broker.client,
            namespace=namespace,
            job_retention_s=broker.jobs.retention_s,
            maintenance_chance=0,
            heartbeat_timeout=broker.heartbeat_timeout,
            dead_message_ttl=broker.dead_message_ttl,
        )
    return twins[namespace]


def edge_broker(broker: BackroomBroker) -> BackroomBroker:
    """The broker on `broker`'s edge namespace: where edge work is enqueued (its job records live there)."""
    return twin_broker(broker, edge_namespace(broker.namespace))


class NoLiveEdgeNode(RuntimeError):
    """No edge node heartbeats: work sent to the `edge` queue would wait for nobody."""


def write_beat(client: Any, keys: Keys, beat: EdgeBeat, *, ttl_s: int) -> None:
    """Write one process's registry entry (expiring after `ttl_s`) and its place in the index (edge namespace)."""
    keys = keys.edge
    key = keys.edge_node(beat.node_id, beat.pid)
    now_ms = int(beat.last_beat.timestamp() * 1000)
    with client.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping={"beat": beat.model_dump_json()})
        pipe.expire(key, ttl_s)
        pipe.zadd(keys.edge_nodes, {f"{beat.node_id}/{beat.pid}": now_ms})
        pipe.execute()


def remove_beat(client: Any, keys: Keys, node_id: str, pid: int) -> None:
    """Take one process out of the registry (a clean shutdown)."""
    keys = keys.edge
    with client.pipeline(transaction=False) as pipe:
        pipe.delete(keys.edge_node(node_id, pid))
        pipe.zrem(keys.edge_nodes, f"{node_id}/{pid}")
        pipe.execute()


def live_edge_nodes(client: Any, keys: Keys, *, ttl_s: int, now: datetime | None = None) -> list[LiveEdgeNode]:
    """Every edge node with a process that beat within `ttl_s` (server side; prunes stale index entries).

    Nodes write the registry, so it is read as hostile: an index entry counts only when the
    hash under that node's name (which only that node's user can write) holds a valid beat
    of that node; anything else (a wrong type, garbage, another node's name) is skipped.
    """
    keys = keys.edge
    now_ms = int((now or datetime.now(UTC)).timestamp() * 1000)
    since = now_ms - ttl_s * 1000
    try:
        members = [m.decode(errors="replace") for m in client.zrangebyscore(keys.edge_nodes, since, "+inf")]
    except redis.ResponseError as error:
        _garbled(keys.edge_nodes, error)
        return []
    entries = [(node_id, pid) for node_id, _, pid in (m.rpartition("/") for m in members)]
    with client.pipeline(transaction=False) as pipe:
        for node_id, pid in entries:
            pipe.hget(keys.edge_node(node_id, pid), "beat")
        pipe.zremrangebyscore(keys.edge_nodes, "-inf", f"({since}")
        raw = pipe.execute(raise_on_error=False)[:-1]
    return live_nodes(beat for beat in (_beat(keys, entry, r) for entry, r in zip(entries, raw)) if beat)


def _beat(keys: Keys, entry: tuple[str, str], raw: Any) -> EdgeBeat | None:
    """The beat in one registry hash, when it is a valid beat of the node and process it is filed under."""
    if not raw:
        return None
    try:
        if isinstance(raw, Exception):
            raise raw
        beat = EdgeBeat.model_validate(json.loads(raw))
    except (ValueError, redis.ResponseError) as error:
        _garbled(keys.edge_node(*entry), error)
        return None
    return beat if (beat.node_id, str(beat.pid)) == entry else None


_reported: set[str] = set()


def _garbled(key: str, error: Exception) -> None:
    """Log an unreadable registry key once per process (a hostile node may keep writing garbage)."""
    if key not in _reported:
        _reported.add(key)
        log.warning("edge registry key %s is unreadable, skipped: %s", key, str(error)[:200])


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


def send_edge_message(
    broker: Any,
    actor_name: str,
    kwargs: dict[str, Any],
    *,
    ttl_s: int,
    force: bool = False,
    options: dict[str, Any] | None = None,
) -> Message:
    """Enqueue edge work (with its job record); raises NoLiveEdgeNode when no node beats, unless `force`."""
    if not force:
        require_live_edge_node(broker.client, broker.jobs.keys, ttl_s=ttl_s)
    return edge_broker(broker).enqueue(edge_message(actor_name, kwargs, options=options))
