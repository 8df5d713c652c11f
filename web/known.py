"""Refused at the door: a scrape source or collection surface nobody configured answers 404, nothing enqueued.

The configured ones live in Postgres (the schedule config an admin edits with
`backroom schedules sources|surfaces` or on /admin/schedules); one read per request that
names one. Without this, such a job was accepted, retried and dead-lettered.
"""

from __future__ import annotations

from typing import Any

from quart import current_app

from db.schedules import select_schedule_config
from domain.schedules import ScheduleConfig
from web.errors import problem


async def _config() -> ScheduleConfig:
    async with current_app.config["DB_POOL"].acquire() as conn:
        return await select_schedule_config(conn)


async def unknown_source(source: str | None) -> Any | None:
    """A 404 naming the configured sources when `source` is not one of them (None: it is, or none was named)."""
    if source is None:
        return None
    known = [s.source for s in (await _config()).sources]
    if source in known:
        return None
    return problem(404, f"no scrape source {source!r} is configured; configured: {', '.join(known) or 'none'}")


async def unknown_surface(surface: str) -> Any | None:
    """A 404 naming the configured surfaces when `surface` is not one of them (None: it is)."""
    known = (await _config()).surfaces
    if surface in known:
        return None
    return problem(404, f"no collection surface {surface!r} is configured; configured: {', '.join(known) or 'none'}")
