"""Job tracking: every attempt of every message updates its job record.

The claim (queued -> running) is synchronous because it decides whether a cancelled job
is skipped. Outcomes are handed to one writer thread per process that sends them in
pipelined batches, so tracking costs a fraction of a round trip per message under load.
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
from typing import Any

import redis
from dramatiq import Middleware
from dramatiq.broker import Broker, MessageProxy
from dramatiq.common import current_millis
from dramatiq.middleware import SkipMessage

from broker.jobs import JobStore
from domain.jobs import JobStatus, error_text, status_after_attempt, summarise_result

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


class JobTracking(Middleware):
    """Writes running/succeeded/retrying/dead/cancelled into each job's record."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.writer = OutcomeWriter(store)
        self.worker = WORKER_NAME

    def after_process_boot(self, broker: Broker) -> None:
        self.worker = f"{socket.gethostname()}:{os.getpid()}"  # the pid of the forked child

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        claimed = self.store.claim(
            message.message_id, worker=self.worker, actor=message.actor_name,
            queue=message.queue_name, now_ms=current_millis(), broker_id=getattr(broker, "broker_id", ""),
        )
        if not claimed:
            message.options["backroom_cancelled"] = True
            raise SkipMessage("job was cancelled")

    def after_process_message(
        self, broker: Broker, message: MessageProxy, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        status = status_after_attempt(failed=exception is not None, dead_lettered=message.failed)
        fields: dict[str, Any] = {"status": status.value, "finished_at": current_millis()}
        if exception is None:
            fields["result"] = json.dumps(summarise_result(result), default=str)
        else:
            fields["last_error"] = error_text(exception)
            fields["traceback"] = "".join(traceback.format_exception(exception, limit=30))[-8000:]
            if status is JobStatus.RETRYING:
                fields.pop("finished_at")
        self.writer.put(message.message_id, fields, keep=status is JobStatus.DEAD)

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        if message.options.pop("backroom_cancelled", False):
            return  # the cancel itself wrote the record
        fields = {"status": (JobStatus.DEAD if message.failed else JobStatus.CANCELLED).value,
                  "finished_at": current_millis(), "last_error": "skipped by middleware (e.g. age limit)"}
        self.writer.put(message.message_id, fields, keep=message.failed)

    def after_worker_shutdown(self, broker: Broker, worker: Any) -> None:
        self.writer.close()


class OutcomeWriter:
    """A writer thread that pipelines queued record writes; it starts on first use."""

    def __init__(self, store: JobStore, batch: int = 256) -> None:
        self.store = store
        self.batch = batch
        self.items: queue.Queue[tuple[str, dict[str, Any], bool] | None] = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def put(self, job_id: str, fields: dict[str, Any], *, keep: bool) -> None:
        """Queue one record write."""
        if self.thread is None:
            with self.lock:
                if self.thread is None:
                    self.thread = threading.Thread(target=self._run, name="backroom-job-writer", daemon=True)
                    self.thread.start()
        self.items.put((job_id, fields, keep))

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
            self._write([item for item in pending if item is not None])
            for _ in pending:
                self.items.task_done()

    def _write(self, pending: list[tuple[str, dict[str, Any], bool]]) -> None:
        if not pending:
            return
        for attempt in range(30):
            try:
                with self.store.client.pipeline(transaction=False) as pipe:
                    for job_id, fields, keep in pending:
                        self.store.write_final(pipe, job_id, fields, keep=keep)
                    pipe.execute()
                return
            except redis.ConnectionError:
                log.warning("job record write failed, retrying (attempt %d)", attempt + 1)
                time.sleep(min(5.0, 0.1 * 2**attempt))
        log.error("gave up writing %d job records after Redis stayed unreachable", len(pending))

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
