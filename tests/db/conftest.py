"""Fixtures for tests/db: one real PostgreSQL + pgvector per session, a fresh database per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from db.migrate import migrate
from db.pool import create_pool


def with_database(dsn: str, database: str) -> str:
    """Return `dsn` pointing at `database` instead, keeping host, user and query."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def pg_server_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server DSN: $TEST_DATABASE_URL, else the suite's server, else a throwaway pgserver."""
    env_dsn = os.environ.get("TEST_DATABASE_URL")
    if env_dsn:
        yield env_dsn
        return
    try:
        # Reuse the server tests/conftest.py already started rather than boot a second one.
        yield str(request.getfixturevalue("pg_admin_url"))
        return
    except pytest.FixtureLookupError:
        pass
    import pgserver

    # mkdtemp under /tmp keeps the unix-socket path well under its 107-byte limit.
    server = pgserver.get_server(tempfile.mkdtemp(prefix="backroom-pg-"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
async def empty_db_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    """A DSN for a brand-new empty database, dropped after the test."""
    name = f"test_{uuid.uuid4().hex}"
    admin = await asyncpg.connect(pg_server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(pg_server_dsn, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def migrated_db_dsn(empty_db_dsn: str) -> str:
    """A DSN for a fresh database with every migration applied."""
    await migrate(empty_db_dsn)
    return empty_db_dsn


@pytest.fixture
async def db_pool(migrated_db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on a migrated database."""
    pool = await create_pool(migrated_db_dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()
