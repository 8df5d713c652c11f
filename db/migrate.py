"""Forward-only SQL migrations: numbered files applied once each, in order, under a lock."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, TypeAlias

import asyncpg

import migrations as _migrations_package

MIGRATIONS_DIR = Path(_migrations_package.__file__).resolve().parent

# pg_advisory_lock key: the bytes of "backroom" read as a bigint; fixed so every migrator
# in every process contends for the same lock.
LOCK_KEY = 0x6261636B726F6F6D

_NAME_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

_CREATE_TABLE_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

MigrationState = Literal["applied", "pending", "changed", "missing"]
Target: TypeAlias = str | asyncpg.Connection | asyncpg.Pool


class MigrationError(Exception):
    """The migrations directory or the recorded history is not safe to migrate from."""


@dataclass(frozen=True)
class Migration:
    """One migration file on disk."""

    version: int
    name: str
    path: Path
    checksum: str

    def read_sql(self) -> str:
        """Return the file's SQL text."""
        return self.path.read_text(encoding="utf-8")


@dataclass(frozen=True)
class AppliedMigration:
    """One row of `schema_migrations`."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


@dataclass(frozen=True)
class MigrationStatus:
    """Where one migration stands: applied, pending, changed on disk, or missing from disk."""

    version: int
    name: str
    state: MigrationState
    applied_at: datetime | None


def _looks_like_migration(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() == ".sql" or path.name[:1].isdigit())


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """List the migration files in `directory` in order, refusing bad names and duplicates."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory not found: {directory}")
    by_version: dict[int, Migration] = {}
    for path in sorted(p for p in directory.iterdir() if _looks_like_migration(p)):
        match = _NAME_RE.match(path.name)
        if match is None:
            raise MigrationError(f"bad migration file name {path.name!r}: must match {_NAME_RE.pattern}")
        version = int(match.group(1))
        if version in by_version:
            raise MigrationError(
                f"two migrations share number {version:04d}: {by_version[version].name} and {path.name}"
            )
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        by_version[version] = Migration(version, path.name, path, checksum)
    return [by_version[v] for v in sorted(by_version)]


def check_history(migrations: Iterable[Migration], applied: Mapping[int, AppliedMigration]) -> None:
    """Raise MigrationError when an applied migration was edited, renamed or removed."""
    on_disk = {m.version: m for m in migrations}
    for version, row in sorted(applied.items()):
        found = on_disk.get(version)
        if found is None:
            raise MigrationError(f"applied migration {row.name} is missing from disk")
        if found.name != row.name:
            raise MigrationError(
                f"applied migration {row.name} was renamed to {found.name}; "
                "migrations are forward-only, add a new file instead"
            )
        if found.checksum != row.checksum:
            raise MigrationError(
                f"applied migration {found.name} was edited after it was applied "
                "(checksum changed); migrations are forward-only, add a new file instead"
            )


async def select_applied_migrations(conn: asyncpg.Connection) -> dict[int, AppliedMigration]:
    """Return the recorded migrations by version, or {} before the first migration."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return {r["version"]: AppliedMigration(**dict(r)) for r in rows}


@asynccontextmanager
async def _connection(target: Target) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(target, asyncpg.Pool):
        async with target.acquire() as conn:
            yield conn
    elif isinstance(target, str):
        conn = await asyncpg.connect(target)
        try:
            yield conn
        finally:
            await conn.close()
    else:
        yield target


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    try:
        async with conn.transaction():
            await conn.execute(migration.read_sql())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"migration {migration.name} failed and was rolled back: {exc}") from exc


async def _apply_pending(
    conn: asyncpg.Connection,
    migrations: list[Migration],
    progress: Callable[[str], None] | None,
) -> list[str]:
    await conn.execute(_CREATE_TABLE_SQL)
    applied = await select_applied_migrations(conn)
    check_history(migrations, applied)
    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        await _apply(conn, migration)
        done.append(migration.name)
        if progress is not None:
            progress(migration.name)
    return done


async def migrate(
    conn_or_dsn: Target,
    directory: Path = MIGRATIONS_DIR,
    *,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Apply pending migrations in order, one transaction each; return the names applied."""
    migrations = discover_migrations(directory)
    async with _connection(conn_or_dsn) as conn:
        if conn.is_in_transaction():
            raise MigrationError("migrate() needs a connection outside a transaction")
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            done = await _apply_pending(conn, migrations, progress)
        finally:
            if not conn.is_closed():
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    if done and isinstance(conn_or_dsn, asyncpg.Pool):
        # Connections opened before the vector extension existed lack its codec.
        await conn_or_dsn.expire_connections()
    return done


async def migration_status(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[MigrationStatus]:
    """Report each migration on disk or on record as applied, pending, changed or missing."""
    migrations = {m.version: m for m in discover_migrations(directory)}
    applied = await select_applied_migrations(conn)
    report: list[MigrationStatus] = []
    for version in sorted(migrations.keys() | applied.keys()):
        on_disk, row = migrations.get(version), applied.get(version)
        if row is None:
            assert on_disk is not None
            report.append(MigrationStatus(version, on_disk.name, "pending", None))
        elif on_disk is None:
            report.append(MigrationStatus(version, row.name, "missing", row.applied_at))
        else:
            same = on_disk.name == row.name and on_disk.checksum == row.checksum
            state: MigrationState = "applied" if same else "changed"
            report.append(MigrationStatus(version, on_disk.name, state, row.applied_at))
    return report
