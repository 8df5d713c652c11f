"""A real edge worker (`backroom worker --edge`) runs scrape_source: results arrive on `results`, blocks retry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from dramatiq.message import Message

from broker.redis import BackroomBroker
from cli.stack import RedisProcess
from domain import contracts
from domain.jobs import JobStatus
from fakes.marketplace import Marketplace
from tests.edge.scrape_support import expected, market, market_server  # noqa: F401
from cli.stack import descendants, stop_tree
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def edge_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own (no server worker consumes `ingest` here)."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop(kill=True)


@pytest.fixture()
def edge_worker(edge_redis: RedisProcess, market: Marketplace, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """`backroom worker --edge` (one process, two threads) pointed at the marketplace; killed at the end."""
    env = {
        **os.environ,
        **market.env(),
        "REDIS_URL": edge_redis.url,
        "EDGE_OUTBOX_PATH": str(tmp_path / "outbox.db"),
        "EDGE_NODE_ID": "test-pi",
        "EDGE_PAGES_IN_FLIGHT": "2",
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--edge", "-p", "1", "-t", "2"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    yield process
    stop_tree(process)


def send_scrape(broker: BackroomBroker, **options: Any) -> Message:
    """Enqueue scrape_source on `edge` by name, as the server's send_to_edge does."""
    kwargs = options.pop("kwargs")
    message = Message(
        queue_name=contracts.EDGE_QUEUE, actor_name=contracts.SCRAPE_SOURCE, args=(), kwargs=kwargs, options=options
    )
    broker.enqueue(message)
    return message


def ingest_messages(client: redis.Redis) -> list[dict[str, Any]]:
    """The deliveries for `ingest` waiting on `results` (unwrapped from their signed envelopes)."""
    ids = client.lrange(f"backroom-edge:{contracts.RESULTS_QUEUE}", 0, -1)
    envelopes = [json.loads(client.hget(f"backroom-edge:{contracts.RESULTS_QUEUE}.msgs", i))["kwargs"] for i in ids]
    return [
        {"actor_name": e["actor"], "queue_name": contracts.queue_of(e["actor"]), "kwargs": e["payload"]}
        for e in envelopes
    ]


def chromium_pids(root: int) -> list[int]:
    """Chromium processes under `root`."""
    found = []
    for pid in descendants(root):
        try:
            if b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


def test_scrape_source_delivers_listings_to_ingest(
    edge_redis: RedisProcess, edge_worker: subprocess.Popen, market: Marketplace
) -> None:
    client = redis.Redis.from_url(edge_redis.url)
    broker = BackroomBroker(url=edge_redis.url, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0)
    message = send_scrape(broker, kwargs={"source": "vinted", "query": "jacket brand:53,14", "limit": 40})
    [delivered] = wait_until(lambda: ingest_messages(client), 120, "the ingest message arrives")
    assert delivered["actor_name"] == contracts.INGEST_LISTINGS and delivered["queue_name"] == "ingest"
    kwargs = delivered["kwargs"]
    assert kwargs["source"] == "vinted" and kwargs["delivery_id"] == f"scrape_source:{message.message_id}"
    assert {x["source_listing_id"] for x in kwargs["listings"]} == expected(
        market, "vinted", "jacket", brand_id={53, 14}
    )
    assert all(x["currency"] == "EUR" and x["price_cents"] > 0 for x in kwargs["listings"])
    record = wait_until(
        lambda: (r := broker.jobs.get(message.message_id)) and r.status is JobStatus.SUCCEEDED and r,
        30,
        "the scrape job succeeds",
    )
    assert record.attempts == 1
    assert chromium_pids(edge_worker.pid), "the browser stays open between jobs"
    second = send_scrape(broker, kwargs={"source": "shop", "query": "fleece", "limit": 3})
    wait_until(lambda: len(ingest_messages(client)) == 2, 120, "the second job delivers")
    # its record is marked after the actor returns, a moment after the delivery it enqueued
    wait_until(lambda: broker.jobs.get(second.message_id).status is JobStatus.SUCCEEDED, 30, "the second job succeeds")
    browsers = chromium_pids(edge_worker.pid)
    edge_worker.send_signal(signal.SIGTERM)
    assert edge_worker.wait(timeout=60) == 0
    wait_until(lambda: not [p for p in browsers if Path(f"/proc/{p}").exists()], 10, "chromium closes on shutdown")


def test_a_blocked_scrape_is_retried_and_delivers_once_unblocked(
    edge_redis: RedisProcess, edge_worker: subprocess.Popen, market: Marketplace
) -> None:
    client = redis.Redis.from_url(edge_redis.url)
    broker = BackroomBroker(url=edge_redis.url, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0)
    market.rate_limit("vinted", retry_after=2)
    message = send_scrape(broker, kwargs={"source": "vinted", "query": "hoodie", "limit": 10})
    record = wait_until(
        lambda: (r := broker.jobs.get(message.message_id)) and r.last_error and r, 120, "the first attempt is blocked"
    )
    assert "blocked" in record.last_error and "HTTP 429" in record.last_error
    assert record.status in (JobStatus.RETRYING, JobStatus.RUNNING) and ingest_messages(client) == []
    market.rate_limit("vinted", on=False)
    [delivered] = wait_until(lambda: ingest_messages(client), 120, "the retry delivers")
    assert delivered["kwargs"]["delivery_id"] == f"scrape_source:{message.message_id}"
    assert len(delivered["kwargs"]["listings"]) == min(10, len(expected(market, "vinted", "hoodie")))
    done = wait_until(
        lambda: (r := broker.jobs.get(message.message_id)) and r.status is JobStatus.SUCCEEDED and r,
        30,
        "the job succeeds",
    )
    assert done.attempts >= 2


def test_an_unknown_source_fails_at_once(edge_redis: RedisProcess, edge_worker: subprocess.Popen) -> None:
    broker = BackroomBroker(url=edge_redis.url, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0)
    message = send_scrape(broker, kwargs={"source": "ebay", "query": "x", "limit": 5})
    record = wait_until(
        lambda: (r := broker.jobs.get(message.message_id)) and r.status is JobStatus.DEAD and r,
        120,
        "the job is dead-lettered without retries",
    )
    assert record.attempts == 1 and "no source adapter named 'ebay'" in record.last_error
