"""Every production schedule, fired by the runner and run by a real worker, sends its real actor."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, UTC
from typing import Any

import pytest
import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.message import Message
from dramatiq.middleware import SkipMessage

import actors
from admin.schedules import change_list, change_source
import schedules  # noqa: F401  (declares the production schedules)
from broker.edge_registry import write_beat
from domain.edge_registry import EdgeBeat
from domain.jobs import JobRecord, JobStatus
from schedules.runner import discover_schedules
from tests.actors.helpers import wait_for_status
from tests.schedules.conftest import FakeClock, make_runner, run_db

# schedule -> (actor it sends, that actor's queue, args)
SINGLE = {
    "schedule_sync_embeddings": ("sync_embeddings", "ml", []),
    "schedule_prune_listings": ("prune_listings", "default", []),
    "schedule_sweep_enrichment": ("sweep_enrichment", "ml", []),
    "schedule_check_edge_nodes": ("check_edge_nodes", "default", []),
    "schedule_watch_dead_letters": ("watch_dead_letters", "default", []),
    "schedule_audit_refused_messages": ("audit_refused_messages", "default", []),
    "schedule_release_due_orders": ("release_due_orders", "orders", []),
    "schedule_poll_stalled_printify_orders": ("poll_stalled_printify_orders", "orders", []),
    "schedule_reconcile_orders": ("reconcile_orders", "orders", []),
    "schedule_sync_catalog": ("sync_catalog", "orders", []),
    "schedule_sweep_events": ("sweep_events", "events", []),
    "schedule_send_due_reminders": ("send_due_reminders", "notify", []),
}
MANY = ("schedule_purge_expired", "schedule_generate_collections", "schedule_scrape_sources")
BASE = datetime(2026, 4, 19, 9, 58, 30, tzinfo=UTC)


class OnlySchedules(Middleware):
    """Lets the worker run the periodic actors only: what they send is skipped (its record stays)."""

    def before_process_message(self, broker: Broker, message: Message) -> None:
        if not message.actor_name.startswith("schedule_"):
            raise SkipMessage()


@pytest.fixture()
def schedule_worker(redis_client: redis.Redis, schedule_tables: str) -> Iterator[Worker]:
    """A real worker over the periodic actors' queues that runs only the periodic actors."""
    gate = OnlySchedules()
    actors.broker.add_middleware(gate, before=type(actors.broker.middleware[0]))
    worker = Worker(actors.broker, queues={"default", "orders"}, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()
    actors.broker.middleware.remove(gate)
    tracking = next(m for m in actors.broker.middleware if type(m).__name__ == "JobTracking")
    tracking.writer.flush()


def fire(name: str) -> JobRecord:
    """Fire the schedule's next tick through the runner; the periodic job's record once it succeeded."""
    (schedule,) = discover_schedules(actors.broker, [name])
    tick = schedule.cron.next_after(BASE)
    assert tick is not None
    runner = make_runner(FakeClock(tick + timedelta(seconds=0.5)), name, owner="fanout")
    assert runner.fire_due(tick + timedelta(seconds=0.5)) == 1
    job_id = runner.store.state(name)["last_job_id"]
    return wait_for_status(job_id, JobStatus.SUCCEEDED, timeout=20)


def sent(job_id: str) -> JobRecord:
    record = actors.broker.jobs.get(job_id)
    assert record is not None, f"no record of the job {job_id} the schedule sent"
    return record


def edge_messages(client: redis.Redis) -> list[tuple[str, dict[str, Any]]]:
    """(actor, kwargs) of every message waiting on the `edge` queue, sorted."""
    decoded = [Message.decode(p) for p in client.hvals(actors.broker.jobs.keys.edge.messages("edge"))]
    return sorted(((m.actor_name, m.kwargs) for m in decoded), key=repr)


def test_every_production_schedule_is_covered() -> None:
    names = {s.name for s in discover_schedules(actors.broker) if not s.name.startswith("sched_")}
    assert names == set(SINGLE) | set(MANY)


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_a_schedule_sends_its_actor(name: str, schedule_worker: Worker) -> None:
    actor, queue, args = SINGLE[name]
    target = sent(fire(name).result)
    assert (target.actor, target.queue, target.args) == (actor, queue, args)
    assert target.unique_key in (f"schedule:{actor}", None)  # None: release_due_orders, not deduplicated


def test_retention_sends_purge_expired_and_the_dead_letter_trim(schedule_worker: Worker) -> None:
    targets = [sent(job_id) for job_id in fire("schedule_purge_expired").result]
    assert [(t.actor, t.queue) for t in targets] == [("purge_expired", "default"), ("trim_dead_letters", "default")]


def test_collections_are_generated_for_each_configured_surface(schedule_worker: Worker, schedule_tables: str) -> None:
    run_db(schedule_tables, lambda conn: change_list(conn, "surfaces", by="test", set_to=["home", "drops"]))
    result = fire("schedule_generate_collections").result
    targets = [sent(job_id) for job_id in result["job_ids"]]
    assert [(t.actor, t.args) for t in targets] == [
        ("generate_collections", ["home"]),
        ("generate_collections", ["drops"]),
    ]


def test_the_scrape_cycle_sends_each_source_and_query_to_the_edge(
    redis_client: redis.Redis, schedule_worker: Worker, schedule_tables: str
) -> None:
    write_beat(
        redis_client,
        actors.broker.jobs.keys,
        EdgeBeat(node_id="pi-1", pid=7, version="t", host="pi", last_beat=datetime.now(UTC)),
        ttl_s=60,
    )

    async def configure(conn: Any) -> None:
        await change_list(conn, "brands", by="test", set_to=["Raf Simons", "Helmut Lang"])
        await change_source(conn, "vinted", by="test", queries=["ramones"], limit=5, brands=False)
        await change_source(conn, "grailed", by="test", queries=["raf simons"], limit=20)  # a brand twice: once
        await change_source(conn, "shop", by="test", queries=["boots"], enabled=False)

    run_db(schedule_tables, configure)
    result = fire("schedule_scrape_sources").result
    assert result["sent"] == 3 and result["skipped"] == 0
    assert edge_messages(redis_client) == sorted(
        [
            ("scrape_source", {"source": "vinted", "query": "ramones", "limit": 5}),
            ("scrape_source", {"source": "grailed", "query": "raf simons", "limit": 20}),
            ("scrape_source", {"source": "grailed", "query": "Helmut Lang", "limit": 20}),
        ],
        key=repr,
    )


def test_the_scrape_cycle_is_skipped_with_a_warning_when_no_edge_node_is_live(
    redis_client: redis.Redis, schedule_worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="backroom.schedules"):
        result = fire("schedule_scrape_sources").result
    assert result["sent"] == 0 and result["skipped"] == 2 * 10  # vinted and grailed x the default brands
    assert edge_messages(redis_client) == []
    assert "scrape cycle skipped after 0 of 20 scrape(s)" in caplog.text
