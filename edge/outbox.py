"""The edge node's durable outbox: messages for the server kept in SQLite while Redis is unreachable.

A Pi on a home network loses its link to Redis now and then. A delivery that cannot be
enqueued is stored here (the encoded Dramatiq message, its id unchanged) and a flusher in
the edge worker enqueues stored messages oldest first when the link returns, deleting each
only after its enqueue succeeded. A crash between the enqueue and the delete re-delivers
the same message id, which the server's ingest absorbs (it dedups by delivery_id). Rows are
claimed with a lease, so several worker processes sharing the file do not send one twice.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from dramatiq import Middleware
from dramatiq.message import Message

log = logging.getLogger(__name__)
LEASE_S = 60.0  # a claimed row another process did not delete within this is flushed again
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT NOT NULL UNIQUE,
    queue_name    TEXT NOT NULL,
    actor_name    TEXT NOT NULL,
    payload       BLOB NOT NULL,
    stored_at     REAL NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    claimed_until REAL NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class Stored:
    """One stored message waiting for delivery."""

    seq: int
    message: Message


class Outbox:
    """A SQLite file of messages not yet delivered (safe across threads and processes)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # one flush at a time per process
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")  # a stored result survives a power cut
        return conn

    def store(self, message: Message, error: str = "") -> bool:
        """Keep `message` for later delivery; False when a message with its id is already stored."""
        conn = self._connect()
        try:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO outbox (message_id, queue_name, actor_name, payload, stored_at, last_error)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (message.message_id, message.queue_name, message.actor_name, message.encode(), time.time(), error),
            )
            return cursor.rowcount == 1
        finally:
            conn.close()

    def pending(self) -> int:
        """How many messages wait for delivery."""
        conn = self._connect()
        try:
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        finally:
            conn.close()

    def claim(self, limit: int = 100, *, lease_s: float = LEASE_S) -> list[Stored]:
        """Lease up to `limit` unclaimed messages, oldest first."""
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "SELECT seq, payload FROM outbox WHERE claimed_until < ? ORDER BY seq LIMIT ?", (now, limit)
            ).fetchall()
            conn.executemany(
                "UPDATE outbox SET claimed_until = ?, attempts = attempts + 1 WHERE seq = ?",
                [(now + lease_s, seq) for seq, _ in rows],
            )
            conn.execute("COMMIT")
            return [Stored(seq, Message.decode(payload)) for seq, payload in rows]
        finally:
            conn.close()

    def delete(self, seq: int) -> None:
        """Forget a delivered message."""
        conn = self._connect()
        try:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        finally:
            conn.close()

    def release(self, seqs: list[int], error: str) -> None:
        """Give leased messages back (their delivery failed) so the next flush retries them."""
        conn = self._connect()
        try:
            conn.executemany(
                "UPDATE outbox SET claimed_until = 0, last_error = ? WHERE seq = ?",
                [(error[:500], seq) for seq in seqs],
            )
        finally:
            conn.close()

    def flush(self, enqueue: Callable[[Message], Any]) -> int:
        """Enqueue stored messages oldest first until one fails; returns how many were delivered."""
        delivered = 0
        with self.lock:
            while batch := self.claim():
                for i, stored in enumerate(batch):
                    try:
                        enqueue(stored.message)
                    except UNREACHABLE as error:
                        self.release([s.seq for s in batch[i:]], f"{type(error).__name__}: {error}")
                        return delivered
                    self.delete(stored.seq)
                    delivered += 1
        if delivered:
            log.info("outbox: delivered %d stored message(s)", delivered)
        return delivered


class OutboxFlusher(Middleware):
    """Flushes the outbox (opened by `open_outbox` at worker boot) from a thread every `interval_s`."""

    def __init__(self, open_outbox: Callable[[], Outbox], interval_s: float) -> None:
        self.open_outbox = open_outbox
        self.interval_s = interval_s
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.outbox = self.open_outbox()
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, args=(broker,), name="edge-outbox", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self, broker: Any) -> None:
        while not self.stopping.wait(self.interval_s):
            try:
                if self.outbox.pending():
                    self.outbox.flush(broker.enqueue)
            except (redis.RedisError, sqlite3.Error) as error:
                log.warning("outbox flush failed (pid %d): %s", os.getpid(), error)
