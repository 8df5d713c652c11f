"""A flaky home network: Redis stops while an edge job delivers; the result waits on the device, then lands once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import redis

from broker.edge_registry import live_edge_nodes, send_edge_message
from broker.keys import Keys
from broker.redis import BackroomBroker
from cli.stack import RedisProcess
from domain.contracts import INGEST_LISTINGS
from edge.deliver import delivery_message
from edge.outbox import Outbox
from tests.edge.conftest import EdgeWorker
from tests.waiting import wait_until

NS = "backroom-edge"  # edge workers' namespace: their jobs, and the `results` queue they deliver to


def _status(client: redis.Redis, job_id: str) -> str | None:
    raw = client.hget(f"{NS}:job:{job_id}", "status")
    return raw.decode() if raw else None


def _delivered_ids(client: redis.Redis) -> list[str]:
    return [
        json.loads(client.hget(f"{NS}:results.msgs", rid))["message_id"]
        for rid in client.lrange(f"{NS}:results", 0, -1)
    ]


def test_a_delivery_during_an_outage_is_kept_and_delivered_exactly_once(
    own_redis: RedisProcess, edge_workers: Callable[..., EdgeWorker], tmp_path: Path
) -> None:
    admin = redis.Redis.from_url(own_redis.url)
    server = BackroomBroker(url=own_redis.url, namespace=NS, job_retention_s=3600, maintenance_chance=0)
    worker = edge_workers(own_redis.url, EDGE_NODE_ID="pi-flaky")
    wait_until(lambda: live_edge_nodes(admin, Keys(NS), ttl_s=10), 30, "the edge node never beat the registry")
    go = tmp_path / "go"
    job = send_edge_message(server, "deliver_probe", {"delivery_id": "flaky-1", "wait_for": str(go)}, ttl_s=10)
    wait_until(lambda: _status(admin, job.message_id) == "running", 30, "the edge job never started")
    admin.close()

    own_redis.stop()  # the link drops mid-job
    go.touch()
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    wait_until(lambda: outbox.pending() == 1, 30, f"the result never reached the outbox\n{worker.output()}")

    own_redis.start()  # same port, same append-only file
    admin = redis.Redis.from_url(own_redis.url)
    delivered = delivery_message(INGEST_LISTINGS, {}, delivery_id="flaky-1", signed_by=("n", "00" * 32)).message_id
    wait_until(lambda: outbox.pending() == 0, 30, f"the outbox was never flushed\n{worker.output()}")
    wait_until(
        lambda: _status(admin, job.message_id) == "succeeded",
        30,
        f"the edge job's outcome never landed: {_status(admin, job.message_id)}",
    )
    assert _delivered_ids(admin) == [delivered]
    assert _status(admin, delivered) == "queued"

    # a few more flush rounds and registry beats later, still exactly one delivery
    def done() -> bool:
        return [n.done for n in live_edge_nodes(admin, Keys(NS), ttl_s=10)] == [1]

    wait_until(done, 30, "the node never beat its counters again")
    assert _delivered_ids(admin) == [delivered] and outbox.pending() == 0
    assert "Redis unreachable" in worker.output() or "outbox" in worker.output()
