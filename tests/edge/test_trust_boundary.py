"""A stolen Pi cannot touch the server: every attack of issue 15, tried with a real node ACL user on Redis 6.2 and 7."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, UTC

import asyncpg
import pytest
import redis
from dramatiq.message import Message

from actors.refusals import write_refusals
from broker.edge_registry import live_edge_nodes, twin_broker
from broker.keys import Keys
from broker.redis import BackroomBroker
from cli.edge import EdgeCredentials, create_edge_credentials, revoke_edge_credentials
from cli.stack import RedisProcess
from domain.contracts import ACCEPT_EDGE_RESULT, INGEST_LISTINGS, RECORD_LISTING_CHECK
from domain.edge_registry import EdgeBeat
from domain.edge_results import sign, signing_key
from edge.deliver import delivery_message
from tests.edge.conftest import Gateway
from tests.edge.test_acl import _denied, server_message
from tests.waiting import wait_until

NS, EDGE_NS = "backroom", "backroom-edge"
KEYS = Keys(NS)
SERVER_QUEUES = ("default", "ingest", "ml", "notify", "orders")


def _edge_user(server: RedisProcess, node: str) -> tuple[EdgeCredentials, redis.Redis, BackroomBroker]:
    """A node's credential, a raw client with it, and a broker with it on the edge namespace."""
    creds = create_edge_credentials(redis.Redis.from_url(server.url), NS, node, host="127.0.0.1", port=server.port)
    as_node = BackroomBroker(url=creds.redis_url, namespace=EDGE_NS, job_retention_s=3600, maintenance_chance=0)
    return creds, redis.Redis.from_url(creds.redis_url), as_node


def _key_of(creds: EdgeCredentials) -> tuple[str, str]:
    return creds.node_id, signing_key(creds.password)


def _status(admin: redis.Redis, job_id: str, ns: str = EDGE_NS) -> str:
    return (admin.hget(f"{ns}:job:{job_id}", "status") or b"").decode()


def _error(admin: redis.Redis, job_id: str, ns: str = EDGE_NS) -> str:
    return (admin.hget(f"{ns}:job:{job_id}", "last_error") or b"").decode()


def _refusals(admin: redis.Redis) -> list[dict]:
    return [json.loads(r) for r in admin.lrange(KEYS.refused, 0, -1)]


def _server_queues_empty(admin: redis.Redis) -> bool:
    return all(admin.llen(f"{NS}:{q}") == 0 and admin.hlen(f"{NS}:{q}.msgs") == 0 for q in SERVER_QUEUES)


async def test_server_actors_named_by_an_edge_credential_never_run(
    acl_redis: RedisProcess, gateways: Callable[[str], Gateway], pool: asyncpg.Pool
) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    creds, edge, as_node = _edge_user(acl_redis, "pi-a")
    attacks = {"approve_item": {"item_id": 1}, "refund_order": {"order_id": 1}, "ping": {"message": "owned"}}
    for actor, kwargs in attacks.items():  # straight onto the server's queues: out of reach
        for queue in ("ingest", "orders", "default"):
            _denied(lambda: edge.rpush(f"{NS}:{queue}", "x"))
            _denied(
                lambda: twin_broker(as_node, NS).enqueue(
                    Message(queue_name=queue, actor_name=actor, args=(), kwargs=kwargs, options={})
                )
            )
    gateway = gateways(acl_redis.url)
    # onto the only server-consumed queue it can write: the gateway refuses them, they never run
    sent = [
        as_node.enqueue(Message(queue_name="results", actor_name=actor, args=(), kwargs=kwargs, options={}))
        for actor, kwargs in attacks.items()
    ]
    # and a correctly signed envelope naming a server actor that the edge may not reach
    node, key = _key_of(creds)
    envelope = {
        "node_id": node,
        "actor": "approve_item",
        "delivery_id": "x",
        "payload": {"item_id": 1},
        "signature": sign(key, node, "approve_item", "x", {"item_id": 1}),
    }
    sent.append(
        as_node.enqueue(
            Message(queue_name="results", actor_name=ACCEPT_EDGE_RESULT, args=(), kwargs=envelope, options={})
        )
    )
    for message in sent:
        wait_until(
            lambda: _status(admin, message.message_id) == "dead",
            60,
            f"{message.actor_name} was not dead-lettered: {_status(admin, message.message_id)}\n{gateway.output()}",
        )
    for message in sent[:3]:
        assert f"actor {message.actor_name!r} is not declared" in _error(admin, message.message_id)
    assert "cannot be reached from the edge" in _error(admin, sent[3].message_id)
    assert admin.zcard(f"{EDGE_NS}:results.XQ") == 4 and _server_queues_empty(admin)
    refused = _refusals(admin)  # what the audit writer (actors.refusals) puts in the audit log
    assert sorted(r["actor"] for r in refused) == ["approve_item", "approve_item", "ping", "refund_order"]
    audited = "SELECT count(*) FROM audit_log WHERE action = 'message.refused' AND after->>'namespace' = $1"
    before = await pool.fetchval(audited, EDGE_NS)
    assert await write_refusals(admin, KEYS.refused, pool) == 4
    assert await pool.fetchval(audited, EDGE_NS) == before + 4 and admin.llen(KEYS.refused) == 0


def test_shared_server_state_is_out_of_reach(acl_redis: RedisProcess) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    server = BackroomBroker(url=acl_redis.url, namespace=NS, job_retention_s=3600, maintenance_chance=0)
    secret = server.enqueue(server_message("notify"))
    admin.zadd(KEYS.heartbeats, {"live-server-worker": 10**13})
    _, edge, _ = _edge_user(acl_redis, "pi-a")
    # forged heartbeats of live server workers (a stale score would make the reaper re-run their jobs)
    _denied(lambda: edge.zadd(KEYS.heartbeats, {"live-server-worker": 1}))
    _denied(lambda: edge.zrem(KEYS.heartbeats, "live-server-worker"))
    assert admin.zscore(KEYS.heartbeats, "live-server-worker") == 10**13
    # pausing the server, or corrupting its paused set
    _denied(lambda: edge.sadd(KEYS.paused, "ingest"))
    _denied(lambda: edge.set(KEYS.paused, "garbage"))
    _denied(lambda: edge.smembers(KEYS.paused))
    assert not admin.exists(KEYS.paused)
    # another job's record, timeline and index entry
    _denied(lambda: edge.hgetall(KEYS.job(secret.message_id)))
    _denied(lambda: edge.hset(KEYS.job(secret.message_id), "status", "succeeded"))
    _denied(lambda: edge.lrange(KEYS.events(secret.message_id), 0, -1))
    _denied(lambda: edge.zadd(KEYS.job_index, {"forged": 1}))
    _denied(lambda: edge.lpush(KEYS.refused, "{}"))  # nor forge or drop audit records
    _denied(lambda: edge.hget(KEYS.edge_signing_keys, "pi-b"))  # nor read another node's signing key
    for channel in (KEYS.wake("ingest"), KEYS.cancel("server-worker")):
        _denied(lambda: edge.publish(channel, "1"))
    assert json.loads(admin.hget(KEYS.job(secret.message_id), "args"))["kwargs"] == {"card": "4242"}


def test_custom_lua_is_confined_to_the_nodes_own_keys(acl_redis: RedisProcess) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    server = BackroomBroker(url=acl_redis.url, namespace=NS, job_retention_s=3600, maintenance_chance=0)
    secret = server.enqueue(server_message("notify"))
    _, edge, _ = _edge_user(acl_redis, "pi-a")
    read = edge.script_load("return redis.call('hget', KEYS[1], 'args')")
    _denied(lambda: edge.evalsha(read, 1, KEYS.job(secret.message_id)))
    undeclared = edge.script_load(f"return redis.call('sadd', '{KEYS.paused}', 'ingest')")
    _denied(lambda: edge.evalsha(undeclared, 0))
    beat = edge.script_load(f"return redis.call('zadd', '{KEYS.heartbeats}', 1, 'server-worker')")
    _denied(lambda: edge.evalsha(beat, 0))
    own = edge.script_load("return redis.call('hset', KEYS[1], 'beat', 'x')")
    assert edge.evalsha(own, 1, f"{EDGE_NS}:edgenode:pi-a:1") == 1  # its own registry entry: allowed
    _denied(lambda: edge.evalsha(own, 1, f"{EDGE_NS}:edgenode:pi-b:1"))  # another node's: not
    assert not admin.exists(KEYS.paused) and admin.zcard(KEYS.heartbeats) == 0


def test_a_node_cannot_register_or_deliver_as_another(
    acl_redis: RedisProcess, gateways: Callable[[str], Gateway]
) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    creds_a, edge_a, as_a = _edge_user(acl_redis, "pi-a")
    _edge_user(acl_redis, "pi-b")
    beat = EdgeBeat(node_id="pi-b", pid=7, version="1", host="h", last_beat=datetime.now(UTC))
    _denied(lambda: edge_a.hset(f"{EDGE_NS}:edgenode:pi-b:7", "beat", beat.model_dump_json()))
    # its own entry claiming to be pi-b, indexed under either name: not a live pi-b
    edge_a.hset(f"{EDGE_NS}:edgenode:pi-a:7", "beat", beat.model_dump_json())
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    edge_a.zadd(f"{EDGE_NS}:edgenodes", {"pi-a/7": now_ms, "pi-b/7": now_ms})
    assert live_edge_nodes(admin, KEYS, ttl_s=30) == []

    gateway = gateways(acl_redis.url)
    as_b = delivery_message(
        INGEST_LISTINGS,
        {"source": "vinted", "listings": [], "delivery_id": "d-b"},
        delivery_id="d-b",
        signed_by=("pi-b", signing_key(creds_a.password)),
    )
    tampered = delivery_message(
        INGEST_LISTINGS,
        {"source": "vinted", "listings": [], "delivery_id": "d-t"},
        delivery_id="d-t",
        signed_by=_key_of(creds_a),
    )
    tampered.kwargs["payload"]["source"] = "grailed"
    huge = delivery_message(
        RECORD_LISTING_CHECK,
        {"item_id": 1, "outcome": "gone", "evidence": {"x": "y" * 10_000}},
        delivery_id="d-h",
        signed_by=_key_of(creds_a),
    )
    honest = delivery_message(
        INGEST_LISTINGS,
        {"source": "vinted", "listings": [], "delivery_id": "d-a"},
        delivery_id="d-a",
        signed_by=_key_of(creds_a),
    )
    for message in (as_b, tampered, huge, honest):
        as_a.enqueue(message)
    for message, error in ((as_b, "is not node 'pi-b'"), (tampered, "is not node 'pi-a'"), (huge, "out of bounds")):
        wait_until(lambda: _status(admin, message.message_id) == "dead", 60, f"not refused\n{gateway.output()}")
        assert error in _error(admin, message.message_id)
    wait_until(
        lambda: admin.llen(f"{NS}:ingest") == 1, 60, f"the honest delivery was not forwarded\n{gateway.output()}"
    )
    [rid] = admin.lrange(f"{NS}:ingest", 0, -1)
    forwarded = json.loads(admin.hget(f"{NS}:ingest.msgs", rid))
    assert (forwarded["kwargs"]["delivery_id"], forwarded["options"]["edge_node"]) == ("d-a", "pi-a")
    assert sorted(r["node_id"] for r in _refusals(admin)) == ["pi-a", "pi-a", "pi-b"]


def test_revoking_a_node_drops_its_connections_and_its_deliveries(
    acl_redis: RedisProcess, gateways: Callable[[str], Gateway]
) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    creds, edge, _ = _edge_user(acl_redis, "pi-a")
    assert edge.ping() is True
    queued = delivery_message(
        INGEST_LISTINGS,
        {"source": "vinted", "listings": [], "delivery_id": "late"},
        delivery_id="late",
        signed_by=_key_of(creds),
    )
    assert revoke_edge_credentials(admin, NS, "pi-a") is True
    with pytest.raises(redis.RedisError):  # its live connection is gone, and it cannot log in again
        edge.ping()
    with pytest.raises(redis.RedisError):
        redis.Redis.from_url(creds.redis_url).ping()
    gateway = gateways(acl_redis.url)
    twin = BackroomBroker(url=acl_redis.url, namespace=EDGE_NS, job_retention_s=3600, maintenance_chance=0)
    twin.enqueue(queued)  # signed before the revocation, still waiting: refused now
    wait_until(lambda: _status(admin, queued.message_id) == "dead", 60, f"not refused\n{gateway.output()}")
    assert "has no live credential" in _error(admin, queued.message_id) and _server_queues_empty(admin)
    assert revoke_edge_credentials(admin, NS, "pi-a") is False


@pytest.mark.parametrize("garbage", ["string", "list"])
def test_corrupt_shared_state_is_skipped(redis_client: redis.Redis, garbage: str) -> None:
    from broker.jobs import JobStore
    from broker.pauses import Pauses, paused_queues

    keys = Keys(NS)
    write = (lambda k: redis_client.set(k, "garbage")) if garbage == "string" else (lambda k: redis_client.rpush(k, 1))
    for key in (keys.paused, keys.edge.paused, keys.edge.edge_nodes, keys.job("j1"), keys.edge_signing_keys):
        write(key)
    assert Pauses(redis_client, keys).paused("ingest") is False and paused_queues(redis_client, keys) == set()
    assert Pauses(redis_client, keys.edge).paused("edge", fresh=True) is False
    assert live_edge_nodes(redis_client, keys, ttl_s=30) == []
    assert JobStore(redis_client, NS, 3600).get("j1") is None
    redis_client.delete(keys.edge.edge_nodes)
    redis_client.zadd(keys.edge.edge_nodes, {"pi-x/1": int(datetime.now(UTC).timestamp() * 1000)})
    redis_client.hset(keys.edge.edge_node("pi-x", 1), "beat", "{not json")
    assert live_edge_nodes(redis_client, keys, ttl_s=30) == []


def test_shared_edge_keys_a_node_corrupts_are_repaired_by_the_gateway(
    acl_redis: RedisProcess, gateways: Callable[[str], Gateway]
) -> None:
    admin = redis.Redis.from_url(acl_redis.url)
    creds, edge, as_node = _edge_user(acl_redis, "pi-a")
    honest = delivery_message(
        INGEST_LISTINGS,
        {"source": "vinted", "listings": [], "delivery_id": "d-r"},
        delivery_id="d-r",
        signed_by=_key_of(creds),
    )
    as_node.enqueue(honest)
    for key in (f"{EDGE_NS}:__heartbeats__", f"{EDGE_NS}:edgenodes", f"{EDGE_NS}:edge"):
        edge.set(key, "garbage")  # every edge consumer's fetch (and the gateway's) would fail on these
    gateway = gateways(acl_redis.url)
    wait_until(lambda: admin.llen(f"{NS}:ingest") == 1, 60, f"nothing forwarded\n{gateway.output()}")
    assert admin.type(f"{EDGE_NS}:__heartbeats__") == b"zset" and admin.type(f"{EDGE_NS}:edge") == b"none"
    # the repair's log line may reach the pipe after the forward it made possible
    wait_until(lambda: "wrong type deleted" in gateway.output(), 30, "the gateway's repair logged")
