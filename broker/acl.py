"""Least privilege for edge nodes: the Redis ACL rules of one node's user, derived from the key layout.

Edge workers run on a Dramatiq namespace of their own (broker.keys.edge_namespace, e.g.
`backroom-edge`), and every key pattern below is under it: the user can name no key and no
channel of the server namespace, so it cannot touch server queues, server workers'
heartbeats, the paused set, server job records or the audit trail, whatever script it runs
(`EVAL`/`EVALSHA` scripts are checked against the same rules, command by command).

What a node user can do, and why (the README's "Least privilege" lists the same):

- Consume `edge`: Dramatiq's dispatch script (fetch/ack/nack/requeue; maintenance is off)
  on the namespace key itself (the script's KEYS[1], never stored), the edge heartbeat
  ZSET (the script beats it on every call), `edge` and `edge.DQ` with their `.msgs`
  hashes, `edge.XQ` (+`.msgs`) for dead letters, and this node's own ack sets.
- Deliver results: Backroom's enqueue script onto `results` (+`.msgs`, the wake channel),
  which the server's edge gateway validates, checks the node's signature of, and forwards.
  Redis 7 requires read and write on a script's declared keys, so the user can also read
  and delete what waits on `results`: other nodes' results can be delayed or dropped by a
  hostile node, never forged (they are signed per node) and never run as server actors.
- Track its jobs: edge job records, timelines, the edge job index and unique-key locks
  named after edge actors, the `edge` outcome counters and this node's worker counters, and
  its own reaper tombstones (`reaped:edge-<node>-*`: its heartbeats, claims and record
  writes check them, so a node the gateway reaped while cut off writes nothing late).
- Be seen: its worker descriptions (named after the node), its registry entries
  (`edgenode:<node>:*`) and the registry index ZSET (an entry there is only an
  index: a reader trusts an entry only when the node's own hash, under its name, says so).
- Read the edge paused set (read-only on Redis 7; on 6.2 it may write it, which pauses
  only edge consumers), hear `edge` wake-ups and its own processes' cancel requests.

Within the edge namespace a node is not isolated from other nodes: it shares `edge`, the
edge heartbeat ZSET (a forged beat can make the gateway re-run a result, which is
idempotent, or delay the reaping of a dead edge worker), and edge job records. A shared key
it overwrites with the wrong type is deleted by the gateway (broker.gateway.EdgeKeyRepair).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from broker.keys import Keys

EDGE_QUEUE = "edge"
COMMANDS = (
    "ping",
    "select",
    "evalsha",
    "script|load",
    "script|exists",
    "multi",
    "exec",
    "discard",
    "lpop",
    "rpush",
    "ltrim",
    "sadd",
    "srem",
    "smembers",
    "zadd",
    "zrem",
    "get",
    "set",
    "del",
    "expire",
    "persist",
    "hset",
    "hsetnx",
    "hget",
    "hmget",
    "hdel",
    "hexists",
    "hincrby",
    "publish",
    "psubscribe",
    "punsubscribe",
    "subscribe",
    "unsubscribe",
    "exists",
    "watch",
    "unwatch",
    "wait",  # REDIS_WAIT_REPLICAS (broker.replication); it touches no key
)


def edge_broker_id_prefix(node_id: str) -> str:
    """Prefix of every broker id of `node_id`'s worker processes (their ack sets carry it)."""
    return f"edge-{node_id}-"


def edge_acl_rules(
    keys: Keys, node_id: str, *, password: str, deliver_to: Iterable[str], edge_actors: Iterable[str], redis7: bool
) -> list[str]:
    """The ACL SETUSER rules of `node_id`'s user (`password` is stored hashed); every key is in the edge namespace."""
    edge, broker = keys.edge, edge_broker_id_prefix(node_id)
    read_only = "%R~" if redis7 else "~"
    patterns = [f"~{key}" for key in (edge.ns, edge.heartbeats, edge.job_index, edge.edge_nodes)]
    patterns += [f"~{edge.queue(q)}{suffix}" for q in (EDGE_QUEUE, f"{EDGE_QUEUE}.DQ") for suffix in ("", ".msgs")]
    patterns += [f"~{edge.dead(EDGE_QUEUE)}", f"~{edge.dead_messages(EDGE_QUEUE)}"]
    patterns += [f"~{edge.acks(broker + '*', EDGE_QUEUE)}", f"~{edge.acks(broker + '*', EDGE_QUEUE + '.DQ')}"]
    patterns += [f"~{edge.worker(broker + '*')}", f"~{edge.worker_stats(broker + '*')}"]
    # its tombstones: checked by its heartbeats and claims, watched by its record writes (scripts declare
    # them, and Redis 7 wants read and write on declared keys)
    patterns += [f"~{edge.reaped(broker + '*')}"]
    patterns += [f"~{edge.job('*')}", f"~{edge.events('*')}", f"~{edge.ns}:stats:{EDGE_QUEUE}:*"]
    # the enqueue script always names a unique-key lock; without a unique key it is `unique:` (never written)
    patterns += [f"~{edge.unique('')}", *(f"~{edge.unique(actor + ':*')}" for actor in sorted(set(edge_actors)))]
    patterns += [f"~{edge.edge_node(node_id, '*')}", f"{read_only}{edge.paused}"]
    targets = sorted(set(deliver_to))
    # not write-only even on Redis 7: the enqueue script declares these as KEYS, and declared keys need R and W
    patterns += [f"~{edge.queue(q)}{suffix}" for q in targets for suffix in ("", ".msgs")]
    channels = [
        f"&{edge.wake(EDGE_QUEUE + '*')}",
        *(f"&{edge.wake(q)}" for q in targets),
        f"&{edge.cancel(broker + '*')}",
    ]
    digest = hashlib.sha256(password.encode()).hexdigest()
    return [
        "reset",
        "on",
        f"#{digest}",
        "resetkeys",
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in COMMANDS),
        *patterns,
        *channels,
    ]


def edge_user_name(node_id: str) -> str:
    """The Redis user of an edge node."""
    return f"edge-{node_id}"
