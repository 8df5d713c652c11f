"""The admin surface's reads and actions, shared by the admin API, the admin page and the CLI.

Everything here is synchronous Redis work (async callers run it in a thread). Actions are
broker operations done directly rather than through an actor: they act on the queues
themselves (a paused or backlogged queue could not carry its own resume or requeue), and
each returns an AuditEntry that the caller stores with who did it (`audit`).
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta, UTC
from typing import TYPE_CHECKING, Any

import asyncpg
from dramatiq.common import current_millis

from admin.jobsearch import JobSearch
from admin.replay import replay
from admin.timeline import ErrorGroups, JobDetail, JobPage, ReplayResult, group_errors
from admin.workers import Workers
from broker.deadletters import DeadLetters, DeadPage, RequeueResult
from broker.edge_registry import live_edge_nodes
from broker.pauses import pause_queue, resume_queue
from broker.queues import QueueStats, known_queues
from config.settings import get_settings
from db.audit import insert_audit
from db.edge_nodes import select_edge_nodes
from domain.admin import (
    AuditEntry,
    AuditRow,
    EdgeNode,
    QueueSample,
    QueueView,
    SchedulesView,
    ScheduleView,
    WorkersView,
    edge_nodes,
)
from domain.schedules import ScheduleConfig, ScheduleSetting

if TYPE_CHECKING:
    from broker.redis import BackroomBroker

GROUP_WINDOW = 1_000  # dead letters (newest first) the error grouping reads by default
MAX_GROUP_WINDOW = 10_000


def cli_actor() -> str:
    """Who acts from the command line: the OS user and host."""
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


async def audit(conn: asyncpg.Connection, actor: str, entry: AuditEntry) -> AuditRow:
    """Store an action's audit row.

    Written by the process that acted, right after acting, rather than by an actor: an
    audit row must not wait behind (or be lost with) the queues the action touched.
    """
    return await insert_audit(conn, actor=actor, entry=entry)


class Admin:
    """Reads and actions over one broker's queues, dead letters, jobs, workers and schedules."""

    def __init__(self, broker: BackroomBroker) -> None:
        self.broker = broker
        self.keys = broker.jobs.keys
        self.queues = known_queues(broker)
        client, timeout = broker.client, broker.heartbeat_timeout
        self.stats = QueueStats(client, self.keys, self.queues, timeout)
        self.workers_ = Workers(client, self.keys, self.queues, timeout)
        self.search = JobSearch(client, self.keys)
        self.dead = DeadLetters(
            client,
            broker.namespace,
            broker.dead_message_ttl,
            job_retention_s=broker.jobs.retention_s,
            queues=self.queues,
        )

    # -- reads -----------------------------------------------------------------------------

    def queue_views(self) -> list[QueueView]:
        """Every queue's counts, latency, recent outcomes, consumers and pause state."""
        return self.stats.overview(current_millis())

    def histories(self, minutes: int = 60) -> dict[str, list[QueueSample]]:
        """Per-minute ready counts and latencies of every queue over the last `minutes`."""
        return self.stats.histories(current_millis(), minutes)

    def workers(self) -> WorkersView:
        """Worker processes, what each holds, and the jobs of dead ones awaiting rescue."""
        return self.workers_.view(current_millis())

    def jobs(self, **filters: Any) -> JobPage:
        """Job search (status, actor, queue, text, since, until, limit, cursor)."""
        return self.search.search(**filters)

    def job(self, job_id: str) -> JobDetail | None:
        """One job's record, attempts, timeline and dead-letter whereabouts."""
        return self.search.detail(job_id)

    def dead_page(self, queue: str, **filters: Any) -> DeadPage:
        """A page of a queue's dead letters (filters: actor, error_contains, since, until, offset, limit)."""
        return self.dead.list(queue, **filters)

    def dead_groups(self, queue: str, window: int = GROUP_WINDOW) -> ErrorGroups:
        """The newest `window` dead letters of `queue` grouped by error fingerprint."""
        page = self.dead.list(queue, limit=max(1, min(window, MAX_GROUP_WINDOW)))
        groups = group_errors((item.error, item.actor, item.dead_at) for item in page.items)
        return ErrorGroups(queue=queue, groups=groups, scanned=len(page.items), total=page.total)

    def schedules(
        self, settings: Mapping[str, ScheduleSetting] | None = None, config: ScheduleConfig | None = None
    ) -> SchedulesView:
        """Every periodic actor's cron (with the admin's `settings`), next and last run, outcome, missed ticks."""
        import schedules  # noqa: F401  (declares the periodic actors on this process's broker)
        from schedules.runner import current_leader, schedule_overview

        rows = schedule_overview(self.broker.client, self.broker.namespace, self.broker, settings=settings)
        with self.broker.client.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.hget(self.keys.job(row.last_job_id or "-"), "status")
            outcomes = pipe.execute()
        views = [ScheduleView(**vars(row), last_outcome=o.decode() if o else None) for row, o in zip(rows, outcomes)]
        return SchedulesView(
            leader=current_leader(self.broker.client, self.broker.namespace), schedules=views, config=config
        )

    async def edge_nodes(self, conn: asyncpg.Connection) -> list[EdgeNode]:
        """Edge nodes from the database merged with the live edge registry and `edge` worker heartbeats."""
        rows = await select_edge_nodes(conn)
        workers = (await asyncio.to_thread(self.workers)).workers
        registry = await asyncio.to_thread(
            live_edge_nodes, self.broker.client, self.keys, ttl_s=get_settings().edge_node_ttl_s
        )
        offline_after = timedelta(milliseconds=self.broker.heartbeat_timeout * 3)
        return edge_nodes(rows, workers, now=datetime.now(UTC), offline_after=offline_after, registry=registry)

    # -- actions (each returns what happened and its audit entry) ---------------------------

    def pause(self, queue: str) -> AuditEntry:
        """Stop workers fetching from `queue` (enqueues are still accepted)."""
        self._check(queue)
        changed = pause_queue(self.broker.client, self.keys, queue)
        return AuditEntry(
            action="queue.pause", target=f"queue:{queue}", before={"paused": not changed}, after={"paused": True}
        )

    def resume(self, queue: str) -> AuditEntry:
        """Let workers fetch from `queue` again."""
        self._check(queue)
        changed = resume_queue(self.broker.client, self.keys, queue)
        return AuditEntry(
            action="queue.resume", target=f"queue:{queue}", before={"paused": changed}, after={"paused": False}
        )

    def requeue(self, queue: str, ids: list[str]) -> tuple[RequeueResult, AuditEntry]:
        """Requeue the dead letters named by redis or job ids."""
        found, unknown = self.dead.resolve(queue, ids)
        result = self.dead.requeue(queue, found)
        result.skipped += unknown
        return result, requeue_audit(queue, {"ids": ids}, result)

    def requeue_matching(self, queue: str, **filters: Any) -> tuple[RequeueResult, AuditEntry]:
        """Requeue every dead letter of `queue` matching the filters (all of them without filters)."""
        result = self.dead.requeue_matching(queue, **filters)
        return result, requeue_audit(queue, {"filter": plain_filters(filters)}, result)

    def discard(self, queue: str, ids: list[str]) -> tuple[int, AuditEntry]:
        """Delete the dead letters named by redis or job ids."""
        found, unknown = self.dead.resolve(queue, ids)
        removed = self.dead.discard(queue, found)
        return removed, discard_audit(queue, {"ids": ids}, removed, unknown)

    def discard_matching(self, queue: str, **filters: Any) -> tuple[int, AuditEntry]:
        """Delete every dead letter of `queue` matching the filters."""
        removed = self.dead.discard_matching(queue, **filters)
        return removed, discard_audit(queue, {"filter": plain_filters(filters)}, removed)

    def replay(
        self, queue: str, ident: str, *, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> tuple[ReplayResult, AuditEntry]:
        """Replay a dead letter as a new job with edited arguments (NotDeadLettered when it is gone)."""
        self._check(queue)
        result = replay(self.broker, queue, ident, args=args, kwargs=kwargs)
        entry = AuditEntry(
            action="dead.replay",
            target=f"job:{result.replayed_from}",
            before={"args": result.original_args, "kwargs": result.original_kwargs},
            after={"job_id": result.job_id, "args": result.args, "kwargs": result.kwargs},
        )
        return result, entry

    def _check(self, queue: str) -> None:
        if queue not in self.queues:
            raise ValueError(f"unknown queue {queue!r}; known: {', '.join(self.queues)}")


def requeue_audit(queue: str, before: dict[str, Any], result: RequeueResult) -> AuditEntry:
    """The audit entry of a dead-letter requeue (ids kept up to 1,000)."""
    return AuditEntry(
        action="dead.requeue",
        target=f"queue:{queue}",
        before=before,
        after={"requeued": len(result.requeued), "job_ids": result.job_ids[:1000], "skipped": result.skipped[:1000]},
    )


def discard_audit(queue: str, before: dict[str, Any], removed: int, unknown: list[str] | None = None) -> AuditEntry:
    """The audit entry of a dead-letter discard."""
    after: dict[str, Any] = {"discarded": removed}
    if unknown:
        after["unknown"] = unknown[:1000]
    return AuditEntry(action="dead.discard", target=f"queue:{queue}", before=before, after=after)


def plain_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Filters as JSON-ready values, the unset ones left out."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}
