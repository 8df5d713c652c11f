"""What the admin surface shows: queues, workers, edge nodes, schedules and audit rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, UTC
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.edge_registry import LiveEdgeNode
from domain.schedules import ScheduleConfig


def ms_to_dt(ms: float) -> datetime:
    """An aware UTC datetime from milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class QueueView(BaseModel):
    """One queue right now: backlog, age of its oldest ready job, recent outcomes, consumers."""

    name: str
    ready: int = Field(description="Messages waiting to be fetched (LLEN).")
    delayed: int = Field(description="Delayed messages and retries waiting out their backoff.")
    in_flight: int = Field(description="Fetched by live workers: running or prefetched.")
    dead: int = Field(description="Dead letters.")
    latency_s: float = Field(description="Age of the oldest ready job (0 when none waits).")
    processed_5m: int = 0
    failed_5m: int = 0
    processed_60m: int = 0
    failed_60m: int = 0
    workers: list[str] = Field(default_factory=list, description="Live worker processes consuming it (host:pid).")
    paused: bool = False


class QueueSample(BaseModel):
    """One minute's sample of a queue, for the charts."""

    at: datetime
    ready: int
    latency_s: float


def parse_sample(member: bytes | str) -> QueueSample:
    """A sample from its stored form `minute:ready:latency_ms`."""
    text = member.decode() if isinstance(member, bytes) else member
    minute, ready, latency_ms = (int(part) for part in text.split(":"))
    return QueueSample(at=ms_to_dt(minute * 60_000), ready=ready, latency_s=latency_ms / 1000)


def ready_since_ms(payload: bytes | str | None) -> int | None:
    """When a ready message became ready: its enqueue time, or its eta when it waited in a delay queue."""
    if not payload:
        return None
    try:
        message = json.loads(payload)
        return max(int(message.get("message_timestamp") or 0), int((message.get("options") or {}).get("eta") or 0))
    except (ValueError, TypeError, AttributeError):
        return None


def latency_seconds(now_ms: int, since_ms: int | None) -> float:
    """Seconds since `since_ms` (0 when nothing waits)."""
    return 0.0 if since_ms is None else round(max(0, now_ms - since_ms) / 1000, 3)


class HeldJob(BaseModel):
    """A message a worker process holds: running now, or prefetched and waiting for a thread."""

    job_id: str
    actor: str
    queue: str
    running: bool
    started_at: datetime | None = None


class WorkerView(BaseModel):
    """One worker process as its heartbeat describes it."""

    broker_id: str
    name: str
    host: str
    pid: int | None = None
    queues: list[str] = Field(default_factory=list)
    threads: int = 0
    rss_bytes: int | None = None
    last_beat: datetime
    alive: bool
    jobs: list[HeldJob] = Field(default_factory=list)
    processed: int = 0
    failed: int = 0
    edge: bool = Field(False, description="An edge-namespace process: an edge node's worker or the edge gateway.")


class OrphanJob(BaseModel):
    """A job held by a worker whose heartbeat stopped: it runs again once a live worker reaps it."""

    job_id: str
    actor: str
    queue: str
    worker: str
    last_beat: datetime
    rescue_expected_at: datetime
    overdue: bool = Field(description="Past the expected rescue (no live worker to reap it?).")


class WorkersView(BaseModel):
    """Every worker process and the jobs waiting for rescue from dead ones."""

    workers: list[WorkerView]
    orphans: list[OrphanJob]
    heartbeat_timeout_s: float


def rescue_expected_ms(last_beat_ms: int, timeout_ms: int, reap_interval_s: float) -> int:
    """When a dead worker's jobs should be back on their queue: timeout plus one reaper pass."""
    return last_beat_ms + timeout_ms + int(reap_interval_s * 1000)


def worker_view(
    broker_id: str,
    last_ms: int,
    info: Mapping[str, str],
    *,
    alive: bool,
    jobs: list[HeldJob],
    stats: Mapping[str, str],
    edge: bool = False,
) -> WorkerView:
    """A WorkerView from a heartbeat and the worker's description hash (decoded)."""
    pid = info.get("pid")
    rss = info.get("rss")
    return WorkerView(
        broker_id=broker_id,
        name=info.get("name") or broker_id,
        host=info.get("host") or "?",
        pid=int(pid) if pid else None,
        queues=[q for q in (info.get("queues") or "").split(",") if q],
        threads=int(info.get("threads") or 0),
        rss_bytes=int(rss) if rss else None,
        last_beat=ms_to_dt(int(info.get("last_beat") or last_ms)),
        alive=alive,
        jobs=jobs,
        processed=int(stats.get("processed") or 0),
        failed=int(stats.get("failed") or 0),
        edge=edge,
    )


class EdgeNodeRow(BaseModel):
    """An edge node as the `edge_nodes` table records it."""

    node_id: str
    version: str | None = None
    host: str | None = None
    last_seen: datetime
    current_job: str | None = None
    done_count: int = 0
    failed_count: int = 0


class EdgeNode(BaseModel):
    """An edge node: registered in the database, heartbeating through Redis, or both."""

    node_id: str
    version: str | None = None
    host: str | None = None
    last_seen: datetime
    current_job: str | None = None
    done: int = 0
    failed: int = 0
    online: bool
    offline_since: datetime | None = None
    source: Literal["table", "heartbeat", "both"]
    blocked: int = 0
    sources: list[str] = Field(default_factory=list, description="What the node can scrape (from its registry beat).")
    browser: bool | None = Field(None, description="Whether the node has Chromium (None: not reported).")
    processes: int = 0


def edge_nodes(
    rows: Iterable[EdgeNodeRow],
    workers: Iterable[WorkerView],
    *,
    now: datetime,
    offline_after: timedelta,
    registry: Iterable[LiveEdgeNode] = (),
) -> list[EdgeNode]:
    """Merge table rows, the live edge registry (by node id) and the live `edge` workers (by host); newest first."""
    registered = {node.node_id: node for node in registry}
    described = {node.host for node in registered.values()} | set(registered)
    live = [w for w in workers if w.alive and "edge" in w.queues and w.host not in described]
    rows = list(rows)
    nodes = [
        _from_registry(node, next((r for r in rows if r.node_id == node.node_id), None)) for node in registered.values()
    ]
    rows = [row for row in rows if row.node_id not in registered]
    by_host: dict[str, list[WorkerView]] = {}
    for worker in live:
        by_host.setdefault(worker.host, []).append(worker)
    nodes += [
        _from_row(row, by_host.pop(row.node_id, []) or by_host.pop(row.host or "", []), now, offline_after)
        for row in rows
    ]
    for host, processes in by_host.items():
        nodes.append(
            EdgeNode(
                node_id=host,
                host=host,
                last_seen=max(p.last_beat for p in processes),
                current_job=_running(processes),
                done=sum(p.processed for p in processes),
                failed=sum(p.failed for p in processes),
                online=True,
                source="heartbeat",
            )
        )
    return sorted(nodes, key=lambda n: n.last_seen, reverse=True)


def _from_registry(node: LiveEdgeNode, row: EdgeNodeRow | None) -> EdgeNode:
    return EdgeNode(
        node_id=node.node_id,
        version=node.version,
        host=node.host,
        last_seen=node.last_beat,
        current_job=node.current_job,
        done=node.done,
        failed=node.failed,
        blocked=node.blocked,
        sources=node.sources,
        browser=node.browser,
        processes=node.processes,
        online=True,
        source="both" if row else "heartbeat",
    )


def _from_row(row: EdgeNodeRow, processes: list[WorkerView], now: datetime, offline_after: timedelta) -> EdgeNode:
    last_seen = max([row.last_seen, *(p.last_beat for p in processes)])
    online = bool(processes) or now - row.last_seen < offline_after
    return EdgeNode(
        node_id=row.node_id,
        version=row.version,
        host=row.host,
        last_seen=last_seen,
        current_job=_running(processes) or row.current_job,
        done=row.done_count,
        failed=row.failed_count,
        online=online,
        offline_since=None if online else row.last_seen,
        source="both" if processes else "table",
    )


def _running(processes: Iterable[WorkerView]) -> str | None:
    return next((job.job_id for p in processes for job in p.jobs if job.running), None)


class ScheduleView(BaseModel):
    """One periodic actor: its cron, next and last run, the last run's outcome, missed ticks."""

    actor: str
    queue: str
    spec: str
    next_tick: datetime | None = None
    last_tick: datetime | None = None
    last_job_id: str | None = None
    last_outcome: str | None = Field(None, description="The last run's job status (None when unknown or expired).")
    fired_at: datetime | None = None
    missed: int = 0
    default_spec: str | None = Field(None, description="The declared cron (`spec` differs when an admin overrode it).")
    enabled: bool = Field(True, description="False: switched off by an admin; it does not fire.")


class SchedulesView(BaseModel):
    """Every schedule, and which scheduler process leads."""

    leader: str | None
    schedules: list[ScheduleView]
    config: ScheduleConfig | None = Field(None, description="Scrape sources, brands and collection surfaces.")


class AuditEntry(BaseModel):
    """What an admin action did, before it is stored with who did it."""

    action: str
    target: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class AuditRow(AuditEntry):
    """One stored audit row."""

    id: int
    actor: str
    at: datetime
