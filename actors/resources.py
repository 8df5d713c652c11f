"""Per-process resources for workers, opened once in a startup hook, never per message."""

from __future__ import annotations

from typing import Any

from dramatiq import Middleware
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.broker import Broker

from db.pool import close_process_pool, create_pool, set_process_pool


class DatabasePool(Middleware):
    """Opens the asyncpg pool on the worker's event loop at boot and closes it at shutdown."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def before_worker_boot(self, broker: Broker, worker: Any) -> None:
        # before: Dramatiq starts consuming before `after_worker_boot`, and a message fetched
        # at once (a dead worker's, re-queued) must not run before the pool is open
        loop_thread = get_event_loop_thread()
        if loop_thread is None:
            raise RuntimeError("the AsyncIO middleware must come before DatabasePool")
        set_process_pool(loop_thread.run_coroutine(create_pool(self.dsn)))

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.run_coroutine(close_process_pool())
