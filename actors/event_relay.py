"""Per worker process: the storefront delivery session, and the listener that kicks the relay after commits.

The outbox triggers NOTIFY `storefront_events`; Postgres delivers a NOTIFY only when its
transaction commits, so the listener hears of an event exactly after its commit and sends
`relay_events`. A lost kick (a dead listener, a Redis blip, events committed while no worker
listened) delays an event until the periodic sweep; it never loses one: the event row is
already committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import redis
from dramatiq import Middleware
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import Broker

from config.settings import get_settings
from providers.storefront import new_session

CHANNEL = "storefront_events"
RELAY_ACTOR = "relay_events"
IDLE_CHECK_S = 5.0  # how often an idle listener checks its connection is still alive
GATHER_S = 0.05  # one relay message per burst of commits, not one per commit
logger = logging.getLogger("backroom.events")
_session: aiohttp.ClientSession | None = None


def delivery_session() -> aiohttp.ClientSession:
    """This process's delivery session, or raise if the worker never opened it."""
    if _session is None:
        raise RuntimeError("the delivery session is not open in this process (EventRelay middleware missing?)")
    return _session


async def listen(dsn: str, kick: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> None:
    """Kick the relay after every burst of committed events, reconnecting through outages until `stop`."""
    delay = 0.5
    while not stop.is_set():
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            wake = asyncio.Event()
            await conn.add_listener(CHANNEL, lambda *_: wake.set())
            conn.add_termination_listener(lambda *_: wake.set())
            delay = 0.5
            while not stop.is_set() and not conn.is_closed():
                try:
                    await asyncio.wait_for(wake.wait(), IDLE_CHECK_S)
                except TimeoutError:
                    await conn.execute("SELECT 1")  # a dead connection raises here and we reconnect
                    continue
                await asyncio.sleep(GATHER_S)
                wake.clear()
                await kick()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, redis.RedisError) as error:
            logger.warning("event relay listener: %s; reconnecting in %.1f s", type(error).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        except Exception:  # anything else: logged, and the listener starts over (the sweep covers the gap)
            logger.exception("event relay listener failed; restarting in %.1f s", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        finally:
            if conn is not None and not conn.is_closed():
                await conn.close()


class EventRelay(Middleware):
    """Opens the delivery session and starts the relay listener on the worker's event loop."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.stop: asyncio.Event | None = None
        self.task: Any = None

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        global _session
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("the AsyncIO middleware must come before EventRelay")
        settings = get_settings()

        async def start() -> None:
            global _session
            _session = new_session(
                allow=lambda: get_settings().events_allow_addresses, timeout_s=settings.events_timeout_s
            )
            self.stop = asyncio.Event()
            relay = broker.get_actor(RELAY_ACTOR)  # by name: actors/events.py is declared after the broker
            self.task = asyncio.get_running_loop().create_task(
                listen(self.dsn, lambda: asyncio.to_thread(relay.send), self.stop)
            )

        loop_thread.run_coroutine(start())

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        global _session
        loop_thread, session, _session = get_event_loop_thread(), _session, None
        if loop_thread is None:
            return

        async def close() -> None:
            if self.stop is not None:
                self.stop.set()
            if self.task is not None:
                self.task.cancel()
                await asyncio.gather(self.task, return_exceptions=True)
            if session is not None:
                await session.close()

        loop_thread.run_coroutine(close())
