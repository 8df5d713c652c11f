"""Edge work lives in the edge namespace: the admin's dead letters, job lookups and queue keys find it there."""

from __future__ import annotations

import logging

import pytest
import redis
from dramatiq.message import Message

from broker.deadletters import DeadLetters
from broker.jobs import JobStore
from broker.keys import Keys, edge_namespace
from broker.redis import BackroomBroker
from domain.contracts import EDGE_QUEUE, SCRAPE_SOURCE

KEYS = Keys("backroom")


def test_the_edge_namespace_and_the_queues_that_live_there() -> None:
    assert edge_namespace("backroom") == edge_namespace("backroom-edge") == "backroom-edge"
    assert KEYS.for_queue("edge.DQ").ns == KEYS.for_queue("results").ns == "backroom-edge"
    assert KEYS.for_queue("ingest").ns == "backroom" and KEYS.edge.server_ns == "backroom"
    assert KEYS.edge.refused == KEYS.refused == "backroom:refused"  # audit state stays in the server namespace


def _dead_edge_job(redis_client: redis.Redis) -> Message:
    """An edge job whose last attempt died: its message on edge.XQ, its record dead (edge namespace)."""
    edge = BackroomBroker(
        url="", client=redis_client, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0
    )
    message = edge.enqueue(
        Message(
            queue_name=EDGE_QUEUE,
            actor_name=SCRAPE_SOURCE,
            args=(),
            kwargs={"source": "vinted", "query": "q", "limit": 1},
            options={},
        )
    )
    rid = redis_client.lpop(KEYS.edge.queue(EDGE_QUEUE))
    redis_client.zadd(KEYS.edge.dead(EDGE_QUEUE), {rid: 1})
    redis_client.hset(KEYS.edge.dead_messages(EDGE_QUEUE), rid, redis_client.hget(KEYS.edge.messages(EDGE_QUEUE), rid))
    redis_client.hset(KEYS.edge.job(message.message_id), "status", "dead")
    return message


def test_edge_dead_letters_are_listed_and_requeued_where_edge_workers_consume(redis_client: redis.Redis) -> None:
    message = _dead_edge_job(redis_client)
    dead = DeadLetters(redis_client, "backroom", 86_400_000)
    assert dead.counts()[EDGE_QUEUE] == 1
    [item] = dead.list(EDGE_QUEUE).items
    assert (item.job_id, item.actor) == (message.message_id, SCRAPE_SOURCE)
    assert dead.requeue(EDGE_QUEUE, [item.redis_id]).job_ids == [message.message_id]
    assert redis_client.llen(KEYS.edge.queue(EDGE_QUEUE)) == 1 and redis_client.llen(KEYS.queue(EDGE_QUEUE)) == 0
    assert JobStore(redis_client, "backroom", 3600).get(message.message_id).status.value == "queued"


def test_an_edge_job_waiting_on_edge_can_be_cancelled(redis_client: redis.Redis) -> None:
    import actors
    from broker.edge_registry import send_edge_message

    message = send_edge_message(
        actors.broker, SCRAPE_SOURCE, {"source": "vinted", "query": "q", "limit": 1}, ttl_s=30, force=True
    )
    assert actors.broker.jobs.cancel(message.message_id, now_ms=1).value == "cancelled"
    assert redis_client.llen(KEYS.edge.queue(EDGE_QUEUE)) == 0
    assert actors.broker.jobs.get(message.message_id).status.value == "cancelled"
    redis_client.hset(KEYS.edge.job("forged"), "status", "owned")  # a node's garbage reads as unknown
    assert actors.broker.jobs.cancel("forged", now_ms=1) is None


def test_an_edge_jobs_detail_is_found_and_a_forged_one_reads_as_unknown(redis_client: redis.Redis) -> None:
    from admin.jobsearch import JobSearch

    edge = BackroomBroker(
        url="", client=redis_client, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0
    )
    message = edge.enqueue(
        Message(
            queue_name=EDGE_QUEUE,
            actor_name=SCRAPE_SOURCE,
            args=(),
            kwargs={"source": "vinted", "query": "q", "limit": 1},
            options={},
        )
    )
    search = JobSearch(redis_client, KEYS)
    detail = search.detail(message.message_id)
    assert detail is not None and (detail.record.actor, detail.record.queue) == (SCRAPE_SOURCE, EDGE_QUEUE)
    redis_client.hset(KEYS.edge.job("forged"), mapping={"status": "owned", "args": "{not json"})
    redis_client.rpush(KEYS.edge.events("forged"), "garbage")
    assert search.detail("forged") is None


def test_an_edited_edge_dead_letter_is_replayed_where_edge_workers_consume(redis_client: redis.Redis) -> None:
    from admin.replay import replay

    old = _dead_edge_job(redis_client)
    server = BackroomBroker(
        url="", client=redis_client, namespace="backroom", job_retention_s=3600, maintenance_chance=0
    )
    result = replay(server, EDGE_QUEUE, old.message_id, kwargs={"source": "vinted", "query": "edited", "limit": 2})
    assert redis_client.llen(KEYS.edge.queue(EDGE_QUEUE)) == 1 and redis_client.llen(KEYS.queue(EDGE_QUEUE)) == 0
    assert redis_client.zcard(KEYS.edge.dead(EDGE_QUEUE)) == 0 and not redis_client.exists(KEYS.job(result.job_id))
    [rid] = redis_client.lrange(KEYS.edge.queue(EDGE_QUEUE), 0, -1)
    sent = Message.decode(redis_client.hget(KEYS.edge.messages(EDGE_QUEUE), rid))
    assert (sent.message_id, sent.kwargs["query"]) == (result.job_id, "edited")
    edge_jobs = JobStore(redis_client, "backroom-edge", 3600)
    assert edge_jobs.get(result.job_id).replayed_from == old.message_id
    assert edge_jobs.get(old.message_id).replayed_as == result.job_id


def _describe(redis_client: redis.Redis, keys: Keys, broker_id: str, queues: str, beat: int, **extra: object) -> None:
    redis_client.zadd(keys.heartbeats, {broker_id: beat})
    redis_client.hset(
        keys.worker(broker_id),
        mapping={
            "name": f"{broker_id}:1",
            "host": broker_id,
            "pid": 1,
            "queues": queues,
            "threads": 2,
            "last_beat": beat,
            **extra,
        },
    )


def test_workers_list_edge_workers_and_the_gateway_marked_edge_and_skip_a_nodes_garbage(
    redis_client: redis.Redis,
) -> None:
    from admin.workers import Workers
    from config.settings import ALL_QUEUES

    message = BackroomBroker(
        url="", client=redis_client, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0
    ).enqueue(Message(queue_name=EDGE_QUEUE, actor_name=SCRAPE_SOURCE, args=(), kwargs={}, options={}))
    rid = redis_client.lpop(KEYS.edge.queue(EDGE_QUEUE))  # fetched by a pi1 worker that then died
    now = 10_000_000
    _describe(redis_client, KEYS, "server-1", "default,ingest", now)
    _describe(redis_client, KEYS.edge, "edge-pi1-aa", "edge", now - 60_000)
    redis_client.sadd(KEYS.edge.acks("edge-pi1-aa", EDGE_QUEUE), rid)
    _describe(redis_client, KEYS.edge, "gateway-bb", "results", now)
    _describe(redis_client, KEYS.edge, "edge-pi2-cc", "edge", now, pid="not a pid")  # a node's garbage
    redis_client.zadd(KEYS.edge.heartbeats, {"edge-pi2-dd": now})
    redis_client.set(KEYS.edge.worker("edge-pi2-dd"), "wrong type")
    view = Workers(redis_client, KEYS, ALL_QUEUES, 10_000).view(now)
    assert {(w.broker_id, w.edge, w.alive) for w in view.workers} == {
        ("server-1", False, True),
        ("gateway-bb", True, True),
        ("edge-pi1-aa", True, False),
    }
    (orphan,) = view.orphans
    assert (orphan.job_id, orphan.queue, orphan.worker) == (message.message_id, EDGE_QUEUE, "edge-pi1-aa:1")
    redis_client.set(KEYS.edge.heartbeats, "wrong type")
    assert [w.broker_id for w in Workers(redis_client, KEYS, ALL_QUEUES, 10_000).view(now).workers] == ["server-1"]


def test_the_edge_queues_consumers_and_in_flight_are_the_edge_namespaces_workers(redis_client: redis.Redis) -> None:
    from broker.queues import QueueStats
    from config.settings import ALL_QUEUES

    now = 10_000_000
    _describe(redis_client, KEYS, "server-1", "default,ingest", now)
    _describe(redis_client, KEYS.edge, "edge-pi1-aa", "edge,default", now)  # claiming a server queue: ignored
    redis_client.sadd(KEYS.edge.acks("edge-pi1-aa", EDGE_QUEUE), "r1", "r2")
    redis_client.zadd(KEYS.edge.heartbeats, {"edge-pi2-bb": now})
    redis_client.set(KEYS.edge.worker("edge-pi2-bb"), "wrong type")  # a node's garbage: not a consumer
    views = {q.name: q for q in QueueStats(redis_client, KEYS, ALL_QUEUES, 10_000).overview(now)}
    assert (views[EDGE_QUEUE].workers, views[EDGE_QUEUE].in_flight) == (["edge-pi1-aa:1"], 2)
    assert views["default"].workers == ["server-1:1"] and views["default"].in_flight == 0


def test_job_search_merges_both_namespaces_by_time_with_one_cursor_and_skips_a_nodes_garbage(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    from admin.jobsearch import JobSearch

    def job(namespace: str, queue: str, actor: str, at: int) -> str:
        broker = BackroomBroker(
            url="", client=redis_client, namespace=namespace, job_retention_s=3600, maintenance_chance=0
        )
        job_id = broker.enqueue(Message(queue_name=queue, actor_name=actor, args=(), kwargs={}, options={})).message_id
        redis_client.zadd(Keys(namespace).job_index, {job_id: at})  # a chosen enqueue time
        return job_id

    s1, e1 = job("backroom", "default", "ping", 1000), job("backroom-edge", EDGE_QUEUE, SCRAPE_SOURCE, 2000)
    s2, e2 = job("backroom", "default", "ping", 3000), job("backroom-edge", EDGE_QUEUE, SCRAPE_SOURCE, 4000)
    same = job("backroom-edge", EDGE_QUEUE, SCRAPE_SOURCE, 3000)  # the same millisecond as s2
    redis_client.zadd(
        KEYS.edge.job_index,
        {"not an id!": 3500, "inf": float("inf"), "far": 1e300, "minus": -5, "forged": 2500, "junk": 1500},
    )
    redis_client.hset(KEYS.edge.job("forged"), mapping={"status": "queued", "queue": "default", "actor": "ping"})
    redis_client.hset(KEYS.edge.job("junk"), mapping={"status": "owned", "queue": EDGE_QUEUE})
    search = JobSearch(redis_client, KEYS)
    page = search.search()
    tie = sorted([(s2, "default"), (same, EDGE_QUEUE)], reverse=True)  # one millisecond: by id, as Redis orders
    assert [(j.job_id, j.queue) for j in page.items] == [(e2, EDGE_QUEUE), *tie, (e1, EDGE_QUEUE), (s1, "default")]
    seen, cursor = [], None
    while True:
        one = search.search(limit=1, cursor=cursor)
        seen += [j.job_id for j in one.items]
        if one.complete:
            break
        cursor = one.next_cursor
    assert seen == [j.job_id for j in page.items]
    seen, cursor = [], None
    for _ in range(20):  # one entry a call, garbage included: every cursor moves on
        one = search.search(cursor=cursor, max_scan=1)
        seen += [j.job_id for j in one.items]
        if one.complete:
            break
        cursor = one.next_cursor
    assert seen == [j.job_id for j in page.items] and one.complete
    assert [j.job_id for j in search.search(queue=EDGE_QUEUE).items] == [e2, same, e1]
    assert [j.job_id for j in search.search(queue="default").items] == [s2, s1]
    redis_client.delete(KEYS.edge.job_index)
    redis_client.set(KEYS.edge.job_index, "wrong type")
    assert [j.job_id for j in search.search().items] == [s2, s1]
    garbled = [r.args[0] for r in caplog.records if r.name == "broker.garbled"]
    assert len(garbled) == len(set(garbled))  # each unreadable key logged once, however often it was read
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="broker.garbled"):
        search.search()
    assert not caplog.records
