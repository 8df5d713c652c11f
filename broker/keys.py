"""Redis key names: Dramatiq's queue keys and Backroom's own, under one namespace."""

from __future__ import annotations

from dataclasses import dataclass

EDGE_SUFFIX = "-edge"
EDGE_NAMESPACE_QUEUES = ("edge", "results")  # queues that live in the edge namespace (edge workers, edge gateway)


def edge_namespace(namespace: str) -> str:
    """The namespace edge workers run on: every key an edge node's user may touch lives under it."""
    return namespace if namespace.endswith(EDGE_SUFFIX) else namespace + EDGE_SUFFIX


@dataclass(frozen=True)
class Keys:
    """Every Redis key Backroom reads or writes, derived from the namespace."""

    ns: str

    @property
    def edge(self) -> Keys:
        """The keys of this namespace's edge namespace (itself when it is one)."""
        return Keys(edge_namespace(self.ns))

    def for_queue(self, queue_name: str) -> Keys:
        """The keys of the namespace `queue_name` (or its delay/dead-letter queue) lives in."""
        return self.edge if queue_name.split(".")[0] in EDGE_NAMESPACE_QUEUES else self

    @property
    def server_ns(self) -> str:
        """The server namespace this one belongs to (itself when it is not an edge namespace)."""
        return self.ns[: -len(EDGE_SUFFIX)] if self.ns.endswith(EDGE_SUFFIX) else self.ns

    @property
    def refused(self) -> str:
        """The LIST of refused messages (JSON) waiting for the audit writer (server namespace only)."""
        return f"{self.server_ns}:refused"

    @property
    def edge_signing_keys(self) -> str:
        """The HASH node id -> delivery signing key (hex) of each credentialled edge node (server namespace)."""
        return f"{self.server_ns}:edgesigning"

    def queue(self, queue_name: str) -> str:
        """The LIST of ready message ids (Dramatiq's layout)."""
        return f"{self.ns}:{queue_name}"

    def messages(self, queue_name: str) -> str:
        """The HASH of not-yet-acked payloads of a queue (Dramatiq's layout)."""
        return f"{self.ns}:{queue_name}.msgs"

    def dead(self, queue_name: str) -> str:
        """The dead-letter ZSET of a queue (Dramatiq's layout)."""
        return f"{self.ns}:{queue_name}.XQ"

    def dead_messages(self, queue_name: str) -> str:
        """The dead-letter payload HASH of a queue (Dramatiq's layout)."""
        return f"{self.ns}:{queue_name}.XQ.msgs"

    def job(self, job_id: str) -> str:
        """The HASH holding one job's record."""
        return f"{self.job_prefix}{job_id}"

    @property
    def job_index(self) -> str:
        """ZSET of job ids scored by first-enqueue time (ms), for listing and retention."""
        return f"{self.ns}:jobs"

    def cancel(self, broker_id: str) -> str:
        """The pub/sub channel on which one worker process hears cancel requests for messages it holds."""
        return f"{self.ns}:cancel:{broker_id}"

    def wake(self, queue_name: str) -> str:
        """The pub/sub channel that tells idle consumers of a queue to fetch now."""
        return f"{self.ns}:wake:{queue_name}"

    @property
    def wake_pattern(self) -> str:
        """Pattern matching every wake channel."""
        return f"{self.ns}:wake:*"

    def unique(self, unique_key: str) -> str:
        """The lock naming the live job that holds a unique key."""
        return f"{self.ns}:unique:{unique_key}"

    @property
    def job_prefix(self) -> str:
        """Prefix of every job record key (`job_prefix + job_id`)."""
        return f"{self.ns}:job:"

    @property
    def heartbeats(self) -> str:
        """Dramatiq's ZSET of worker broker ids by last heartbeat (ms)."""
        return f"{self.ns}:__heartbeats__"

    def acks(self, broker_id: str, queue_name: str) -> str:
        """The SET of message ids one worker process holds from a queue (Dramatiq's layout)."""
        return f"{self.ns}:__acks__.{broker_id}.{queue_name}"

    def reaped(self, broker_id: str) -> str:
        """The tombstone the reaper leaves for a worker it declared dead (see broker.recovery)."""
        return f"{self.ns}:reaped:{broker_id}"

    def worker(self, broker_id: str) -> str:
        """The HASH describing a live worker process (host, pid, queues, last beat)."""
        return f"{self.ns}:worker:{broker_id}"

    def events(self, job_id: str) -> str:
        """The LIST of one job's timeline events (JSON), capped, expiring with its record."""
        return f"{self.ns}:events:{job_id}"

    @property
    def paused(self) -> str:
        """The SET of queue names whose consumers stop fetching (enqueue still works)."""
        return f"{self.ns}:paused"

    def stats(self, queue_name: str, hour: int) -> str:
        """The HASH of one queue's outcome counters in one epoch hour (field `<epoch minute>:<counter>`)."""
        return f"{self.ns}:stats:{queue_name}:{hour}"

    def worker_stats(self, broker_id: str) -> str:
        """The HASH of one worker process's outcome counters (outlives its description a while)."""
        return f"{self.ns}:workerstats:{broker_id}"

    def samples(self, queue_name: str) -> str:
        """The ZSET of per-minute depth/latency samples of a queue (member `minute:depth:latency_ms`)."""
        return f"{self.ns}:samples:{queue_name}"

    @property
    def edge_nodes(self) -> str:
        """The ZSET of edge worker processes (`node_id/pid`) by last registry beat (ms)."""
        return f"{self.ns}:edgenodes"

    def edge_node(self, node_id: str, pid: int | str) -> str:
        """The HASH one edge worker process writes to the registry (expires when it falls silent)."""
        return f"{self.ns}:edgenode:{node_id}:{pid}"
