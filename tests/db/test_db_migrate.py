"""The migration runner against real PostgreSQL + pgvector."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import asyncpg
import pytest

from db.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    discover_migrations,
    migrate,
    migration_status,
)

CORE_TABLES = {
    "api_tokens",
    "items",
    "style_seeds",
    "collections",
    "collection_items",
    "orders",
    "order_lines",
    "notifications",
    "webhook_events",
    "edge_nodes",
    "audit_log",
}


def repo_migrations() -> list[str]:
    """The file names of the repository's migrations, in order."""
    return sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))


@pytest.fixture
def mig_dir(tmp_path: Path) -> Path:
    """A scratch copy of the repository's migrations directory."""
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def recorded(dsn: str) -> list[tuple[int, str]]:
    """The (version, name) rows of schema_migrations."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(r["version"], r["name"]) for r in rows]
    finally:
        await conn.close()


async def table_exists(dsn: str, table: str) -> bool:
    """True when `table` exists in the database."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
    finally:
        await conn.close()


async def test_repo_has_the_expected_migrations() -> None:
    names = [m.name for m in discover_migrations()]
    assert names[:2] == ["0001_extensions.sql", "0002_core.sql"]
    assert names == repo_migrations()


async def test_every_migration_applies_to_an_empty_database(empty_db_dsn: str) -> None:
    seen: list[str] = []
    applied = await migrate(empty_db_dsn, progress=seen.append)
    assert applied == repo_migrations()
    assert seen == applied
    conn = await asyncpg.connect(empty_db_dsn)
    try:
        tables = {
            r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        assert CORE_TABLES | {"schema_migrations"} <= tables
        assert await conn.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
        hnsw = {
            r["indexname"]
            for r in await conn.fetch("SELECT indexname, indexdef FROM pg_indexes")
            if "USING hnsw" in r["indexdef"] and "vector_cosine_ops" in r["indexdef"]
        }
        assert {"items_embedding_hnsw", "style_seeds_embedding_hnsw"} <= hnsw
        checksums = await conn.fetch("SELECT checksum FROM schema_migrations")
        assert all(len(r["checksum"]) == 64 for r in checksums)
    finally:
        await conn.close()


async def test_rerunning_applies_nothing(migrated_db_dsn: str) -> None:
    before = await recorded(migrated_db_dsn)
    assert await migrate(migrated_db_dsn) == []
    assert await recorded(migrated_db_dsn) == before


async def test_edited_applied_file_is_refused_before_anything_runs(empty_db_dsn: str, mig_dir: Path) -> None:
    await migrate(empty_db_dsn, mig_dir)
    with (mig_dir / "0002_core.sql").open("a") as f:
        f.write("\n-- edited after the fact\n")
    (mig_dir / "9999_later.sql").write_text("CREATE TABLE later (id int);")
    with pytest.raises(MigrationError, match="0002_core.sql"):
        await migrate(empty_db_dsn, mig_dir)
    assert not await table_exists(empty_db_dsn, "later")


async def test_missing_applied_file_is_refused(empty_db_dsn: str, mig_dir: Path) -> None:
    await migrate(empty_db_dsn, mig_dir)
    (mig_dir / "0002_core.sql").unlink()
    with pytest.raises(MigrationError, match="0002_core.sql.*missing"):
        await migrate(empty_db_dsn, mig_dir)


@pytest.mark.parametrize("bad_name", ["3_short.sql", "0003-dash.sql", "0003_Upper.sql", "0003_x.SQL", "00003_x.sql"])
async def test_bad_file_name_is_refused(empty_db_dsn: str, mig_dir: Path, bad_name: str) -> None:
    (mig_dir / bad_name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=bad_name.replace(".", r"\.")):
        await migrate(empty_db_dsn, mig_dir)
    assert not await table_exists(empty_db_dsn, "schema_migrations")


async def test_duplicate_number_is_refused(empty_db_dsn: str, mig_dir: Path) -> None:
    (mig_dir / "0002_another.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="0002_another.sql") as info:
        await migrate(empty_db_dsn, mig_dir)
    assert "0002_core.sql" in str(info.value)


async def test_other_files_are_ignored(empty_db_dsn: str, mig_dir: Path) -> None:
    (mig_dir / "README.md").write_text("notes")
    assert await migrate(empty_db_dsn, mig_dir) == repo_migrations()


async def test_concurrent_migrators_apply_each_file_once(empty_db_dsn: str, tmp_path: Path) -> None:
    # A slow first file guarantees the two runs overlap; the counter proves single application.
    (tmp_path / "0001_slow.sql").write_text(
        "SELECT pg_sleep(0.3); CREATE TABLE runs (n int); INSERT INTO runs VALUES (1);"
    )
    (tmp_path / "0002_again.sql").write_text("INSERT INTO runs VALUES (2);")
    first, second = await asyncio.gather(migrate(empty_db_dsn, tmp_path), migrate(empty_db_dsn, tmp_path))
    assert sorted([first, second], key=len) == [[], ["0001_slow.sql", "0002_again.sql"]]
    assert await recorded(empty_db_dsn) == [(1, "0001_slow.sql"), (2, "0002_again.sql")]
    conn = await asyncpg.connect(empty_db_dsn)
    try:
        assert await conn.fetchval("SELECT array_agg(n ORDER BY n) FROM runs") == [1, 2]
    finally:
        await conn.close()


async def test_concurrent_migrators_on_the_real_migrations(empty_db_dsn: str) -> None:
    results = await asyncio.gather(*(migrate(empty_db_dsn) for _ in range(3)))
    assert sorted(name for names in results for name in names) == repo_migrations()
    assert [name for _, name in await recorded(empty_db_dsn)] == repo_migrations()


async def test_failing_migration_rolls_back_only_itself(empty_db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE first_table (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE second_table (id int); SELECT 1/0;")
    (tmp_path / "0003_after.sql").write_text("CREATE TABLE third_table (id int);")
    with pytest.raises(MigrationError, match="0002_bad.sql"):
        await migrate(empty_db_dsn, tmp_path)
    assert await table_exists(empty_db_dsn, "first_table")
    assert not await table_exists(empty_db_dsn, "second_table")
    assert not await table_exists(empty_db_dsn, "third_table")
    assert await recorded(empty_db_dsn) == [(1, "0001_ok.sql")]

    # Once fixed (it never applied, so editing it is allowed) the run picks up where it stopped.
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE second_table (id int);")
    assert await migrate(empty_db_dsn, tmp_path) == ["0002_bad.sql", "0003_after.sql"]


async def test_a_file_and_its_record_commit_together(empty_db_dsn: str, tmp_path: Path) -> None:
    # The file itself succeeds; recording it then fails (its version is taken). The file's
    # table must vanish with the failed record, or a rerun would apply it twice.
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE first_table (id int);")
    (tmp_path / "0002_sneaky.sql").write_text(
        "CREATE TABLE second_table (id int);"
        " INSERT INTO schema_migrations (version, name, checksum) VALUES (2, 'x', 'y');"
    )
    with pytest.raises(MigrationError, match="0002_sneaky.sql"):
        await migrate(empty_db_dsn, tmp_path)
    assert not await table_exists(empty_db_dsn, "second_table")
    assert await recorded(empty_db_dsn) == [(1, "0001_ok.sql")]


async def test_lock_is_released_after_a_failure(empty_db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "0001_bad.sql").write_text("SELECT 1/0;")
    conn = await asyncpg.connect(empty_db_dsn)
    try:
        with pytest.raises(MigrationError):
            await migrate(conn, tmp_path)
        held = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert held == 0
    finally:
        await conn.close()


async def test_refuses_a_connection_inside_a_transaction(empty_db_dsn: str) -> None:
    conn = await asyncpg.connect(empty_db_dsn)
    try:
        async with conn.transaction():
            with pytest.raises(MigrationError, match="outside a transaction"):
                await migrate(conn)
    finally:
        await conn.close()


async def test_migration_status(empty_db_dsn: str, mig_dir: Path) -> None:
    conn = await asyncpg.connect(empty_db_dsn)
    try:
        before = await migration_status(conn, mig_dir)
        assert [(s.name, s.state) for s in before] == [(n, "pending") for n in repo_migrations()]
        await migrate(conn, mig_dir)
        (mig_dir / "9999_next.sql").write_text("SELECT 1;")
        (mig_dir / "0001_extensions.sql").write_text("-- changed\n")
        after = {s.name: s for s in await migration_status(conn, mig_dir)}
        assert after["0001_extensions.sql"].state == "changed"
        assert after["0002_core.sql"].state == "applied"
        assert after["0002_core.sql"].applied_at is not None
        assert after["9999_next.sql"].state == "pending"
        (mig_dir / "0002_core.sql").unlink()
        gone = {s.name: s.state for s in await migration_status(conn, mig_dir)}
        assert gone["0002_core.sql"] == "missing"
    finally:
        await conn.close()
