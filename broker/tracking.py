"""Job tracking: every attempt of every message updates its job record.

Starts and outcomes are handed to one writer thread per process that sends them in
pipelined batches, so tracking costs a fraction of a round trip per message under load. The
same batches carry the acks, append each attempt to the job's timeline and add to
per-minute outcome counters (one HINCRBY per queue, minute and counter per batch).

Cancelling a message this process has fetched is decided here, under one lock: the
cancel script publishes the request to the holding worker (see lua/cancel.lua), which
cancels it if it has not started and refuses otherwise. A message the reaper recovered
from a dead worker is claimed synchronously instead (lua/claim.lua), so the poison guard
sees every start of a job that keeps killing its worker; and it starts only once the jobs
that finished before it here are acked, so that if it kills this process they do not run again.

A batch is written in a transaction that watches this worker's reaper tombstone: once the
reaper has re-queued this worker's jobs (it was cut off from Redis, see broker.recovery),
its late starts, outcomes and acks describe attempts that newer ones replaced, and are
dropped instead of overwriting them.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

import redis
from dramatiq import Middleware
from dramatiq.broker import Broker, MessageProxy
from dramatiq.common import current_millis, q_name
from dramatiq.middleware import SkipMessage

from broker.jobs import JobStore
from broker.outage import backoff_s, transient
from broker.replication import private_client
from domain.jobs import JobStatus, error_text, redact, status_after_attempt, summarise_result

log = logging.getLogger(__name__)
STATS_TTL_S = 2 * 3600 + 300  # the admin pages read the last hour of per-minute counters
EVENT_TRACEBACK = 4000  # characters of traceback kept per failed attempt in the timeline

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


class JobTracking(Middleware):
    """Writes running/succeeded/retrying/dead/cancelled into each job's record."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.writer = OutcomeWriter(store)
        self.worker = WORKER_NAME
        self.lock = threading.Condition()
        self.started: set[str] = set()  # job ids started here whose ack is not written yet
        self.finished: set[str] = set()  # of those, the ones whose run is over
        self.cancelled: set[str] = set()  # job ids fetched here and cancelled before they started
        self.writer.on_acked = self._acked

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self.writer.dispatch = getattr(broker, "scripts", {}).get("dispatch")
        self.writer.ack_args = getattr(broker, "ack_args", None)
        broker_id = getattr(broker, "broker_id", "")
        if broker_id:
            self.writer.fence_key = self.store.keys.reaped(broker_id)
        replicas = getattr(broker, "replica_wait", None)
        if replicas is not None:
            self.writer.replica_wait, self.writer.client = replicas, private_client(self.store.client)
        if self.writer.dispatch is not None and self.writer.ack_args is not None:
            # only Backroom's RedisBroker has the dispatch script: it takes acks through the writer
            broker.ack_sink = self.writer.put_ack  # type: ignore[attr-defined]  # RedisBroker's, not Broker's
            self.writer.on_written = broker.release  # type: ignore[attr-defined]  # RedisBroker's, not Broker's
        wakeups = getattr(broker, "wakeups", None)
        if wakeups is not None:
            wakeups.on_cancel(self.store.keys.cancel(broker_id), self.request_cancel)

    def after_process_boot(self, broker: Broker) -> None:
        self.worker = f"{socket.gethostname()}:{os.getpid()}"  # the pid of the forked child

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        job_id, broker_id = message.message_id, getattr(broker, "broker_id", "")
        with self.lock:
            if job_id in self.cancelled:
                self.cancelled.discard(job_id)
                message.options["backroom_cancelled"] = True
                raise SkipMessage("job was cancelled")
            self.started.add(job_id)
        if message.options.get("backroom_recovered"):  # it may kill this process: what ran before it is acked first
            with self.lock:
                self.lock.wait_for(lambda: self.finished <= {job_id}, timeout=30)
        now = current_millis()
        if message.options.get("backroom_recovered") and not self.store.claim(
            job_id,
            worker=self.worker,
            actor=message.actor_name,
            queue=message.queue_name,
            now_ms=now,
            broker_id=broker_id,
            alone=bool(message.options.get("backroom_isolate")),
        ):
            message.options["backroom_cancelled"] = True
            raise SkipMessage("job was cancelled")
        if not message.options.get("backroom_recovered"):
            fields = {"status": JobStatus.RUNNING.value, "started_at": now, "worker": self.worker, "broker": broker_id}
            event = {
                "at": now,
                "event": "started",
                "worker": self.worker,
                "attempt": message.options.get("retries", 0) + 1,
            }
            # a first attempt may be a foreign producer's message, with no record yet (see OutcomeWriter._adopt)
            adopt = None if message.options.get("retries") else message
            self.writer.put(job_id, fields, keep=False, event=event, incr=("attempts",), adopt=adopt)

    def request_cancel(self, job_id: str) -> None:
        """A cancel request for a message this process holds: cancel it unless it started."""
        with self.lock:
            cancel = job_id not in self.started
            if cancel:
                self.cancelled.add(job_id)
        now = current_millis()
        if cancel:
            self.writer.put(
                job_id,
                {"status": JobStatus.CANCELLED.value, "finished_at": now},
                keep=False,
                event={"at": now, "event": "cancelled"},
                drop=("cancel_requested",),
            )
        else:  # written after this job's start, so the asker sees it running
            self.writer.put(
                job_id,
                {},
                keep=False,
                drop=("cancel_requested",),
                event={"at": now, "event": "cancel refused: already started"},
            )

    def _acked(self, job_ids: list[str]) -> None:
        with self.lock:
            self.started.difference_update(job_ids)
            self.finished.difference_update(job_ids)
            self.lock.notify_all()

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if message.options.get("backroom_fenced"):  # stopped by its fenced worker and handed back: no outcome here
            self._acked([message.message_id])
            return
        with self.lock:
            self.finished.add(message.message_id)
        status = status_after_attempt(failed=exception is not None, dead_lettered=message.failed)
        now = current_millis()
        fields: dict[str, Any] = {"status": status.value, "finished_at": now}
        # "failed" (a retry follows) is the attempt's outcome; the retry's enqueue logs "retrying"
        event: dict[str, Any] = {"at": now, "event": "failed" if status is JobStatus.RETRYING else status.value}
        if exception is None:
            fields["result"] = json.dumps(summarise_result(result), default=str)
        else:
            fields["last_error"] = event["error"] = error_text(exception)
            fields["traceback"] = "".join(traceback.format_exception(exception, limit=30))[-8000:]
            event["traceback"] = fields["traceback"][-EVENT_TRACEBACK:]
            if status is JobStatus.RETRYING:
                # the retry's enqueue wrote `retrying` already; after an outage this write may land
                # late, and must not overwrite the status of the retry that ran meanwhile
                fields.pop("finished_at")
                fields.pop("status")
        counters = (
            ("processed",)
            if exception is None
            else ("processed", "failed") + (("dead",) if status is JobStatus.DEAD else ())
        )
        self.writer.put(
            message.message_id,
            fields,
            keep=status is JobStatus.DEAD,
            event=event,
            queue_name=q_name(message.queue_name),
            broker_id=getattr(broker, "broker_id", ""),
            counters=counters,
        )
        if message.failed:  # nacked (dead-lettered) now, not acked through the writer
            self._acked([message.message_id])

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        if message.options.pop("backroom_cancelled", False) or message.options.get("backroom_fenced"):
            return  # the cancel itself wrote the record; a fenced worker handed the message back
        if message.failed:
            self._acked([message.message_id])
        fields = {
            "status": (JobStatus.DEAD if message.failed else JobStatus.CANCELLED).value,
            "finished_at": current_millis(),
            "last_error": message.options.get("backroom_refused") or "skipped by middleware (e.g. age limit)",
        }
        event = {"at": fields["finished_at"], "event": fields["status"], "error": fields["last_error"]}
        self.writer.put(message.message_id, fields, keep=message.failed, event=event)

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self.writer.close()


class Outcome(NamedTuple):
    """One record write: fields, a timeline event, and the counters it adds to."""

    job_id: str
    fields: dict[str, Any]
    keep: bool
    event: dict[str, Any] | list[dict[str, Any]] | None = None
    queue: str = ""
    broker_id: str = ""
    counters: tuple[str, ...] = ()
    at_ms: int = 0
    incr: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    adopt: MessageProxy | None = None  # a first start: the message, to write its record if no enqueue did


def coalesce(pending: list[Outcome]) -> list[Outcome]:
    """One write per job: a start and its outcome queued in the same batch become one (half the commands)."""
    merged: dict[str, Outcome] = {}
    for item in pending:
        first = merged.get(item.job_id)
        if first is None:
            merged[item.job_id] = item
            continue
        events = [e for e in (*_as_list(first.event), *_as_list(item.event))]
        merged[item.job_id] = item._replace(
            fields={**first.fields, **item.fields},
            event=events or None,
            incr=first.incr + item.incr,
            drop=tuple(dict.fromkeys((*first.drop, *item.drop))),
            counters=first.counters + item.counters,
            queue=item.queue or first.queue,
            broker_id=item.broker_id or first.broker_id,
            adopt=first.adopt or item.adopt,
        )
    return list(merged.values())


def _as_list(event: dict[str, Any] | list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [] if event is None else event if isinstance(event, list) else [event]


class Ack(NamedTuple):
    """One message to ack (Dramatiq's dispatch script) in the next batch."""

    queue: str
    redis_message_id: str
    job_id: str = ""


class OutcomeWriter:
    """A writer thread that pipelines queued record writes and acks; it starts on first use."""

    def __init__(self, store: JobStore, batch: int = 256) -> None:
        self.store = store
        self.batch = batch
        self.items: queue.Queue[Outcome | Ack | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()
        self.dispatch: Any = None  # Dramatiq's dispatch script, set at worker boot
        self.ack_args: Any = None
        self.on_acked: Callable[[list[str]], None] = lambda job_ids: None
        # (queue, redis id) of acks Redis took (or that the reaper made moot): the broker stops holding them
        self.on_written: Callable[[list[tuple[str, str]]], None] = lambda pairs: None
        self.fence_key = ""  # this worker's reaper tombstone, watched by every batch
        self.replica_wait: Any = None  # REDIS_WAIT_REPLICAS: one WAIT ends each batch (broker.replication)
        self.client: redis.Redis | None = None  # with it, the writer's own: WAIT must follow on the batch's connection

    def _acks_done(self, acks: list[Ack]) -> None:
        self.on_written([(ack.queue, ack.redis_message_id) for ack in acks])
        self.on_acked([ack.job_id for ack in acks])

    def put_ack(self, queue_name: str, redis_message_id: str, job_id: str = "") -> None:
        """Queue the ack of one message (written after the outcomes queued before it)."""
        self._start()
        self.items.put(Ack(queue_name, redis_message_id, job_id))

    def put(
        self,
        job_id: str,
        fields: dict[str, Any],
        *,
        keep: bool,
        event: dict[str, Any] | None = None,
        queue_name: str = "",
        broker_id: str = "",
        counters: tuple[str, ...] = (),
        incr: tuple[str, ...] = (),
        drop: tuple[str, ...] = (),
        adopt: MessageProxy | None = None,
    ) -> None:
        """Queue one record write (and the per-minute counters `counters` of `queue_name` and `broker_id`)."""
        self._start()
        self.items.put(
            Outcome(job_id, fields, keep, event, queue_name, broker_id, counters, current_millis(), incr, drop, adopt)
        )

    def _start(self) -> None:
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name="backroom-job-writer", daemon=True)
                    self.thread.start()

    def _run(self) -> None:
        stop = False
        while not stop:
            pending = [self.items.get()]
            while len(pending) < self.batch and pending[-1] is not None:
                try:
                    pending.append(self.items.get_nowait())
                except queue.Empty:
                    break
            stop = pending[-1] is None
            try:
                self._write([item for item in pending if item is not None])
            except Exception:  # the writer must outlive a bad batch: every later job depends on it
                log.exception("job record batch of %d item(s) failed", len(pending))
            for _ in pending:
                self.items.task_done()

    def _write(self, batch: list[Outcome | Ack]) -> None:
        pending = coalesce([item for item in batch if isinstance(item, Outcome)])
        acks = [item for item in batch if isinstance(item, Ack)]
        attempt, reload = 0, False
        # until the batch lands: a dropped ack re-runs a finished job after a later crash
        while pending or acks:
            try:
                if reload:  # Redis lost the ack script (a restart flushes its script cache)
                    self.store.client.script_load(self.dispatch.script)
                    reload = False
                acks = self._send(pending, acks)
                pending, reload = [], bool(acks)
            except redis.exceptions.NoScriptError:  # refused before EXEC: nothing was written
                reload = True
            except redis.WatchError:  # reaped while this batch was on its way: look again
                continue
            except redis.RedisError as error:
                if not transient(error):
                    raise
                if attempt == 0:
                    log.warning("job record batch not written (%s); retrying until Redis takes it", error)
                time.sleep(backoff_s(attempt))
                attempt += 1

    def _send(self, pending: list[Outcome], acks: list[Ack]) -> list[Ack]:
        """Write the batch in one transaction; returns the acks to send again (Redis lacked their script).

        A transaction, so that a full or read-only Redis refuses all of it: an ack never
        lands without the outcome queued before it, and the retry doubles no counter. It
        watches this worker's reaper tombstone: once reaped, its late writes never land.
        """
        adopting = [(item, item.adopt) for item in pending if item.adopt is not None]
        client = self.client or self.store.client
        with client.pipeline(transaction=True) as pipe:
            if self.fence_key and not self._watch_not_reaped(pipe):
                log.warning("dropped %d late job record write(s): this worker was reaped", len(pending))
                self._acks_done(acks)
                return []
            for item, adopt in adopting:  # 1 when no enqueue script wrote the record (first, before the start)
                pipe.hsetnx(self.store.keys.job(item.job_id), "actor", adopt.actor_name)
            for item in pending:
                self.store.write_final(
                    pipe, item.job_id, item.fields, keep=item.keep, event=item.event, incr=item.incr, drop=item.drop
                )
            self._count(pipe, pending)
            for ack in acks:  # after the outcomes: a record never trails its ack
                self._ack(pipe, ack)
            results = pipe.execute(raise_on_error=False)
        ack_results = results[len(results) - len(acks) :]
        noscript = redis.exceptions.NoScriptError
        again = [ack for ack, result in zip(acks, ack_results) if isinstance(result, noscript)]
        rejected = [r for r in results if isinstance(r, Exception) and not isinstance(r, noscript)]
        if rejected:  # e.g. WRONGTYPE: retrying would not help
            log.error("Redis rejected %d job record command(s): %s", len(rejected), rejected[0])
        self._wait_for_replicas(client)
        self._acks_done([ack for ack in acks if ack not in again])
        self._adopt([adopt for (_, adopt), new in zip(adopting, results) if new == 1])
        return again

    def _wait_for_replicas(self, client: redis.Redis) -> None:
        """REDIS_WAIT_REPLICAS: WAIT after the batch landed (a short count is reported, never re-sent).

        WAIT counts the writes of its own connection, and WAIT inside MULTI never blocks, so it
        follows the transaction on the writer's private client: one thread, one connection.
        """
        if self.replica_wait is None:
            return
        try:
            replicas = client.execute_command(*self.replica_wait.command)
        except redis.RedisError:  # the batch is in; only its replication is unknown
            replicas = 0
        self.replica_wait.confirmed(replicas if isinstance(replicas, int) else 0)

    def _adopt(self, messages: list[MessageProxy]) -> None:
        """Write the records of foreign producers' messages (rare: Backroom's enqueue writes its own).

        After the batch landed: a failure here is logged, never retried with the batch (which
        would write its outcomes and counters twice); the record then lacks only its arguments.
        """
        if not messages:
            return
        try:
            self._adopt_now(messages)
        except redis.RedisError as error:
            log.warning("could not complete the records of %d foreign job(s): %s", len(messages), error)

    def _adopt_now(self, messages: list[MessageProxy]) -> None:
        with self.store.client.pipeline(transaction=False) as pipe:
            for message in messages:
                args = json.dumps(redact({"args": list(message.args), "kwargs": message.kwargs}), default=str)
                self.store.adopt(
                    pipe,
                    message.message_id,
                    actor=message.actor_name,
                    queue=q_name(message.queue_name),
                    args=args,
                    enqueued_ms=int(message.message_timestamp or current_millis()),
                    redis_message_id=str(message.options.get("redis_message_id", "")),
                    queue_name=message.queue_name,
                )
            pipe.execute()

    def _watch_not_reaped(self, pipe: Any) -> bool:
        """Watch this worker's tombstone; True (the batch goes on, in MULTI) unless it was reaped."""
        pipe.watch(self.fence_key)
        if pipe.exists(self.fence_key):
            pipe.unwatch()
            return False
        pipe.multi()
        return True

    def _ack(self, pipe: Any, ack: Ack) -> None:
        # by sha, not through the Script object: that asks SCRIPT EXISTS before every pipeline
        args = self.ack_args(ack.queue, ack.redis_message_id)
        pipe.evalsha(self.dispatch.sha, 1, self.store.keys.ns, *args)

    def _count(self, pipe: Any, pending: list[Outcome]) -> None:
        """Add the batch's outcomes to per-minute queue counters and per-worker totals (one HINCRBY each)."""
        keys = self.store.keys
        totals: Counter[tuple[str, str]] = Counter()
        for item in pending:
            minute = item.at_ms // 60_000
            for name in item.counters:
                if item.queue:
                    totals[keys.stats(item.queue, minute // 60), f"{minute}:{name}"] += 1
                if item.broker_id:
                    totals[keys.worker_stats(item.broker_id), name] += 1
        for (key, name), count in totals.items():
            pipe.hincrby(key, name, count)
        for key in {key for key, _ in totals}:
            pipe.expire(key, STATS_TTL_S)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is written (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self.items.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.002)

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        if self.thread is not None:
            self.items.put(None)
            self.thread.join(timeout=10)
            self.thread = None
