"""The scheduler's view of the admin's schedule settings: read from Postgres, cached briefly.

The scheduler process has no event loop and no pool (it is a Redis loop in a thread), so
the reader keeps one loop and one connection of its own. When Postgres cannot be read the
last settings read stay in force (the defaults until one read succeeded): the scheduler
keeps firing rather than stopping with the database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import asyncpg

from db.schedules import select_schedule_settings
from domain.schedules import ScheduleSetting

log = logging.getLogger("backroom.scheduler")

Loader = Callable[[], Mapping[str, ScheduleSetting]]
_UNREADABLE = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class CachedSettings:
    """Calls `load` at most once per `ttl_s`; keeps the last good answer when it fails."""

    def __init__(self, load: Loader, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.load = load
        self.ttl_s = ttl_s
        self.clock = clock
        self._value: Mapping[str, ScheduleSetting] = {}
        self._read_at: float | None = None

    def __call__(self) -> Mapping[str, ScheduleSetting]:
        """The settings, read again when the cached ones are older than `ttl_s`."""
        now = self.clock()
        if self._read_at is not None and now - self._read_at < self.ttl_s:
            return self._value
        self._read_at = now  # a failing database is asked again after ttl_s, not on every pass
        try:
            self._value = dict(self.load())
        except (*_UNREADABLE, ValueError) as error:  # ValueError: a row pydantic refuses
            log.warning(
                "cannot read the schedule settings (%s); keeping the %s ones",
                error,
                "last read" if self._value else "declared",
            )
        return self._value


class PostgresSettings:
    """Loads every schedule setting on a connection of its own, reconnecting after a failure."""

    def __init__(self, dsn: str, *, timeout_s: float = 5.0) -> None:
        self.dsn = dsn
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._conn: asyncpg.Connection | None = None

    def __call__(self) -> Mapping[str, ScheduleSetting]:
        """Every stored schedule setting, by actor."""
        return self._loop.run_until_complete(self._load())

    async def _load(self) -> Mapping[str, ScheduleSetting]:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn, timeout=self.timeout_s)
        try:
            return await asyncio.wait_for(select_schedule_settings(self._conn), self.timeout_s)
        except _UNREADABLE:
            self._conn.terminate()
            self._conn = None
            raise

    def close(self) -> None:
        """Close the connection and the loop."""
        if self._conn is not None and not self._conn.is_closed():
            self._loop.run_until_complete(self._conn.close())
        self._loop.close()


def scheduler_settings(dsn: str, ttl_s: float) -> tuple[CachedSettings, PostgresSettings]:
    """The cached reader the runner calls every pass, and the loader to close on exit."""
    loader = PostgresSettings(dsn)
    return CachedSettings(loader, ttl_s), loader
