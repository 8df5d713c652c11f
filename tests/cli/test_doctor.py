"""`run_doctor` against the test services and against a Redis configured the wrong way."""

from __future__ import annotations

import io
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis
from rich.console import Console

from cli.doctor import OK, PROBLEM, UNKNOWN, WARN, Check, host_checks, postgres_checks, redis_checks, run_doctor
from cli.stack import free_port, redis_server_binary
from config.settings import Settings
from tests.waiting import wait_until


def settings(**overrides: str) -> Settings:
    values = {"redis_url": os.environ["REDIS_URL"], "database_url": os.environ["DATABASE_URL"], **overrides}
    return Settings(**values)


def doctor(config: Settings) -> tuple[int, str]:
    out = io.StringIO()
    code = run_doctor(config, console=Console(file=out, width=250, color_system=None))
    return code, out.getvalue()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


@pytest.fixture(scope="module")
def careless_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server without persistence that evicts keys, with a user denied CONFIG, INFO and KEYS."""
    directory: Path = tmp_path_factory.mktemp("careless-redis")
    port = free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "no",
            "--save",
            "",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:

        def users_set() -> bool:
            try:
                client.acl_setuser(
                    "locked",
                    enabled=True,
                    passwords=["+pw"],
                    keys=["*"],
                    channels=["*"],
                    commands=["+@all", "-config", "-info", "-keys"],
                )
                client.acl_setuser(
                    "noscript",
                    enabled=True,
                    passwords=["+pw"],
                    keys=["*"],
                    channels=["*"],
                    commands=["+@all", "-@scripting"],
                )
                return True
            except redis.ConnectionError:
                return False

        wait_until(users_set, 10, "the careless Redis to start and take the ACL users")
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def test_a_healthy_deployment_passes(redis_client: redis.Redis) -> None:
    code, output = doctor(settings())
    assert code == 0, output
    assert "PROBLEM" not in output and "no problems" in output
    for name in (
        "Redis persistence",
        "Redis maxmemory-policy",
        "Redis EVALSHA",
        "Redis KEYS",
        "Redis version",
        "pgvector extension",
        "migrations",
        "Chromium (edge scraping)",
    ):
        assert name in output
    checks = by_name(redis_checks(settings()))
    assert {c.status for c in checks.values()} == {"OK"}
    assert checks["Redis persistence"].detail.startswith("AOF on")


def test_no_persistence_and_eviction_are_problems_with_fixes(careless_redis: str) -> None:
    code, output = doctor(settings(redis_url=careless_redis))
    assert code == 1 and "2 problem(s)" in output
    checks = by_name(redis_checks(settings(redis_url=careless_redis)))
    persistence, eviction = checks["Redis persistence"], checks["Redis maxmemory-policy"]
    assert persistence.status == PROBLEM and "live only in Redis" in persistence.detail
    assert "CONFIG SET appendonly yes" in persistence.fix
    assert eviction.status == PROBLEM and "allkeys-lru" in eviction.detail
    assert "noeviction" in eviction.fix
    assert checks["Redis KEYS"].status == checks["Redis EVALSHA"].status == "OK"


def test_a_user_without_config_info_or_keys_gets_cannot_check_not_a_crash(careless_redis: str) -> None:
    locked = careless_redis.replace("redis://", "redis://locked:pw@")
    checks = by_name(redis_checks(settings(redis_url=locked)))
    assert checks["Redis reachable"].status == "OK" and "pw" not in checks["Redis reachable"].detail
    assert checks["Redis version"].status == UNKNOWN
    assert checks["Redis persistence"].status == UNKNOWN and checks["Redis maxmemory-policy"].status == UNKNOWN
    assert checks["Redis KEYS"].status == WARN and "+keys" in checks["Redis KEYS"].fix
    assert checks["Redis EVALSHA"].status == "OK"


def test_a_user_without_scripting_is_a_problem(careless_redis: str) -> None:
    checks = by_name(redis_checks(settings(redis_url=careless_redis.replace("redis://", "redis://noscript:pw@"))))
    assert checks["Redis EVALSHA"].status == PROBLEM and "+@scripting" in checks["Redis EVALSHA"].fix
    assert checks["Redis persistence"].status == PROBLEM  # CONFIG is still allowed for this one


def test_unreachable_services_are_problems(redis_client: redis.Redis) -> None:
    port = free_port()
    code, output = doctor(
        settings(
            redis_url=f"redis://:secret@127.0.0.1:{port}/0",
            database_url=f"postgresql://u:secret@127.0.0.1:{free_port()}/x",
        )
    )
    assert code == 1
    assert "Redis reachable" in output and "PostgreSQL reachable" in output and "secret" not in output


async def test_a_database_without_pgvector_or_migrations(pg_admin_url: str) -> None:
    name = f"doctor_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = pg_admin_url.replace("/postgres?", f"/{name}?") if "/postgres?" in pg_admin_url else None
        if dsn is None:
            pytest.skip("cannot derive a DSN for a throwaway database from the admin URL")
        checks = by_name(await _in_thread(dsn))
        assert checks["PostgreSQL reachable"].status == "OK"
        assert (
            checks["pgvector extension"].status == PROBLEM and "backroom db migrate" in checks["pgvector extension"].fix
        )
        assert checks["migrations"].status == PROBLEM and "pending" in checks["migrations"].detail
    finally:
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


async def _in_thread(dsn: str) -> list[Check]:
    import asyncio

    return await asyncio.to_thread(postgres_checks, dsn)  # postgres_checks runs its own event loop


def test_the_chromium_check_follows_edge_chromium_path(tmp_path: Path) -> None:
    def chromium_check(config: Settings) -> Check:
        return next(c for c in host_checks(config) if c.name == "Chromium (edge scraping)")

    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    found = chromium_check(settings(edge_chromium_path=str(fake)))
    assert found.status == OK and str(fake) in found.detail
    missing = chromium_check(settings(edge_chromium_path=str(tmp_path / "nowhere")))
    assert missing.status == WARN and "nowhere" in missing.detail and "EDGE_CHROMIUM_PATH" in missing.detail
