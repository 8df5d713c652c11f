"""Least privilege for edge nodes: the Redis ACL rules of one node's user, derived from the key layout.

An edge worker (edge.worker) consumes `edge`, delivers to server queues (`ingest`) and
beats the registry. Everything it touches, and why:

- Dramatiq's dispatch script (fetch/ack/nack/requeue; maintenance is off): the namespace key
  itself (the script's KEYS[1], never stored), the heartbeat ZSET, `edge` and `edge.DQ` with
  their `.msgs` hashes, `edge.XQ` (+`.msgs`) for dead letters, and this node's ack sets.
- Backroom's enqueue script (retries into `edge.DQ`, the delay hop back to `edge`,
  deliveries): job records, timelines, the job index, unique-key locks named after edge
  actors, the target queue list + hash, and the wake channel.
- Job tracking (claim script, batched outcomes): job records and timelines, the `edge`
  outcome counters and this node's worker counters.
- Recovery's heartbeat (no reaper: it requeues every queue's messages, so edge workers run
  with reap=False and server workers reap dead edge workers), the worker description, the
  paused-queue set (read-only on Redis 7), the wake-up subscription `wake:edge*`, this
  node's processes' cancel-request channels, and the edge registry entries of this node.

Known limits: job record keys carry no queue in their name, so the user can read and write
any job's record (args are redacted); it can read and delete what waits on `ingest` (the
enqueue script declares the queue keys, and Redis 7 requires read and write on declared
keys, so write-only `%W~` cannot be used); and it can ZADD/ZREM any member of the shared
heartbeat ZSET. Queue lists and payload hashes of every other queue are out of reach.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from broker.keys import Keys

EDGE_QUEUE = "edge"
COMMANDS = (
    "ping", "select", "evalsha", "script|load", "script|exists",
    "lpop", "rpush", "ltrim", "sadd", "srem", "smembers", "zadd", "zrem",
    "get", "set", "del", "expire", "persist", "hset", "hsetnx", "hget", "hmget", "hdel", "hexists", "hincrby",
    "publish", "psubscribe", "punsubscribe", "subscribe", "unsubscribe",
    "wait",  # REDIS_WAIT_REPLICAS (broker.replication); it touches no key
)


def edge_broker_id_prefix(node_id: str) -> str:
    """Prefix of every broker id of `node_id`'s worker processes (their ack sets carry it)."""
    return f"edge-{node_id}-"


def edge_acl_rules(keys: Keys, node_id: str, *, password: str, deliver_to: Iterable[str],
                   edge_actors: Iterable[str], redis7: bool) -> list[str]:
    """The ACL SETUSER rules of `node_id`'s user (`password` is stored hashed)."""
    ns, broker = keys.ns, edge_broker_id_prefix(node_id)
    read_only = "%R~" if redis7 else "~"
    patterns = [f"~{key}" for key in (ns, keys.heartbeats, keys.job_index, keys.edge_nodes)]
    patterns += [f"~{keys.queue(q)}{suffix}" for q in (EDGE_QUEUE, f"{EDGE_QUEUE}.DQ") for suffix in ("", ".msgs")]
    patterns += [f"~{keys.dead(EDGE_QUEUE)}", f"~{keys.dead_messages(EDGE_QUEUE)}"]
    patterns += [f"~{keys.acks(broker + '*', EDGE_QUEUE)}", f"~{keys.acks(broker + '*', EDGE_QUEUE + '.DQ')}"]
    patterns += [f"~{keys.worker(broker + '*')}", f"~{keys.worker_stats(broker + '*')}"]
    patterns += [f"~{keys.job('*')}", f"~{keys.events('*')}", f"~{ns}:stats:{EDGE_QUEUE}:*"]
    # the enqueue script always names a unique-key lock; without a unique key it is `unique:` (never written)
    patterns += [f"~{keys.unique('')}", *(f"~{keys.unique(actor + ':*')}" for actor in sorted(set(edge_actors)))]
    patterns += [f"~{keys.edge_node(node_id, '*')}", f"{read_only}{keys.paused}"]
    targets = sorted(set(deliver_to))
    # not write-only even on Redis 7: the enqueue script declares these as KEYS, and declared keys need R and W
    patterns += [f"~{keys.queue(q)}{suffix}" for q in targets for suffix in ("", ".msgs")]
    channels = [f"&{keys.wake(EDGE_QUEUE + '*')}", *(f"&{keys.wake(q)}" for q in targets),
                f"&{keys.cancel(broker + '*')}"]
    digest = hashlib.sha256(password.encode()).hexdigest()
    return ["reset", "on", f"#{digest}", "resetkeys", "resetchannels", "-@all",
            *(f"+{command}" for command in COMMANDS), *patterns, *channels]


def edge_user_name(node_id: str) -> str:
    """The Redis user of an edge node."""
    return f"edge-{node_id}"
