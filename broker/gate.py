"""When a fetched message may start: never while this worker is fenced, and a suspect alone.

Isolation (the poison guard, see lua/reap.lua): a message charged a crash of its worker
(`backroom_isolate`) runs with its worker process to itself, so a crash during that run is
evidence against it and not against neighbours. A waiting suspect holds back new starts
until what runs has finished.

Fencing (a host cut off from Redis, see broker.recovery): once this process's last
successful heartbeat is older than `FENCE_FRACTION` of the heartbeat timeout, the reaper may
soon hand what it holds to other workers, so nothing more starts here, prefetched messages
included. A message waits at the gate until a heartbeat lands again; if this worker was
reaped meanwhile (or it is stopping), the message is handed back instead: re-queued when it
is still ours (Dramatiq's requeue is a no-op for what the reaper took), else left to the
reaper, and never acked or recorded here.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from dramatiq import Middleware
from dramatiq.broker import Broker, MessageProxy
from dramatiq.middleware import SkipMessage

log = logging.getLogger(__name__)
FENCE_FRACTION = 0.5  # of the heartbeat timeout: the reaper needs the whole timeout, plus a reap interval


class Fence:
    """This process's standing with Redis, as its heartbeats tell it."""

    def __init__(self, timeout_ms: int) -> None:
        self.after_s = timeout_ms * FENCE_FRACTION / 1000
        self.last_ok = time.monotonic()
        self.reaped = threading.Event()  # the reaper re-queued what this process held: it must restart
        self.stopping = threading.Event()
        self.changed = threading.Event()

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
        if self.fence.fenced():  # fenced while it waited for its turn: release the slot and hand it back
            self._release(message)
            self._wait_unfenced(broker, message)
            self.before_process_message(broker, message)

    def after_process_message(self, broker: Broker, message: MessageProxy, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self._release(message)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        self._release(message)

    def _release(self, message: MessageProxy) -> None:
        with self.cond:
            alone = self.held.pop(message.message_id, None)
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
        try:  # a no-op for a message the reaper took (it is no longer in this worker's ack set)
            broker.do_requeue(message.queue_name, message.options["redis_message_id"])
        except redis.RedisError:
            log.warning("fenced worker could not hand back message %s; the reaper will", message.message_id)
        message.options["backroom_fenced"] = True  # neither acked nor recorded (see tracking, redis)
        raise SkipMessage("this worker is fenced off from Redis")
