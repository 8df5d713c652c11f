"""`backroom doctor`: check that a live deployment has what Backroom needs, and say how to fix it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config.settings import EdgeSettings, Settings

OK, WARN, PROBLEM, UNKNOWN = "OK", "WARN", "PROBLEM", "CANNOT CHECK"
MIN_REDIS = (6, 2)
MIN_POSTGRES = 15
MIN_PGVECTOR = (0, 5)
_STYLE = {OK: "green", WARN: "yellow", PROBLEM: "bold red", UNKNOWN: "blue"}
_DURABLE = "queued jobs, delayed retries, dead letters and job records live only in Redis"


@dataclass(frozen=True)
class Check:
    """One check's outcome and, when it is not OK, how to fix it."""

    name: str
    status: str
    detail: str
    fix: str = ""


def run_doctor(settings: Settings, *, console: Console | None = None) -> int:
    """Check Redis, PostgreSQL and the host; print each check with its fix; 1 when any PROBLEM."""
    checks = [*redis_checks(settings), *postgres_checks(settings.database_url), *host_checks(settings)]
    console = console or Console()
    table = Table("check", "status", "detail / fix", title="backroom doctor", title_justify="left")
    for check in checks:
        text = escape(check.detail) + (f"\n[bold]fix:[/bold] {escape(check.fix)}" if check.fix else "")
        table.add_row(check.name, f"[{_STYLE[check.status]}]{check.status}[/]", text)
    console.print(table)
    problems = sum(check.status == PROBLEM for check in checks)
    console.print(f"[bold red]{problems} problem(s)[/]" if problems else "[bold green]no problems[/]")
    return 1 if problems else 0


# -- Redis ---------------------------------------------------------------------------------


def redis_checks(settings: EdgeSettings) -> list[Check]:
    """Reachability, version, persistence, eviction, scripting, KEYS and cluster mode."""
    client = _redis_client(settings)
    try:
        info = client.info("server")
    except redis.exceptions.NoPermissionError:
        info = None  # reachable (the ACL answered); the version check says it cannot tell
    except redis.RedisError as error:
        client.close()
        return [
            Check(
                "Redis reachable",
                PROBLEM,
                f"{_where(settings.redis_url)}: {error}",
                "start Redis or fix REDIS_URL (redis://, rediss:// for TLS, unix:// for a socket)",
            )
        ]
    try:
        checks = [Check("Redis reachable", OK, _where(settings.redis_url)), _redis_version(info)]
        for name, check in _REDIS_CHECKS:
            checks.append(_guarded(name, check, client, settings.redis_namespace))
        return checks
    finally:
        client.close()


def _redis_client(settings: EdgeSettings) -> redis.Redis:
    try:  # Sentinel deployments reach the primary the way the broker does
        from broker.setup import redis_client

        sentinel = redis_client(settings)
    except ImportError:
        sentinel = None
    return sentinel or redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)


def _where(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)  # never print a password


def _guarded(name: str, check: Callable[[str, redis.Redis, str], Check], client: redis.Redis, namespace: str) -> Check:
    try:
        return check(name, client, namespace)
    except redis.RedisError as error:  # e.g. the connection dropped halfway
        return Check(name, UNKNOWN, f"{type(error).__name__}: {error}")


def _config(client: redis.Redis, name: str) -> str | None:
    """CONFIG GET, or None where managed Redis renames, disables or forbids CONFIG."""
    try:
        return client.config_get(name).get(name)
    except redis.ResponseError:  # NoPermissionError is a ResponseError too
        return None


def _info(client: redis.Redis, section: str) -> dict[str, Any] | None:
    try:
        return client.info(section)
    except redis.ResponseError:
        return None


def _redis_version(info: dict[str, Any] | None) -> Check:
    if info is None:
        return Check("Redis version", UNKNOWN, "INFO is not allowed for this user", "make sure it is >= 6.2")
    version = str(info.get("redis_version", "0"))
    parts = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
    if parts >= MIN_REDIS:
        return Check("Redis version", OK, version)
    return Check(
        "Redis version",
        PROBLEM,
        f"{version}: Backroom needs >= 6.2 (the dead-letter tools use ZMSCORE)",
        "upgrade Redis to 6.2 or newer (7.x recommended)",
    )


def _persistence(name: str, client: redis.Redis, namespace: str) -> Check:
    appendonly, save = _config(client, "appendonly"), _config(client, "save")
    if appendonly is None and save is None:
        aof = (_info(client, "persistence") or {}).get("aof_enabled")
        if aof == 1:
            return Check(name, OK, "AOF on (seen in INFO; CONFIG is not available)")
        return Check(
            name,
            UNKNOWN,
            f"CONFIG is not available and INFO shows no AOF; {_DURABLE}",
            "confirm with your provider that persistence (AOF, or at least RDB snapshots) is on",
        )
    if appendonly == "yes":
        return Check(name, OK, f"AOF on (appendfsync {_config(client, 'appendfsync') or '?'})")
    if save:
        return Check(
            name,
            OK,
            f"RDB snapshots only (save {save}): a crash loses what changed since the last one",
            "prefer AOF: CONFIG SET appendonly yes, then CONFIG REWRITE",
        )
    return Check(
        name,
        PROBLEM,
        f"off (appendonly no, no save points): {_DURABLE}, so a restart loses them",
        "CONFIG SET appendonly yes, then CONFIG REWRITE (or `appendonly yes` in redis.conf)",
    )


def _eviction(name: str, client: redis.Redis, namespace: str) -> Check:
    policy = _config(client, "maxmemory-policy") or (_info(client, "memory") or {}).get("maxmemory_policy")
    if policy is None:
        return Check(name, UNKNOWN, "neither CONFIG nor INFO is available", "make sure the policy is noeviction")
    if policy == "noeviction":
        return Check(name, OK, "noeviction")
    return Check(
        name,
        PROBLEM,
        f"{policy}: under memory pressure Redis may evict a queue's .msgs hash "
        "or a job record, and the jobs in it are lost without a trace",
        "CONFIG SET maxmemory-policy noeviction, then CONFIG REWRITE (managed Redis: the "
        "provider's parameter group); a full Redis then refuses enqueues loudly instead",
    )


def _scripting(name: str, client: redis.Redis, namespace: str) -> Check:
    try:
        client.register_script("return 1")()  # EVALSHA, loading the script on NOSCRIPT
    except redis.ResponseError as error:
        return Check(
            name,
            PROBLEM,
            f"refused ({error}): every Dramatiq and Backroom operation is a Lua script",
            "allow EVAL, EVALSHA and SCRIPT for Backroom's user (ACL: +@scripting)",
        )
    return Check(name, OK, "Lua scripts run")


def _keys_command(name: str, client: redis.Redis, namespace: str) -> Check:
    probe = f"{namespace}:__doctor_probe__:*"  # matches nothing: a harmless call
    try:
        client.keys(probe)
        client.eval("return #redis.call('keys', KEYS[1])", 1, probe)
    except redis.ResponseError as error:
        # Backroom's brokers run with maintenance_chance=0 (broker.recovery reaps dead workers),
        # so Dramatiq's KEYS call never runs today: a refusal is a trap, not a breakage
        return Check(
            name,
            WARN,
            f"refused ({error}): Dramatiq's own queue maintenance calls KEYS inside its "
            "script; Backroom turns that maintenance off, so this matters only if it is turned back on",
            "allow KEYS for Backroom's user (ACL: +keys; some providers need a setting to re-enable it)",
        )
    return Check(name, OK, "allowed, also from Lua")


def _cluster(name: str, client: redis.Redis, namespace: str) -> Check:
    info = _info(client, "cluster")
    if info is None:
        return Check(name, UNKNOWN, "INFO is not allowed for this user")
    if info.get("cluster_enabled"):
        return Check(
            name,
            PROBLEM,
            "Redis Cluster: Dramatiq's scripts build key names inside Lua, which Cluster does not allow",
            "use a single primary (with replicas or Sentinel)",
        )
    return Check(name, OK, "standalone")


_REDIS_CHECKS: tuple[tuple[str, Callable[[str, redis.Redis, str], Check]], ...] = (
    ("Redis persistence", _persistence),
    ("Redis maxmemory-policy", _eviction),
    ("Redis EVALSHA", _scripting),
    ("Redis KEYS", _keys_command),
    ("Redis not in cluster mode", _cluster),
)


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres_checks(dsn: str) -> list[Check]:
    """Reachability and version, the pgvector extension, and pending migrations."""
    return asyncio.run(_postgres_checks(dsn))


async def _postgres_checks(dsn: str) -> list[Check]:
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        return [
            Check(
                "PostgreSQL reachable",
                PROBLEM,
                f"{_where(dsn)}: {type(error).__name__}: {error}",
                "start PostgreSQL or fix DATABASE_URL (and its user, password and database)",
            )
        ]
    try:
        version = conn.get_server_version()
        if version.major >= MIN_POSTGRES:
            checks = [Check("PostgreSQL reachable", OK, f"{_where(dsn)} (PostgreSQL {version.major}.{version.minor})")]
        else:
            checks = [
                Check(
                    "PostgreSQL reachable",
                    PROBLEM,
                    f"PostgreSQL {version.major}: Backroom needs 15+",
                    "upgrade PostgreSQL",
                )
            ]
        return [*checks, await _pgvector(conn), await _migrations(conn)]
    finally:
        await conn.close()


async def _pgvector(conn: Any) -> Check:
    name = "pgvector extension"
    installed = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    if installed is None:
        available = await conn.fetchval("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        if available is None:
            return Check(
                name,
                PROBLEM,
                "pgvector is not installed on the server",
                "install pgvector >= 0.5 (e.g. apt install postgresql-16-pgvector, or a provider that "
                "offers it), then run `backroom db migrate`",
            )
        return Check(
            name,
            PROBLEM,
            f"available ({available}) but not created in this database",
            "run `backroom db migrate` (its first migration creates it)",
        )
    if tuple(int(p) for p in re.findall(r"\d+", installed)[:2]) < MIN_PGVECTOR:
        return Check(
            name,
            PROBLEM,
            f"{installed}: Backroom needs >= 0.5 (HNSW indexes)",
            "upgrade the pgvector package, then ALTER EXTENSION vector UPDATE",
        )
    return Check(name, OK, installed)


async def _migrations(conn: Any) -> Check:
    try:
        from db.migrate import migration_status
    except ImportError as error:
        return Check("migrations", UNKNOWN, f"the migration runner is not importable: {error}")
    report = await migration_status(conn)
    pending = [m.name for m in report if m.state == "pending"]
    broken = [f"{m.name} ({m.state})" for m in report if m.state in ("changed", "missing")]
    if broken:
        return Check(
            "migrations",
            PROBLEM,
            f"applied migrations no longer match the files: {', '.join(broken)}",
            "restore the files as applied; migrations are forward-only (add a new file instead)",
        )
    if pending:
        return Check(
            "migrations", PROBLEM, f"{len(pending)} pending: {', '.join(pending)}", "run `backroom db migrate`"
        )
    return Check("migrations", OK, f"all {len(report)} applied")


# -- the host ------------------------------------------------------------------------------


def host_checks(settings: EdgeSettings) -> list[Check]:
    """The model directory (when configured) and Chromium for edge scraping (a warning only)."""
    checks = []
    if "model_dir" in getattr(type(settings), "model_fields", {}):
        checks.append(_model_dir(getattr(settings, "model_dir", None)))
    configured = getattr(settings, "edge_chromium_path", None)  # what an edge worker here would launch
    chromium = (
        (configured if configured and os.access(configured, os.X_OK) else None)
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )
    if configured and chromium != configured:
        checks.append(
            Check(
                "Chromium (edge scraping)",
                WARN,
                f"EDGE_CHROMIUM_PATH {configured} is not an "
                f"executable here" + (f" (found {chromium})" if chromium else ""),
                "point EDGE_CHROMIUM_PATH at the installed Chromium",
            )
        )
    elif chromium:
        checks.append(Check("Chromium (edge scraping)", OK, str(chromium)))
    else:
        checks.append(
            Check(
                "Chromium (edge scraping)",
                WARN,
                "not found on this host: only edge nodes that scrape need it",
                "on an edge node: apt install chromium",
            )
        )
    return checks


def _model_dir(value: Any) -> Check:
    if not value:
        return Check("MODEL_DIR", WARN, "not set: jobs that need the model will fail", "set MODEL_DIR")
    path = Path(value)
    if not path.is_dir():
        return Check("MODEL_DIR", PROBLEM, f"{path} is not a directory", "create it and export the model into it")
    if not any(path.iterdir()):
        return Check("MODEL_DIR", WARN, f"{path} is empty", "export the model into it")
    return Check("MODEL_DIR", OK, str(path))
