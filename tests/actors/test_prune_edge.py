"""Vinted listings are checked on the edge: a real edge worker with real Chromium, results back through the gateway."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from dramatiq import Worker

import actors
from actors.prune import check_listing
from broker.edge_registry import live_edge_nodes
from config.settings import SERVER_QUEUES, get_settings
from db.listing_checks import select_checks
from domain.jobs import JobStatus
from fakes.marketplace import Marketplace
from tests.actors.helpers import wait_for_status
from tests.actors.test_prune import put_listing
from tests.orders_support import connect
from cli.edge import create_edge_credentials
from cli.stack import stop_tree
from tests.edge.conftest import Gateway
from tests.waiting import eventually, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def market() -> Iterator[Marketplace]:
    """The local marketplace for this test."""
    market = Marketplace(seed=9, per_source=6, slow_s=30.0).start()
    yield market
    market.stop()


@pytest.fixture()
def server_worker(redis_client: redis.Redis) -> Iterator[Worker]:
    """A worker over the server queues only (the edge queue belongs to the edge worker)."""
    worker = Worker(actors.broker, queues=set(SERVER_QUEUES), worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture()
def edge_worker(server_worker: Worker, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """`backroom worker --edge` (one process, two threads) on the suite's Redis with its own credential, and the
    edge gateway that forwards its results; killed at the end."""
    url = redis.connection.parse_url(os.environ["REDIS_URL"])
    creds = create_edge_credentials(actors.broker.client, "backroom", "prune-pi", host=url["host"], port=url["port"])
    gateway = Gateway(os.environ["REDIS_URL"], tmp_path)
    env = {
        **os.environ,
        "REDIS_URL": creds.redis_url,
        "EDGE_OUTBOX_PATH": str(tmp_path / "outbox.db"),
        "EDGE_NODE_ID": "prune-pi",
        "EDGE_HEARTBEAT_S": "0.3",
        "EDGE_PAGE_TIMEOUT_MS": "3000",
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "0",
    }
    log = (tmp_path / "edge.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--edge", "-p", "1", "-t", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    keys = actors.broker.jobs.keys
    wait_until(lambda: live_edge_nodes(actors.broker.client, keys, ttl_s=30), timeout=60, what="a live edge node")
    yield process
    stop_tree(process)
    gateway.stop()
    log.close()
    actors.broker.client.execute_command("ACL", "DELUSER", creds.user)


@pytest.fixture()
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the database the worker writes."""
    conn = await connect(database_url)
    yield conn
    await conn.close()


@pytest.mark.parametrize(
    ("state", "status", "outcome"),
    [
        ("sold", "sold", "sold"),
        ("removed", "archived", "archived"),
        ("blocked", "available", "unknown"),
        ("available", "available", "available"),
    ],
)
async def test_a_vinted_listing_is_checked_in_the_edge_browser(
    market, edge_worker, conn, monkeypatch, state, status, outcome
) -> None:
    for name, value in {"prune_edge_sources": "vinted", "prune_host_rate_per_s": 20.0, "prune_jitter": 0.0}.items():
        monkeypatch.setattr(get_settings(), name, value)
    item_id = await put_listing(conn, market, "vinted", 0, state)
    sent = wait_for_status(check_listing.send(item_id).message_id, JobStatus.SUCCEEDED).result
    assert sent["sent_to"] == "edge"

    async def checked() -> list:
        return await select_checks(conn, item_id)

    [check] = await eventually(checked, timeout=60, what="the edge's evidence recorded")
    assert (check.via, check.outcome) == ("edge", outcome), check
    assert await conn.fetchval("SELECT status FROM items WHERE id = $1", item_id) == status
    assert [r.path for r in market.requests("vinted")][0].startswith("/items/")  # fetched by the edge browser
