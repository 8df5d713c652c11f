"""Dramatiq's RedisBroker with Backroom's enqueue (job record in the same script) and wake-ups."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any, cast
from uuid import uuid4

import redis
from dramatiq.broker import Consumer
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.message import Message
from dramatiq.middleware import CurrentMessage, Middleware, MiddlewareError

from broker.dramatiq_consumer import WakingConsumer, ack_args
from broker.jobs import JobStore
from broker.outage import until_it_lands
from broker.pauses import Pauses
from broker.replication import ReplicaWait
from domain.jobs import redact, status_on_enqueue


class BackroomBroker(RedisBroker):
    """A RedisBroker whose every enqueue is one script call that also writes the job record."""

    def __init__(
        self,
        *,
        url: str,
        namespace: str,
        job_retention_s: int,
        wake_queues: str = "*",
        broker_id_prefix: str = "",
        replica_wait: ReplicaWait | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("client") is not None:
            url = ""  # a Sentinel-managed client replaces the URL's host
        self._hook_listeners: dict[str, tuple[tuple[Middleware, ...], list[Middleware]]] = {}
        super().__init__(url=url, namespace=namespace, **kwargs)
        # an edge worker names its keys (ack sets, worker description) after its node, so an ACL can fence them
        self.broker_id = broker_id_prefix + self.broker_id
        self.jobs = JobStore(self.client, namespace, job_retention_s)
        # `wake_queues`: a glob of the queues whose wake-ups this process listens to (an edge ACL allows only its own)
        self.wakeups = Wakeups(self.client, self.jobs.keys.wake(wake_queues), prefix=self.jobs.keys.wake(""))
        self.pauses = Pauses(self.client, self.jobs.keys)
        # queues whose consumer lost its connection mid-fetch: what it fetched may be stranded (see requeue_lost)
        self.lost: set[str] = set()
        # queue -> redis ids handed to this process's worker whose ack or nack Redis has not yet taken
        self.holding: dict[str, set[str]] = {}
        self.holding_lock = threading.Lock()
        # set by JobTracking: acks of ready-queue messages ride in its batched writes
        self.ack_sink: Callable[[str, str, str], None] | None = None
        # set in worker processes (see broker.recovery): Dramatiq's own enqueues there (a delayed
        # message come due, a retry's backoff) wait out a Redis outage instead of raising
        self.enqueue_until_it_lands = False
        # REDIS_WAIT_REPLICAS > 0: enqueues (and outcome batches, see broker.tracking) wait for replicas
        self.replica_wait = replica_wait

    @property
    def consumer_class(self) -> type[Consumer]:
        return WakingConsumer

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's emit_before, calling only the middleware that implement the hook."""
        for middleware in self._listeners("before_" + signal):
            try:
                getattr(middleware, "before_" + signal)(self, *args, **kwargs)
            except MiddlewareError:
                raise
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", "before_" + signal, middleware, exc_info=True)

    def emit_after(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's emit_after (last middleware first), calling only the middleware that implement the hook."""
        for middleware in reversed(self._listeners("after_" + signal)):
            try:
                getattr(middleware, "after_" + signal)(self, *args, **kwargs)
            except Exception:
                self.logger.critical("Unexpected failure in %s of %r.", "after_" + signal, middleware, exc_info=True)

    def _listeners(self, hook: str) -> list[Middleware]:
        """The middleware, in order, whose class overrides `hook` (the base class's are no-ops).

        Every hook of every message otherwise calls each middleware (~a dozen calls per enqueue,
        more per processed message); the list is rebuilt whenever the middleware list changes
        (tests add and remove middleware on the shared broker).
        """
        stamp = tuple(self.middleware)  # compared by identity: any add, removal or swap rebuilds the list
        cached = self._hook_listeners.get(hook)
        if cached is None or cached[0] != stamp:
            base = getattr(Middleware, hook, None)
            cached = (stamp, [m for m in stamp if base is None or getattr(type(m), hook, None) is not base])
            self._hook_listeners[hook] = cached
        return cached[1]

    def enqueue(self, message: Message, *, delay: int | None = None) -> Message:
        """Enqueue `message` (optionally delayed by `delay` ms) and record it as a job."""
        if message.options.get("backroom_fenced"):  # a retry of a job its fenced worker stopped and handed back
            return message
        queue_name = message.queue_name
        message = message.copy(options={"redis_message_id": str(uuid4())})
        eta: int | str = ""
        if delay is not None:
            queue_name = dq_name(queue_name)
            eta = current_millis() + delay
            message = message.copy(queue_name=queue_name, options={"eta": eta})

        self.emit_before("enqueue", message, delay)
        # REDIS_WAIT_REPLICAS > 0: the script, then WAIT on the same connection
        replicated = self.replica_wait is not None
        send = (
            (lambda: self._enqueue_replicated(message, queue_name, eta))
            if replicated
            else (lambda: self._enqueue_script(message, queue_name, eta))
        )
        # not an actor's own send: that raises, so its job fails and is retried (or the edge keeps it in its outbox)
        if self.enqueue_until_it_lands and CurrentMessage.get_current_message() is None:
            # the script is idempotent per redis_message_id: a retry after a lost reply enqueues nothing twice
            outcome = until_it_lands(send, f"enqueue of {message.actor_name} {message.message_id}")
        else:
            outcome = send()
        return self._enqueued(message, outcome, delay)

    def _enqueue_replicated(self, message: Message, queue_name: str, eta: int | str) -> Any:
        """The enqueue script, then WAIT on the same connection (WAIT counts that connection's writes).

        Workers, the scheduler and the CLI cannot answer "try again": an unconfirmed enqueue is
        reported (once a minute), not raised; the web's enqueue_async raises instead (503).
        """
        assert self.replica_wait is not None
        keys, args = self._enqueue_call(message, queue_name, eta)
        script = self.jobs.scripts["enqueue"]
        for _ in range(2):  # by sha, loading the script once if a restarted Redis forgot it
            with self.client.pipeline(transaction=False) as pipe:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                pipe.execute_command(*self.replica_wait.command)
                outcome, replicas = pipe.execute(raise_on_error=False)
            if not isinstance(outcome, redis.exceptions.NoScriptError):
                break
            self.client.script_load(script.script)
        for result in (outcome, replicas):
            if isinstance(result, Exception):
                raise result
        self.replica_wait.confirmed(replicas)
        return outcome

    def _enqueued(self, message: Message, outcome: Any, delay: int | None) -> Message:
        """The message the caller gets back: the live job holding its unique key, or itself."""
        if isinstance(outcome, bytes):  # a live job holds this unique key: nothing was enqueued
            return message.copy(message_id=outcome.decode(), options={"deduplicated": True})
        self.emit_after("enqueue", message, delay)
        return message

    def _enqueue_script(self, message: Message, queue_name: str, eta: int | str, client: Any = None) -> Any:
        keys, args = self._enqueue_call(message, queue_name, eta)
        # `client`: a pipeline, when the enqueue is one step of a transaction (see admin.replay)
        return self.jobs.scripts["enqueue"](keys=keys, args=args, client=client)

    def _enqueue_call(self, message: Message, queue_name: str, eta: int | str) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the enqueue script for `message` on `queue_name`."""
        keys = self.jobs.keys
        status = status_on_enqueue(retries=message.options.get("retries", 0), delayed=eta != "")
        args = json.dumps(redact({"args": list(message.args), "kwargs": message.kwargs}), default=str)
        unique_key, token_id = message.options.get("unique_key") or "", message.options.get("token_id", "")
        # an API token's unique keys are its own: another token's job with the same key is never answered
        lock = f"token{token_id}:{unique_key}" if token_id != "" and unique_key else unique_key
        return (
            [
                keys.job(message.message_id),
                keys.queue(queue_name),
                keys.messages(queue_name),
                keys.job_index,
                keys.unique(lock),
                keys.events(message.message_id),
            ],
            [
                message.options["redis_message_id"],
                message.encode(),
                status.value,
                current_millis(),
                self.jobs.retention_s,
                message.actor_name,
                q_name(queue_name),
                args,
                eta,
                keys.wake(queue_name),
                message.message_id,
                queue_name,
                unique_key,
                keys.job_prefix,
                token_id,
            ],
        )

    async def enqueue_async(self, script: Any, message: Message) -> Message:
        """Enqueue `message` now through `script`, the enqueue script on an asyncio Redis client.

        For the web process: the same script, middleware and job record as `enqueue`, without
        a thread hop per request.
        """
        if "redis_message_id" not in message.options:  # web.enqueue builds its messages with one
            message = message.copy(options={"redis_message_id": str(uuid4())})
        self.emit_before("enqueue", message, None)
        keys, args = self._enqueue_call(message, message.queue_name, "")
        return self._enqueued(message, await script(keys=keys, args=args), None)

    def ack_args(self, queue_name: str, redis_message_id: str) -> list[Any]:
        """Arguments of Dramatiq's dispatch script acking one message of this process (for pipelines)."""
        return ack_args(self, queue_name, redis_message_id)

    def hold(self, queue_name: str, redis_message_id: str) -> None:
        """Note a fetched message handed to this process's worker (until `release`)."""
        with self.holding_lock:
            self.holding.setdefault(queue_name, set()).add(redis_message_id)

    def release(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(queue, redis id) pairs whose ack or nack Redis took: no longer held here."""
        with self.holding_lock:
            for queue_name, redis_message_id in pairs:
                self.holding.get(queue_name, set()).discard(redis_message_id)

    def requeue_lost(self, queue_name: str) -> int:
        """Put back what this process's ack set for `queue_name` holds but its worker does not; returns how many.

        After a connection error Dramatiq drops a consumer's in-memory delayed messages (a
        delay queue's every message) and its fetched-but-unhanded cache, and a fetch whose
        reply was lost moved messages into the ack set that this process never saw. Their
        ids stay in the ack set, so they would wait until the process dies.
        """
        with self.holding_lock:
            if queue_name.endswith(".DQ"):
                self.holding.pop(queue_name, None)  # Dramatiq dropped the delay queue it held them in
            held = set(self.holding.get(queue_name, ()))
        # what is held is read before the ack set: an ack Redis takes in between leaves both
        acks = cast(set[bytes], self.client.smembers(self.jobs.keys.acks(self.broker_id, queue_name)))
        acked_or_held = {m.decode() for m in acks}
        lost = acked_or_held - held
        if lost:
            self.do_requeue(queue_name, *sorted(lost))  # only ids still in the ack set go back
        self.lost.discard(queue_name)
        return len(lost)

    def close(self) -> None:
        """Stop the wake-up listener and close connections."""
        self.wakeups.stop()
        super().close()


class Wakeups:
    """One pub/sub listener per process that wakes idle consumers when work is enqueued.

    It also hears this worker's cancel requests (see broker.tracking).

    Bare Dramatiq consumers poll an empty queue with a backoff up to the worker timeout;
    here they wait on an event the listener sets, so pickup takes milliseconds, and the
    timeout stays as the fallback when pub/sub is down.
    """

    def __init__(self, client: redis.Redis, pattern: str, *, prefix: str) -> None:
        self.client = client
        self.pattern = pattern
        self.prefix = prefix
        self.events: dict[str, threading.Event] = {}
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.cancel_channel = ""
        self.cancel_handler: Callable[[str], None] = lambda job_id: None

    def event(self, queue_name: str) -> threading.Event:
        """The event set whenever something is enqueued on `queue_name`; starts the listener."""
        with self.lock:
            if self.thread is None:
                self.thread = threading.Thread(target=self._listen, name="backroom-wakeups", daemon=True)
                self.thread.start()
            return self.events.setdefault(queue_name, threading.Event())

    def on_cancel(self, channel: str, handler: Callable[[str], None]) -> None:
        """Call `handler(job_id)` for every cancel request published on `channel` (this worker's)."""
        with self.lock:
            self.cancel_channel, self.cancel_handler = channel, handler
            if self.thread is None:
                self.thread = threading.Thread(target=self._listen, name="backroom-wakeups", daemon=True)
                self.thread.start()

    def _listen(self) -> None:
        while not self.stopping.is_set():
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(self.pattern)
                cancels = ""
                while not self.stopping.is_set():
                    if self.cancel_channel != cancels:  # set at worker boot, after the consumers started
                        cancels = self.cancel_channel
                        pubsub.subscribe(cancels)
                    item = pubsub.get_message(timeout=0.25)
                    if item is None:
                        continue
                    if item["type"] == "message":
                        self.cancel_handler(item["data"].decode())
                    else:
                        self._set(item["channel"])
            except redis.RedisError:
                self._set_all()  # let consumers poll while we reconnect
                self.stopping.wait(1.0)

    def _set(self, channel: bytes) -> None:
        event = self.events.get(channel.decode()[len(self.prefix) :])
        if event is not None:
            event.set()

    def _set_all(self) -> None:
        for event in list(self.events.values()):
            event.set()

    def stop(self) -> None:
        """Ask the listener to stop (it exits within a second)."""
        self.stopping.set()
