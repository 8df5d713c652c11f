"""The admin's schedule settings (cadence, on/off) and the lists the fan-outs read."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from domain.schedules import CONFIG_KEYS, ConfigKey, ScheduleConfig, ScheduleSetting, config_from

_SETTING_COLUMNS = "actor, cron, enabled, updated_at, updated_by"


async def select_schedule_settings(conn: asyncpg.Connection) -> dict[str, ScheduleSetting]:
    """Every stored schedule setting, by actor name."""
    rows = await conn.fetch(f"SELECT {_SETTING_COLUMNS} FROM schedule_settings ORDER BY actor")
    return {r["actor"]: ScheduleSetting(**dict(r)) for r in rows}


async def select_schedule_setting(
    conn: asyncpg.Connection, actor: str, *, lock: bool = False
) -> ScheduleSetting | None:
    """One actor's stored setting (None: it runs as declared); `lock` holds the row until commit."""
    row = await conn.fetchrow(
        f"SELECT {_SETTING_COLUMNS} FROM schedule_settings WHERE actor = $1" + (" FOR UPDATE" if lock else ""), actor
    )
    return ScheduleSetting(**dict(row)) if row is not None else None


async def upsert_schedule_setting(conn: asyncpg.Connection, setting: ScheduleSetting, *, by: str) -> ScheduleSetting:
    """Store one actor's cadence override and on/off state (the row is replaced)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO schedule_settings (actor, cron, enabled, updated_by) VALUES ($1, $2, $3, $4)
        ON CONFLICT (actor) DO UPDATE
            SET cron = EXCLUDED.cron, enabled = EXCLUDED.enabled, updated_at = now(), updated_by = EXCLUDED.updated_by
        RETURNING {_SETTING_COLUMNS}
        """,
        setting.actor,
        setting.cron,
        setting.enabled,
        by,
    )
    return ScheduleSetting(**dict(row))


async def select_stored_config(conn: asyncpg.Connection, *, lock: bool = False) -> dict[str, list[Any]]:
    """The lists an admin stored, by key (absent keys use their defaults)."""
    rows = await conn.fetch("SELECT key, value FROM schedule_config" + (" FOR UPDATE" if lock else ""))
    return {r["key"]: json.loads(r["value"]) for r in rows}


async def select_schedule_config(conn: asyncpg.Connection) -> ScheduleConfig:
    """The effective sources, brands and surfaces (stored, else default)."""
    return config_from(await select_stored_config(conn))


async def upsert_schedule_config(conn: asyncpg.Connection, key: ConfigKey, value: list[Any], *, by: str) -> None:
    """Store one list (replacing it)."""
    if key not in CONFIG_KEYS:
        raise ValueError(f"unknown schedule config key {key!r}")
    await conn.execute(
        """
        INSERT INTO schedule_config (key, value, updated_by) VALUES ($1, $2::jsonb, $3)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by
        """,
        key,
        json.dumps(value),
        by,
    )


async def delete_schedule_config(conn: asyncpg.Connection, key: ConfigKey) -> bool:
    """Forget a stored list, so its default applies again; True when one was stored."""
    return await conn.execute("DELETE FROM schedule_config WHERE key = $1", key) == "DELETE 1"
