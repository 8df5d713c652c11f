"""The edge worker's side of the registry: a heartbeat thread per process (node, version, jobs, counters).

The server refuses edge work while no node beats (see broker.edge_registry), and the admin
lists the nodes. Counters are this process's since it started: done (ok), failed (raised),
blocked (the job's outcome, or the error it raised, has status `blocked`).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
from datetime import datetime, UTC
from importlib import metadata
from typing import Any

import redis
from dramatiq import Middleware

from broker.edge_registry import remove_beat, write_beat
from broker.keys import Keys
from config.settings import EdgeSettings
from domain.edge_registry import EdgeBeat

log = logging.getLogger(__name__)


def node_id(settings: EdgeSettings) -> str:
    """This node's name: EDGE_NODE_ID, else the host name."""
    return settings.edge_node_id or socket.gethostname()


def version() -> str:
    """The installed Backroom version."""
    try:
        return metadata.version("backroom")
    except metadata.PackageNotFoundError:
        return "unknown"


def capabilities(settings: EdgeSettings) -> tuple[list[str], bool]:
    """The sources this node can scrape (edge.sources.SOURCES when declared) and whether Chromium is present."""
    try:
        declared = getattr(importlib.import_module("edge.sources"), "SOURCES", ())
    except ImportError:
        declared = ()
    chromium = getattr(settings, "edge_chromium_path", "/usr/bin/chromium")
    return sorted(declared), bool(chromium) and os.access(chromium, os.X_OK)


def outcome_status(result: Any) -> str | None:
    """The `status` of a job's result (a dict or a model such as ScrapeOutcome), if it has one."""
    status = result.get("status") if isinstance(result, dict) else getattr(result, "status", None)
    return status if isinstance(status, str) else None


class EdgeRegistry(Middleware):
    """Heartbeats this process's registry entry every `interval_s` from a thread of its own."""

    def __init__(self, settings: EdgeSettings, keys: Keys) -> None:
        self.settings = settings
        self.keys = keys
        self.node_id = node_id(settings)
        self.lock = threading.Lock()
        self.running: dict[str, str] = {}  # message id -> actor name
        self.counts = {"done": 0, "failed": 0, "blocked": 0}
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.client: Any = None

    def beat(self) -> EdgeBeat:
        """This process's entry now."""
        sources, browser = capabilities(self.settings)
        with self.lock:
            jobs, counts = list(self.running), dict(self.counts)
        return EdgeBeat(
            node_id=self.node_id,
            pid=os.getpid(),
            version=version(),
            host=socket.gethostname(),
            sources=sources,
            browser=browser,
            current_jobs=jobs,
            last_beat=datetime.now(UTC),
            **counts,
        )

    def after_worker_boot(self, broker: Any, worker: Any) -> None:
        self.client = broker.client
        self.stopping.clear()
        self.thread = threading.Thread(target=self._run, name="edge-registry", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        try:
            remove_beat(self.client, self.keys, self.node_id, os.getpid())
        except redis.RedisError:
            log.warning("could not remove this edge process from the registry; it expires on its own")

    def before_process_message(self, broker: Any, message: Any) -> None:
        with self.lock:
            self.running[message.message_id] = message.actor_name

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        # a blocked scrape raises (so it is retried) with `status = "blocked"` on the exception
        blocked = getattr(exception, "status", None) == "blocked" or outcome_status(result) == "blocked"
        counter = "blocked" if blocked else "failed" if exception is not None else "done"
        with self.lock:
            self.running.pop(message.message_id, None)
            self.counts[counter] += 1

    def after_skip_message(self, broker: Any, message: Any) -> None:
        with self.lock:
            self.running.pop(message.message_id, None)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                write_beat(self.client, self.keys, self.beat(), ttl_s=self.settings.edge_node_ttl_s)
            except redis.RedisError as error:
                log.warning("edge registry beat failed: %s", error)
            self.stopping.wait(self.settings.edge_heartbeat_s)
