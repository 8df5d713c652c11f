"""Watches the scheduler runs: edge nodes that fall silent, and queues that dead-letter.

Each alerts the admin through `notify` (OPS_ALERT_CHANNEL) with an idempotency key fixed for
what it reports, so a retried check never alerts twice; the state the next check compares
against is written only after the alert is enqueued.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, cast

import dramatiq
from dramatiq.common import current_millis

from actors.broker import broker, settings
from actors.notify import notify
from broker.deadletters import DeadLetters
from broker.edge_registry import live_edge_nodes
from broker.queues import known_queues
from domain.schedules import dead_growth, newly_silent

NEWEST = 100  # dead letters per grown queue read to name the failing actors


def watch_key(name: str) -> str:
    """A Redis key of the watches' state, under the broker's namespace."""
    return f"{broker.namespace}:watch:{name}"


@dramatiq.actor(queue_name="default", max_retries=3, max_backoff=60_000, time_limit=60_000)
def check_edge_nodes() -> dict[str, Any]:
    """Alert once when an edge node seen live went silent; a node that beats again is watched afresh."""
    seen_key, alerted_key = watch_key("edge:seen"), watch_key("edge:alerted")
    live = live_edge_nodes(broker.client, broker.jobs.keys, ttl_s=settings.edge_node_ttl_s)
    with broker.client.pipeline(transaction=False) as pipe:
        for node in live:
            pipe.hset(seen_key, node.node_id, node.last_beat.isoformat())
            pipe.srem(alerted_key, node.node_id)
        pipe.execute()
    # the broker's client reads bytes (redis-py types its replies bytes | str)
    seen = {k.decode(): v.decode() for k, v in cast(dict[bytes, bytes], broker.client.hgetall(seen_key)).items()}
    alerted = {m.decode() for m in cast(set[bytes], broker.client.smembers(alerted_key))}
    silent = newly_silent((n.node_id for n in live), seen, alerted)
    for node_id in silent:  # keyed by the last beat: one alert per silence, even when retried
        alert(
            f"edge_node_silent:{node_id}:{seen[node_id]}",
            f"Edge node {node_id} went silent",
            f"Edge node {node_id} last heartbeated at {seen[node_id]} (UTC) and is no longer live; "
            "work on the edge queue waits until an edge node is back.",
        )
        broker.client.sadd(alerted_key, node_id)
    return {"live": [n.node_id for n in live], "alerted": silent}


@dramatiq.actor(queue_name="default", max_retries=3, max_backoff=60_000, time_limit=60_000)
def watch_dead_letters() -> dict[str, Any]:
    """Alert when any queue dead-lettered something since the last check (the first check only records)."""
    checked_key = watch_key("dead:checked")
    raw = broker.client.get(checked_key)
    before = int(raw) if raw is not None else None
    now_ms = current_millis()
    grown = dead_growth(before, dead_between(before, now_ms) if before is not None else {})
    if grown:  # keyed by the previous check: a retry of this check re-sends the same alert, deduplicated
        alert(f"dead_letters:{before}", f"Dead letters grew on {', '.join(grown)}", dead_letter_text(grown, before))
    broker.client.set(checked_key, now_ms)
    return {"grown": grown}


def dead_between(after_ms: int, until_ms: int) -> dict[str, int]:
    """How many dead letters each queue gained in (after_ms, until_ms] (their scores are dead-at times)."""
    queues = known_queues(broker)
    with broker.client.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.zcount(broker.jobs.keys.dead(queue), f"({after_ms}", until_ms)
        return dict(zip(queues, map(int, pipe.execute())))


def dead_letter_text(grown: dict[str, int], since_ms: int | None) -> str:
    """One line per grown queue: how many died, the total now, and which actors."""
    service = DeadLetters(broker.client, broker.namespace, broker.dead_message_ttl, queues=known_queues(broker))
    totals = service.counts()
    lines = []
    for queue, count in grown.items():
        page = service.list(queue, since=since_ms, limit=NEWEST)
        actors = Counter(item.actor for item in page.items)
        named = ", ".join(f"{name} x{n}" for name, n in actors.most_common(5))
        lines.append(f"{queue}: {count} new dead letter(s), {totals.get(queue, 0)} in all ({named})")
    return "\n".join(lines) + "\nSee `backroom dead` or /admin/ to requeue or discard them."


def alert(key: str, title: str, text: str) -> None:
    """Send the admin (or the ops chat) one message per key."""
    channel = settings.ops_alert_channel
    notify.send(channel, "ops" if channel == "chat" else "admin", "ops_message", {"title": title, "text": text}, key)
