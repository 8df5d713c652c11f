"""When a fetched message may start: never while this worker is fenced, and a suspect alone.

Isolation (the poison guard, see lua/reap.lua): a message charged a crash of its worker
(`backroom_isolate`) runs with its worker process to itself, so a crash during that run is
evidence against it and not against neighbours. A waiting suspect holds back new starts
until what runs has finished.

Fencing (a host cut off from Redis, see broker.recovery): once this process's last
successful heartbeat is older than `FENCE_FRACTION` of the heartbeat timeout, the reaper may
soon hand what it holds to other workers, so nothing more starts here, prefetched messages
included, and running async jobs are asked to stop (`Fenced`, an interrupt like Dramatiq's
time limit: their coroutine is cancelled). A message waits at the gate until a heartbeat
lands again; if this worker was reaped meanwhile (or it is stopping), the message is handed
back instead, like a stopped async job: re-queued when it is still ours (Dramatiq's requeue
is a no-op for what the reaper took; retried when Redis answers again), else left to the
reaper, and never acked, retried or recorded here.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from dramatiq import Middleware
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import Interrupt, SkipMessage
from dramatiq.middleware.threading import raise_thread_exception

log = logging.getLogger(__name__)
FENCE_FRACTION = 0.5  # of the heartbeat timeout: the reaper needs the whole timeout, plus a reap interval


class Fenced(Interrupt):
    """Raised in a thread running an async job when its worker fences itself off."""


class Fence:
    """This process's standing with Redis, as its heartbeats tell it."""

    def __init__(self, timeout_ms: int) -> None:
        self.after_s = timeout_ms * FENCE_FRACTION / 1000
        self.last_ok = time.monotonic()
        self.reaped = threading.Event()  # the reaper re-queued what this process held: it must restart
        self.stopping = threading.Event()
        self.changed = threading.Event()
        self.listeners: list[Callable[[bool], None]] = []  # told of each fence and lift (heartbeat thread)
        self.unreturned: list[tuple[str, str]] = []  # (queue, redis id) handed back but not yet re-queued

    def notify(self, fenced: bool) -> None:
        """The heartbeat thread saw the fence go up (True) or lift (False)."""
        self.changed.set()
        for listener in self.listeners:
            listener(fenced)

    def beat_ok(self) -> None:
        """A heartbeat landed: the fence lifts (unless this worker was reaped)."""
        self.last_ok = time.monotonic()
        self.changed.set()

    def fenced(self) -> bool:
        """True when nothing may start here: heartbeats stale, or reaped."""
        return self.reaped.is_set() or time.monotonic() - self.last_ok > self.after_s

    def give_up(self) -> bool:
        """True when a fenced message should be handed back rather than wait."""
        return self.reaped.is_set() or self.stopping.is_set()


class StartGate(Middleware):
    """Holds messages back while fenced, and runs suspects of the poison guard alone."""

    def __init__(self, fence: Fence) -> None:
        self.fence = fence
        self.cond = threading.Condition()
        self.running = 0  # messages running alongside others
        self.alone = False  # a suspect runs
        self.waiting_alone = 0
        self.held: dict[str, bool] = {}  # job id -> ran alone, while it runs
        self.running_async: dict[str, tuple[int, MessageProxy]] = {}  # job id -> (thread, message)
        self.returning = threading.Lock()
        self.is_async: dict[str, bool] = {}
        self.broker: Any = None
        fence.listeners.append(self._on_fence)

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self.broker = broker

    def before_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self.fence.stopping.set()
        self.fence.changed.set()

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self._wait_unfenced(broker, message)
        alone = bool(message.options.get("backroom_isolate"))
        with self.cond:
            if alone:
                self.waiting_alone += 1
                self.cond.wait_for(lambda: not self.alone and self.running == 0)
                self.waiting_alone -= 1
                self.alone = True
            else:
                self.cond.wait_for(lambda: not self.alone and self.waiting_alone == 0)
                self.running += 1
            self.held[message.message_id] = alone
            if self._async(broker, message.actor_name):
                self.running_async[message.message_id] = (threading.get_ident(), message)
        if self.fence.fenced():  # fenced while it waited for its turn: release the slot and hand it back
            self._release(message)
            self._wait_unfenced(broker, message)
            self.before_process_message(broker, message)

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        self._release(message)
        if message.options.get("backroom_fenced"):  # an async job stopped by the fence
            self._requeue(broker, message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._release(message)

    def _release(self, message: MessageProxy) -> None:
        with self.cond:
            alone = self.held.pop(message.message_id, None)
            self.running_async.pop(message.message_id, None)
            if alone is None:
                return
            if alone:
                self.alone = False
            else:
                self.running -= 1
            self.cond.notify_all()

    def _wait_unfenced(self, broker: Broker, message: MessageProxy) -> None:
        while self.fence.fenced():
            if self.fence.give_up():
                self._hand_back(broker, message)
            self.fence.changed.wait(0.25)
            self.fence.changed.clear()

    def _hand_back(self, broker: Any, message: MessageProxy) -> None:
        message.options["backroom_fenced"] = True  # neither acked, retried nor recorded (see tracking, redis)
        self._requeue(broker, message)
        raise SkipMessage("this worker is fenced off from Redis")

    def _requeue(self, broker: Any, message: MessageProxy) -> None:
        with self.returning:
            self.fence.unreturned.append((message.queue_name, message.options["redis_message_id"]))
        self._return_unreturned(broker)

    def _return_unreturned(self, broker: Any) -> None:
        """Re-queue what this worker handed back (a no-op for what the reaper took: not in our ack sets)."""
        with self.returning:
            while self.fence.unreturned:
                queue_name, redis_id = self.fence.unreturned[0]
                try:
                    broker.do_requeue(queue_name, redis_id)
                except redis.RedisError:
                    return  # retried when the fence lifts; the reaper takes it if this worker is reaped
                self.fence.unreturned.pop(0)

    def _on_fence(self, fenced: bool) -> None:
        if not fenced:
            if self.broker is not None:
                self._return_unreturned(self.broker)
            return
        with self.cond:
            running = list(self.running_async.values())
        for thread_id, message in running:
            message.options["backroom_fenced"] = True
            raise_thread_exception(thread_id, Fenced)
        if running:
            log.warning("fenced: asked %d running async job(s) to stop", len(running))

    def _async(self, broker: Broker, actor_name: str) -> bool:
        if actor_name not in self.is_async:
            fn = broker.get_actor(actor_name).fn  # Dramatiq wraps a coroutine function (functools.wraps)
            self.is_async[actor_name] = inspect.iscoroutinefunction(getattr(fn, "__wrapped__", fn))
        return self.is_async[actor_name]
