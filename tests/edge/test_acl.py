"""Least privilege, proven on a real Redis ACL: an edge node's user runs edge jobs and nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
import redis

from broker.edge_registry import live_edge_nodes, send_edge_message
from broker.redis import BackroomBroker
from cli.edge import create_edge_credentials
from cli.stack import RedisProcess
from domain.contracts import INGEST_LISTINGS
from domain.jobs import JobStatus
from edge.deliver import delivery_message
from tests.edge.conftest import EdgeWorker, Gateway
from tests.waiting import wait_until

NS = "backroom"
EDGE_NS = "backroom-edge"
NODE = "pi-acl"
OTHER_QUEUES = ("default", "ingest", "ml", "notify", "orders", "edge")  # the server namespace's: all out of reach


def _record(client: redis.Redis, job_id: str) -> dict[str, str]:
    """A job's record: the server namespace's, else the edge namespace's (where edge jobs live)."""
    raw = client.hgetall(f"{NS}:job:{job_id}") or client.hgetall(f"{EDGE_NS}:job:{job_id}")
    return {k.decode(): v.decode() for k, v in raw.items()}


def _denied(call: Callable[[], object]) -> str:
    with pytest.raises(redis.ResponseError) as caught:
        call()
    text = str(caught.value)
    assert "NOPERM" in text or "permission" in text or "can't access" in text, text
    return text


def test_an_edge_user_runs_edge_jobs_and_cannot_touch_other_queues(
    acl_redis: RedisProcess, edge_workers: Callable[..., EdgeWorker], gateways: Callable[[str], Gateway]
) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    creds = create_edge_credentials(admin, NS, NODE, host="127.0.0.1", port=acl_redis.port)
    assert creds.redis_url.startswith(f"redis://edge-{NODE}:") and creds.password in creds.redis_url
    server = BackroomBroker(url=acl_redis.url, namespace=NS, job_retention_s=3600, maintenance_chance=0)
    secret = server.enqueue(server_message("default"))  # a server job the edge must not read
    worker = edge_workers(creds.redis_url, EDGE_NODE_ID=NODE)
    gateway = gateways(acl_redis.url)
    wait_until(lambda: live_edge_nodes(admin, server.jobs.keys, ttl_s=10), 30, "the edge node never beat the registry")

    ping = send_edge_message(server, "ping_edge", {}, ttl_s=10)
    first_fails = send_edge_message(server, "deliver_probe", {"delivery_id": "acl-1", "fail_first": True}, ttl_s=10)
    doomed = send_edge_message(server, "fail_probe", {}, ttl_s=10)
    wait_until(
        lambda: _record(admin, ping.message_id).get("status") == JobStatus.SUCCEEDED.value,
        30,
        f"ping_edge never succeeded: {_record(admin, ping.message_id)}\n{worker.output()}",
    )
    wait_until(
        lambda: _record(admin, first_fails.message_id).get("status") == JobStatus.SUCCEEDED.value,
        30,
        f"deliver_probe never succeeded: {_record(admin, first_fails.message_id)}\n{_denials(admin)}",
    )
    wait_until(
        lambda: _record(admin, doomed.message_id).get("status") == JobStatus.DEAD.value,
        30,
        f"fail_probe never died: {_record(admin, doomed.message_id)}\n{worker.output()}",
    )
    assert _record(admin, first_fails.message_id)["attempts"] == "2"  # retried through edge.DQ
    assert admin.zscore(f"{EDGE_NS}:edge.XQ", admin.zrange(f"{EDGE_NS}:edge.XQ", 0, -1)[0]) is not None

    # the signed delivery went through the gateway to the server's ingest, attributed to its node
    delivered = delivery_message(INGEST_LISTINGS, {}, delivery_id="acl-1", signed_by=(NODE, "00" * 32)).message_id
    wait_until(lambda: admin.llen(f"{NS}:ingest"), 30, f"nothing forwarded to ingest\n{gateway.output()}")
    [rid] = admin.lrange(f"{NS}:ingest", 0, -1)
    forwarded = json.loads(admin.hget(f"{NS}:ingest.msgs", rid))
    assert (forwarded["message_id"], forwarded["options"]["edge_node"]) == (delivered, NODE)
    assert forwarded["kwargs"] == {"source": "probe", "listings": [], "delivery_id": "acl-1"}
    assert _record(admin, delivered)["status"] == JobStatus.QUEUED.value

    def counts() -> list[tuple[str, int, int]]:
        return [(n.node_id, n.done, n.failed) for n in live_edge_nodes(admin, server.jobs.keys, ttl_s=10)]

    wait_until(lambda: counts() == [(NODE, 2, 2)], 10, f"registry counters: {counts()}")
    assert "NOPERM" not in worker.output() and "permission" not in worker.output().lower()
    assert _denials(admin) == []  # the edge worker was never refused anything (the ACL log is empty)

    edge = redis.Redis.from_url(creds.redis_url)
    for queue in OTHER_QUEUES:
        _denied(lambda: edge.lpush(f"{NS}:{queue}", "x"))
        _denied(lambda: edge.lrange(f"{NS}:{queue}", 0, -1))
        _denied(lambda: edge.delete(f"{NS}:{queue}"))
        _denied(lambda: edge.hgetall(f"{NS}:{queue}.msgs"))
        _denied(lambda: edge.hset(f"{NS}:{queue}.msgs", "x", "y"))
    as_edge = BackroomBroker(url=creds.redis_url, namespace=NS, job_retention_s=3600, maintenance_chance=0)
    _denied(lambda: as_edge.do_fetch("default", 10))  # Dramatiq's own script, run as the edge user
    _denied(lambda: as_edge.enqueue(server_message("orders")))  # cannot enqueue server work either
    _denied(lambda: as_edge.enqueue(server_message("ingest")))
    # the claim of a recovered job declares the claimer's reaper tombstone (see lua/claim.lua)
    in_edge = BackroomBroker(url=creds.redis_url, namespace=EDGE_NS, job_retention_s=3600, maintenance_chance=0)
    assert in_edge.jobs.claim(
        ping.message_id, worker="w", actor="ping_edge", queue="edge", now_ms=1, broker_id=f"edge-{NODE}-claimer"
    )
    for command in (("KEYS", "*"), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("ACL", "LIST")):
        _denied(lambda: edge.execute_command(*command))
    assert admin.llen(f"{NS}:default") == 1 and admin.hlen(f"{NS}:default.msgs") == 1
    assert admin.llen(f"{NS}:orders") == 0 and secret.message_id


def _denials(admin: redis.Redis) -> list[dict]:
    """ACL log entries, without redis-py's optional CLIENT SETINFO on connect (refused, and ignored by it)."""
    return [
        e
        for e in admin.execute_command("ACL", "LOG")
        if dict(e).get(b"object", e.get("object")) not in (b"client", "client")
    ]


def server_message(queue: str):  # type: ignore[no-untyped-def]
    """A message for a server queue (the actor need not exist: nobody consumes it here)."""
    from dramatiq.message import Message

    return Message(queue_name=queue, actor_name="secret_work", args=(), kwargs={"card": "4242"}, options={})
