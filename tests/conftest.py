"""Real services for the whole suite: a redis-server and PostgreSQL 16 + pgvector.

They start when this conftest is imported, before any test module or nested conftest, because importing
`actors` builds the broker from REDIS_URL / DATABASE_URL. TEST_REDIS_URL and
TEST_DATABASE_URL point the suite at servers you run yourself instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from cli.stack import PostgresProcess, RedisProcess

SERVICES: dict[str, Any] = {}


def _start_services() -> None:
    root = Path(tempfile.mkdtemp(prefix="backroom-tests-"))
    SERVICES["root"] = root
    if os.environ.get("TEST_REDIS_URL"):
        os.environ["REDIS_URL"] = os.environ["TEST_REDIS_URL"]
    else:
        SERVICES["redis"] = RedisProcess(root / "redis").start()
        os.environ["REDIS_URL"] = SERVICES["redis"].url
    if os.environ.get("TEST_DATABASE_URL"):
        admin_url = os.environ["TEST_DATABASE_URL"]
        database_url = admin_url
    else:
        SERVICES["postgres"] = PostgresProcess(root / "pg").start()
        admin_url = SERVICES["postgres"].admin_url
        database_url = SERVICES["postgres"].database_url("backroom_test")
    SERVICES["pg_admin_url"] = admin_url
    os.environ["DATABASE_URL"] = database_url
    os.environ["METRICS_PORT"] = "0"
    os.environ.setdefault("LOG_FORMAT", "console")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("EVENTS_ALLOW_ADDRESSES", "loopback")  # the fake storefronts listen on 127.0.0.1
    from db.migrate import migrate

    asyncio.run(migrate(database_url))


_start_services()


def pytest_unconfigure(config: pytest.Config) -> None:
    # pgserver logs again from its atexit hook, after pytest closed the stream it would write to
    logging.getLogger("pgserver").disabled = True
    if "redis" in SERVICES:
        SERVICES["redis"].stop()
    if "postgres" in SERVICES:
        SERVICES["postgres"].stop()
    shutil.rmtree(SERVICES.get("root", ""), ignore_errors=True)


@pytest.fixture(autouse=True)
def broker_middleware_restored() -> Iterator[None]:
    """Each test leaves the shared broker's middleware as it found it: a Dramatiq Worker adds a middleware
    of its own when it starts and never removes it, so every later worker would meet the stopped ones
    (each start warning "a middleware of the same type twice" once per stopped worker)."""
    broker = getattr(sys.modules.get("actors"), "broker", None)  # only once a test has imported it
    before = list(broker.middleware) if broker is not None else None
    yield
    if broker is not None and before is not None:
        broker.middleware[:] = before


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """DSN of the test server's maintenance database (to create throwaway databases)."""
    return str(SERVICES["pg_admin_url"])


@pytest.fixture(scope="session")
def database_url() -> str:
    """DSN of the migrated test database."""
    return os.environ["DATABASE_URL"]


@pytest.fixture()
def redis_client() -> Iterator[redis.Redis]:
    """A client on the test Redis, emptied before the test."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.flushdb()
    yield client
    client.close()


@pytest.fixture()
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool (pgvector codec on) on the suite's database, the one workers write."""
    from db.pool import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=3)
    yield pool
    await pool.close()


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server (append-only) of this test's own: it can be restarted, and ACL users stay in it."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.stop(kill=True)
