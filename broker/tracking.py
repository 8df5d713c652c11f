"""Job tracking: every attempt of every message updates its job record.

Starts and outcomes are handed to one writer thread per process that sends them in
pipelined batches, so tracking costs a fraction of a round trip per message under load. The
same batches carry the acks, append each attempt to the job's timeline and add to
per-minute outcome counters (one HINCRBY per queue, minute and counter per batch).

Cancelling a message this process has fetched is decided here, under one lock: the
cancel script publishes the request to the holding worker (see lua/cancel.lua), which
cancels it if it has not started and refuses otherwise. A message the reaper recovered
from a dead worker is claimed synchronously instead (lua/claim.lua), so the poison guard
sees every start of a job that keeps killing its worker.
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
from domain.jobs import JobStatus, error_text, status_after_attempt, summarise_result

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
        self.lock = threading.Lock()
        self.started: set[str] = set()  # job ids started here whose ack is not written yet
        self.cancelled: set[str] = set()  # job ids fetched here and cancelled before they started
        self.writer.on_acked = self._acked

    def after_worker_boot(self, broker: Broker, worker: Any) -> None:
        self.writer.dispatch = getattr(broker, "scripts", {}).get("dispatch")
        self.writer.ack_args = getattr(broker, "ack_args", None)
        self.writer.replica_wait = getattr(broker, "replica_wait", None)
        if self.writer.dispatch is not None and self.writer.ack_args is not None:
            broker.ack_sink = self.writer.put_ack  # type: ignore[attr-defined]
        wakeups = getattr(broker, "wakeups", None)
        if wakeups is not None:
            wakeups.on_cancel(self.store.keys.cancel(broker.broker_id), self.request_cancel)  # type: ignore[attr-defined]

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
        now = current_millis()
        if message.options.get("backroom_recovered") and not self.store.claim(
            job_id, worker=self.worker, actor=message.actor_name, queue=message.queue_name, now_ms=now,
            broker_id=broker_id,
        ):
            message.options["backroom_cancelled"] = True
            raise SkipMessage("job was cancelled")
        if not message.options.get("backroom_recovered"):
            fields = {"status": JobStatus.RUNNING.value, "started_at": now, "worker": self.worker, "broker": broker_id}
            event = {"at": now, "event": "started", "worker": self.worker,
                     "attempt": message.options.get("retries", 0) + 1}
            self.writer.put(job_id, fields, keep=False, event=event, incr=("attempts",))

    def request_cancel(self, job_id: str) -> None:
        """A cancel request for a message this process holds: cancel it unless it started."""
        with self.lock:
            cancel = job_id not in self.started
            if cancel:
                self.cancelled.add(job_id)
        now = current_millis()
        if cancel:
            self.writer.put(job_id, {"status": JobStatus.CANCELLED.value, "finished_at": now}, keep=False,
                            event={"at": now, "event": "cancelled"}, drop=("cancel_requested",))
        else:  # written after this job's start, so the asker sees it running
            self.writer.put(job_id, {}, keep=False, drop=("cancel_requested",),
                            event={"at": now, "event": "cancel refused: already started"})

    def _acked(self, job_ids: list[str]) -> None:
        with self.lock:
            self.started.difference_update(job_ids)

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
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
                fields.pop("finished_at")
        counters = ("processed",) if exception is None else ("processed", "failed") + (
            ("dead",) if status is JobStatus.DEAD else ())
        self.writer.put(message.message_id, fields, keep=status is JobStatus.DEAD, event=event,
                        queue_name=q_name(message.queue_name), broker_id=getattr(broker, "broker_id", ""),
                        counters=counters)
        if message.failed:  # nacked (dead-lettered) now, not acked through the writer
            self._acked([message.message_id])

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        if message.options.pop("backroom_cancelled", False):
            return  # the cancel itself wrote the record
        if message.failed:
            self._acked([message.message_id])
        fields = {"status": (JobStatus.DEAD if message.failed else JobStatus.CANCELLED).value,
                  "finished_at": current_millis(), "last_error": "skipped by middleware (e.g. age limit)"}
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
            fields={**first.fields, **item.fields}, event=events or None, incr=first.incr + item.incr,
            drop=tuple(dict.fromkeys((*first.drop, *item.drop))), counters=first.counters + item.counters,
            queue=item.queue or first.queue, broker_id=item.broker_id or first.broker_id)
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
        self.replica_wait: Any = None  # REDIS_WAIT_REPLICAS: one WAIT ends each batch (broker.replication)

    def put_ack(self, queue_name: str, redis_message_id: str, job_id: str = "") -> None:
        """Queue the ack of one message (written after the outcomes queued before it)."""
        self._start()
        self.items.put(Ack(queue_name, redis_message_id, job_id))

    def put(self, job_id: str, fields: dict[str, Any], *, keep: bool, event: dict[str, Any] | None = None,
            queue_name: str = "", broker_id: str = "", counters: tuple[str, ...] = (), incr: tuple[str, ...] = (),
            drop: tuple[str, ...] = ()) -> None:
        """Queue one record write (and the per-minute counters `counters` of `queue_name` and `broker_id`)."""
        self._start()
        self.items.put(Outcome(job_id, fields, keep, event, queue_name, broker_id, counters, current_millis(),
                               incr, drop))

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
        if not batch:
            return
        pending = coalesce([item for item in batch if isinstance(item, Outcome)])
        acks = [item for item in batch if isinstance(item, Ack)]
        for attempt in range(30):
            try:
                with self.store.client.pipeline(transaction=False) as pipe:
                    for item in pending:
                        self.store.write_final(pipe, item.job_id, item.fields, keep=item.keep, event=item.event,
                                               incr=item.incr, drop=item.drop)
                    self._count(pipe, pending)
                    for ack in acks:  # after the outcomes: a record never trails its ack
                        self._ack(pipe, ack)
                    if self.replica_wait is not None:
                        pipe.execute_command(*self.replica_wait.command)
                    results = pipe.execute(raise_on_error=False)
                if self.replica_wait is not None:  # reported once a minute when short
                    replicas = results.pop()
                    self.replica_wait.confirmed(replicas if isinstance(replicas, int) else 0)
                refused = [r for r in results if isinstance(r, Exception) and not isinstance(r, redis.exceptions.NoScriptError)]
                if refused:  # e.g. OOM under maxmemory: logged, not retried (the batch would refuse again)
                    log.error("Redis refused %d job record command(s): %s", len(refused), refused[0])
                self._reack([ack for ack, result in zip(acks, results[len(results) - len(acks):])
                             if isinstance(result, redis.exceptions.NoScriptError)])
                self.on_acked([ack.job_id for ack in acks])
                return
            except redis.ConnectionError:
                log.warning("job record write failed, retrying (attempt %d)", attempt + 1)
                time.sleep(min(5.0, 0.1 * 2**attempt))
        log.error("gave up writing %d job records after Redis stayed unreachable", len(pending))

    def _ack(self, pipe: Any, ack: Ack) -> None:
        # by sha, not through the Script object: that asks SCRIPT EXISTS before every pipeline
        args = self.ack_args(ack.queue, ack.redis_message_id)
        pipe.evalsha(self.dispatch.sha, 1, self.store.keys.ns, *args)

    def _reack(self, acks: list[Ack]) -> None:
        """Ack again what Redis refused for want of the script (its script cache was flushed, e.g. a restart)."""
        if acks:
            self.store.client.script_load(self.dispatch.script)
            with self.store.client.pipeline(transaction=False) as pipe:
                for ack in acks:
                    self._ack(pipe, ack)
                pipe.execute()

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
