"""Schedule settings an admin changes without a deploy: cadence, on/off, sources, brands, surfaces.

Shared by the CLI (`backroom schedules ...`) and the admin API/page. Each change is written
together with its audit row in one transaction; the scheduler reads the settings again
within SCHEDULER_SETTINGS_TTL_S, the fan-outs read the lists at each run.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from dramatiq import Broker

from db.audit import insert_audit
from db.schedules import (
    delete_schedule_config,
    select_schedule_config,
    select_schedule_setting,
    select_schedule_settings,
    select_stored_config,
    upsert_schedule_config,
    upsert_schedule_setting,
)
from domain.admin import AuditEntry
from domain.schedules import (
    ScheduleConfig,
    ScheduleSetting,
    ScrapeSource,
    check_name,
    clean_list,
    config_from,
    upsert_source,
)
from schedules.cron import parse

UNSET: Any = object()


class UnknownSchedule(ValueError):
    """The name is not a periodic actor of this broker."""


def periodic_actors(broker: Broker) -> dict[str, str]:
    """Every periodic actor of `broker` and its declared cron."""
    import schedules  # noqa: F401  (declares the periodic actors on this process's broker)
    from schedules.runner import discover_schedules

    return {s.name: s.cron.spec for s in discover_schedules(broker)}


async def change_schedule(
    conn: asyncpg.Connection, broker: Broker, actor: str, *, by: str, cron: Any = UNSET, enabled: bool | None = None
) -> ScheduleSetting:
    """Set `actor`'s cadence (None = back to its declaration) and/or on/off, audited; returns the setting."""
    declared = periodic_actors(broker)
    if actor not in declared:
        raise UnknownSchedule(f"unknown schedule {actor!r}; known: {', '.join(declared)}")
    if cron is not UNSET and cron is not None:
        cron = parse(cron).spec  # ValueError says what is wrong with it
        cron = None if cron == declared[actor] else cron
    async with conn.transaction():
        before = await select_schedule_setting(conn, actor, lock=True) or ScheduleSetting(actor=actor)
        after = ScheduleSetting(
            actor=actor,
            cron=before.cron if cron is UNSET else cron,
            enabled=before.enabled if enabled is None else enabled,
        )
        stored = await upsert_schedule_setting(conn, after, by=by)
        await insert_audit(
            conn,
            actor=by,
            entry=AuditEntry(
                action="schedule.set",
                target=f"schedule:{actor}",
                before=_setting(before, declared[actor]),
                after=_setting(stored, declared[actor]),
            ),
        )
    return stored


async def change_source(
    conn: asyncpg.Connection, source: str, *, by: str, remove: bool = False, **fields: Any
) -> list[ScrapeSource]:
    """Add or change one scrape source (queries, limit, brands, enabled), or remove it; audited."""
    check_name(source, "source")
    async with conn.transaction():
        current = config_from(await select_stored_config(conn, lock=True)).sources
        existing = next((s for s in current if s.source == source), None)
        if remove:
            if existing is None:
                raise ValueError(f"no scrape source {source!r}")
            changed = [s for s in current if s.source != source]
        else:
            base = existing.model_dump() if existing else {"source": source}
            updated = ScrapeSource.model_validate({**base, **{k: v for k, v in fields.items() if v is not None}})
            changed = upsert_source(current, updated)
        await _store(conn, "sources", [s.model_dump() for s in current], [s.model_dump() for s in changed], by)
    return changed


async def change_list(
    conn: asyncpg.Connection,
    key: str,
    *,
    by: str,
    set_to: list[str] | None = None,
    add: list[str] | None = None,
    remove: list[str] | None = None,
    reset: bool = False,
) -> list[str]:
    """Replace, extend, shrink or reset (to the default) the brands or surfaces list; audited."""
    if key not in ("brands", "surfaces"):
        raise ValueError(f"unknown list {key!r}: brands or surfaces")
    async with conn.transaction():
        current: list[str] = getattr(config_from(await select_stored_config(conn, lock=True)), key)
        if reset:
            await delete_schedule_config(conn, key)  # type: ignore[arg-type]  # one of the two names checked above
            changed: list[str] = getattr(config_from({}), key)
            await _audit(conn, key, current, changed, by)
            return changed
        dropped = {r.lower() for r in remove or []}
        changed = clean_list(
            [v for v in (set_to if set_to is not None else current) if v.lower() not in dropped] + list(add or [])
        )
        if key == "surfaces":
            changed = [check_name(s, "surface") for s in changed]
        await _store(conn, key, current, changed, by)
    return changed


async def schedule_settings(conn: asyncpg.Connection) -> tuple[dict[str, ScheduleSetting], ScheduleConfig]:
    """The stored cadence/on-off settings by actor, and the effective sources, brands and surfaces."""
    return await select_schedule_settings(conn), await select_schedule_config(conn)


async def _store(conn: asyncpg.Connection, key: str, before: list[Any], after: list[Any], by: str) -> None:
    await upsert_schedule_config(conn, key, after, by=by)  # type: ignore[arg-type]  # brands or surfaces (checked)
    await _audit(conn, key, before, after, by)


async def _audit(conn: asyncpg.Connection, key: str, before: list[Any], after: list[Any], by: str) -> None:
    await insert_audit(
        conn,
        actor=by,
        entry=AuditEntry(
            action=f"schedules.{key}", target=f"schedules:{key}", before={key: before}, after={key: after}
        ),
    )


def _setting(setting: ScheduleSetting, declared: str) -> dict[str, Any]:
    return {"cron": setting.cron or declared, "overridden": setting.cron is not None, "enabled": setting.enabled}
