"""Queue statistics for the admin surface: a constant number of O(1) reads per queue.

Nothing here scans messages: backlog sizes are LLEN/HLEN/ZCARD, latency reads only the
head of the ready list, in-flight counts are SCARDs of the live workers' ack sets (found
through the heartbeat ZSETs, never KEYS: the edge queue's consumers are the workers beating in
the edge namespace), and recent outcomes come from per-minute counter
hashes the job tracker writes. Per-minute depth/latency samples for the charts are taken
by the scheduler's leader (`record_sample`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.keys import Keys
from config.settings import ALL_QUEUES
from domain.admin import QueueSample, QueueView, latency_seconds, parse_sample, ready_since_ms

SAMPLE_KEEP_MINUTES = 120
MAX_CONSUMERS = 1_000  # live processes read per namespace (a node can pad the edge heartbeat set)
_STRIDE = 6  # pipeline replies per queue: LLEN, HLEN DQ, ZCARD XQ, LINDEX head, this and last hour's counters


def known_queues(broker: Any) -> list[str]:
    """The configured queues, then any other queue an imported actor declares."""
    declared = {q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))}
    return [*ALL_QUEUES, *sorted(declared - set(ALL_QUEUES))]


class QueueStats:
    """Reads queue statistics and records chart samples under one namespace."""

    def __init__(self, client: Any, keys: Keys, queues: Sequence[str], heartbeat_timeout_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.queues = tuple(queues)
        self.timeout_ms = heartbeat_timeout_ms

    def overview(self, now_ms: int) -> list[QueueView]:
        """Every queue's counts, latency, last 5/60 minutes' outcomes, consumers and pause state."""
        minute = now_ms // 60_000
        with self.client.pipeline(transaction=False) as pipe:
            for keys in (self.keys, self.keys.edge):
                pipe.zrangebyscore(keys.heartbeats, now_ms - self.timeout_ms, "+inf", start=0, num=MAX_CONSUMERS)
            pipe.smembers(self.keys.paused).smembers(self.keys.edge.paused)
            for queue in self.queues:
                keys = self.keys.for_queue(queue)  # the edge queue lives in the edge namespace
                pipe.llen(keys.queue(queue)).hlen(keys.messages(f"{queue}.DQ"))
                pipe.zcard(keys.dead(queue)).lindex(keys.queue(queue), 0)
                pipe.hgetall(keys.stats(queue, minute // 60)).hgetall(keys.stats(queue, minute // 60 - 1))
            # a key of the wrong type (a corrupted paused set, say) reads as empty, not as an error page
            replies = pipe.execute(raise_on_error=False)
        empties: tuple[Any, ...] = ([], [], set(), set())
        live, edge_live, paused, edge_paused = (_or(r, empty) for r, empty in zip(replies, empties))
        rest = [_or(r, (0, 0, 0, None, {}, {})[i % _STRIDE]) for i, r in enumerate(replies[4:])]
        paused = {*paused, *({b"edge"} & set(edge_paused))}  # edge consumers obey the edge namespace's set
        brokers = [(self.keys, b.decode(errors="replace")) for b in live]
        brokers += [(self.keys.edge, b.decode(errors="replace")) for b in edge_live]
        heads, consumers, in_flight = self._second_pass(rest, brokers)
        views = []
        for i, queue in enumerate(self.queues):
            ready, delayed, dead, _, this_hour, last_hour = rest[i * _STRIDE : (i + 1) * _STRIDE]
            views.append(
                QueueView(
                    name=queue,
                    ready=int(ready),
                    delayed=int(delayed),
                    dead=int(dead),
                    in_flight=in_flight[queue],
                    latency_s=latency_seconds(now_ms, ready_since_ms(heads[i])) if int(ready) else 0.0,
                    **_sums({**last_hour, **this_hour}, minute),
                    workers=consumers[queue],
                    paused=queue.encode() in paused,
                )
            )
        return views

    def _second_pass(
        self, rest: list[Any], brokers: list[tuple[Keys, str]]
    ) -> tuple[list[Any], dict[str, list[str]], dict[str, int]]:
        """Head payloads, consumers by queue and in-flight counts (one more round trip).

        A process counts only for the queues of the namespace it beats in: an edge worker's
        description (which its node writes) cannot make it a consumer of a server queue.
        """
        with self.client.pipeline(transaction=False) as pipe:
            for i, queue in enumerate(self.queues):
                _read_head(pipe, self.keys.for_queue(queue).messages(queue), rest[i * _STRIDE + 3])
            for keys, broker_id in brokers:
                pipe.hmget(keys.worker(broker_id), ("name", "queues"))
                for queue in self._queues_in(keys):
                    pipe.scard(keys.acks(broker_id, queue))
            results = pipe.execute(raise_on_error=False)
        heads = [_or(r, None) for r in results[: len(self.queues)]]
        replies = iter(results[len(self.queues) :])
        consumers: dict[str, list[str]] = {q: [] for q in self.queues}
        in_flight = dict.fromkeys(self.queues, 0)
        for keys, broker_id in brokers:
            name, queues = _or(next(replies), (None, None))
            consumed = set((queues or b"").decode(errors="replace").split(","))
            for queue in self._queues_in(keys):
                in_flight[queue] += int(_or(next(replies), 0))
                if queue in consumed:
                    consumers[queue].append((name or broker_id.encode()).decode(errors="replace")[:200])
        return heads, consumers, in_flight

    def _queues_in(self, keys: Keys) -> tuple[str, ...]:
        """The queues (of those shown) whose ack sets live in `keys`' namespace."""
        return tuple(q for q in self.queues if self.keys.for_queue(q) == keys)

    def record_sample(self, now_ms: int) -> int:
        """Store this minute's ready count and latency of every queue (again in the same minute: replaced)."""
        minute = now_ms // 60_000
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.llen(self.keys.for_queue(queue).queue(queue)).lindex(self.keys.for_queue(queue).queue(queue), 0)
            rows = [_or(r, (0, None)[i % 2]) for i, r in enumerate(pipe.execute(raise_on_error=False))]
        with self.client.pipeline(transaction=False) as pipe:
            for i, queue in enumerate(self.queues):
                _read_head(pipe, self.keys.for_queue(queue).messages(queue), rows[2 * i + 1])
            heads = pipe.execute()
        with self.client.pipeline(transaction=True) as pipe:
            for i, queue in enumerate(self.queues):
                ready = int(rows[2 * i])
                latency_ms = int(latency_seconds(now_ms, ready_since_ms(heads[i])) * 1000) if ready else 0
                key = self.keys.samples(queue)
                pipe.zremrangebyscore(key, minute, minute).zadd(key, {f"{minute}:{ready}:{latency_ms}": minute})
                pipe.zremrangebyscore(key, "-inf", minute - SAMPLE_KEEP_MINUTES)
            pipe.execute()
        return len(self.queues)

    def history(self, queue: str, now_ms: int, minutes: int = 60) -> list[QueueSample]:
        """The samples of the last `minutes` minutes, oldest first."""
        minute = now_ms // 60_000
        members = self.client.zrangebyscore(self.keys.samples(queue), minute - minutes + 1, minute)
        return [parse_sample(m) for m in members]

    def histories(self, now_ms: int, minutes: int = 60) -> dict[str, list[QueueSample]]:
        """The samples of every queue (one round trip)."""
        minute = now_ms // 60_000
        with self.client.pipeline(transaction=False) as pipe:
            for queue in self.queues:
                pipe.zrangebyscore(self.keys.samples(queue), minute - minutes + 1, minute)
            rows = pipe.execute()
        return {queue: [parse_sample(m) for m in members] for queue, members in zip(self.queues, rows)}


def _or(reply: Any, empty: Any) -> Any:
    """A pipeline reply, or `empty` where Redis answered an error (a key of the wrong type)."""
    return empty if isinstance(reply, Exception) else reply


def _read_head(pipe: Any, messages: str, head: bytes | None) -> None:
    """Queue the read of a ready list's head payload (a placeholder reply when the list is empty)."""
    if head is None:
        pipe.echo("")
    else:
        pipe.hget(messages, head)


def _sums(counters: dict[bytes, bytes], minute: int) -> dict[str, int]:
    """processed/failed over the last 5 and 60 minutes from `<minute>:<counter>` fields."""
    sums = dict.fromkeys(("processed_5m", "failed_5m", "processed_60m", "failed_60m"), 0)
    for field, value in counters.items():
        at, _, name = field.decode(errors="replace").partition(":")
        try:  # the edge queue's counters are written by edge nodes: skip what is not a count
            age, count = minute - int(at), int(value)
        except ValueError:
            continue
        if name in ("processed", "failed") and 0 <= age < 60:
            sums[f"{name}_60m"] += count
            if age < 5:
                sums[f"{name}_5m"] += count
    return sums
