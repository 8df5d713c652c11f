"""/v1/admin: queues, dead letters, jobs, workers, edge nodes, schedules and the audit log.

Reads need the `admin:read` scope, actions `admin`. Actions are broker operations done
here directly (see admin.service), each followed by its audit row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from quart import Blueprint, current_app
from quart_schema import document_response, tag, validate_querystring

from admin.replay import NotDeadLettered
from admin.schedules import schedule_settings
from admin.service import Admin, audit
from admin.timeline import ErrorGroups, JobDetail, JobPage, ReplayResult
from broker.deadletters import RequeueResult
from db.audit import select_audit
from db.edge_credentials import select_edge_credentials
from domain.admin import AuditEntry, SchedulesView, WorkersView
from web.admin.schemas import (
    AuditLog,
    AuditQuery,
    DeadCounts,
    DeadListResponse,
    DeadQuery,
    DeadSelection,
    DiscardResult,
    EdgeNodes,
    GroupQuery,
    JobQuery,
    PauseState,
    QueueHistory,
    QueuesResponse,
    ReplayBody,
)
from web.auth import require, who
from web.bodies import validate_body
from web.enqueue import BROKER_DOWN
from web.errors import problem
from web.schemas import reply

blueprint = Blueprint("admin_api", __name__, url_prefix="/v1/admin")
T = TypeVar("T")
READ, ACT = "admin:read", "admin"


def service() -> Admin:
    """This app's admin service (made once, on first use)."""
    if "ADMIN" not in current_app.config:
        import actors

        current_app.config["ADMIN"] = Admin(actors.broker)
    return current_app.config["ADMIN"]


async def run(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run blocking Redis work off the event loop."""
    return await asyncio.to_thread(call, *args, **kwargs)


async def record(entry: AuditEntry, actor: str | None = None) -> None:
    """Write an action's audit row."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        await audit(conn, actor or who(), entry)


def unknown_queue(queue: str) -> Any | None:
    """A 404 for a queue the service does not know (None when it knows it)."""
    if queue in service().queues:
        return None
    return problem(404, f"unknown queue {queue!r}; known: {', '.join(service().queues)}")


@blueprint.errorhandler(NotDeadLettered)
async def not_dead(error: NotDeadLettered) -> Any:
    """A dead letter that is not (or no longer) there."""
    return problem(404, f"{error} (never dead-lettered, or already requeued, replayed or discarded)")


async def broker_down(error: Exception) -> Any:
    """Redis unreachable: nothing was done."""
    return problem(503, "the job queue is unreachable; nothing was done, try again", headers={"Retry-After": "5"})


for _down in BROKER_DOWN:
    blueprint.register_error_handler(_down, broker_down)


@blueprint.get("/queues")
@require(READ)
@tag(["admin"])
@document_response(QueuesResponse)
async def list_queues() -> Any:
    """Every queue: ready, delayed, in flight, dead, latency, outcomes in 5/60 minutes, consumers, paused."""
    return reply(QueuesResponse(queues=await run(service().queue_views)))


@blueprint.get("/queues/<queue>/history")
@require(READ)
@tag(["admin"])
@document_response(QueueHistory)
async def queue_history(queue: str) -> Any:
    """A queue's ready count and latency, one sample a minute over the last hour."""
    if (missing := unknown_queue(queue)) is not None:
        return missing
    return reply(QueueHistory(queue=queue, samples=(await run(service().histories))[queue]))


async def _pause(queue: str, pause: bool) -> Any:
    if (missing := unknown_queue(queue)) is not None:
        return missing
    entry = await run(service().pause if pause else service().resume, queue)
    await record(entry)
    return reply(PauseState(queue=queue, paused=pause))


@blueprint.post("/queues/<queue>/pause")
@require(ACT)
@tag(["admin"])
@document_response(PauseState)
async def pause_queue(queue: str) -> Any:
    """Pause a queue: workers stop fetching from it (enqueues are still accepted)."""
    return await _pause(queue, True)


@blueprint.post("/queues/<queue>/resume")
@require(ACT)
@tag(["admin"])
@document_response(PauseState)
async def resume_queue(queue: str) -> Any:
    """Resume a paused queue."""
    return await _pause(queue, False)


@blueprint.get("/dead")
@require(READ)
@tag(["admin"])
@document_response(DeadCounts)
async def dead_counts() -> Any:
    """How many dead letters each queue holds."""
    return reply(DeadCounts(counts=await run(service().dead.counts)))


@blueprint.get("/dead/<queue>")
@require(READ)
@tag(["admin"])
@validate_querystring(DeadQuery)
@document_response(DeadListResponse)
async def list_dead(queue: str, query_args: DeadQuery) -> Any:
    """A queue's dead letters, newest first, filtered by actor, error text and time."""
    if (missing := unknown_queue(queue)) is not None:
        return missing
    page = await run(service().dead_page, queue, **query_args.filters())
    return reply(DeadListResponse(**page.model_dump()))


@blueprint.get("/dead/<queue>/groups")
@require(READ)
@tag(["admin"])
@validate_querystring(GroupQuery)
@document_response(ErrorGroups)
async def dead_groups(queue: str, query_args: GroupQuery) -> Any:
    """The newest dead letters of a queue grouped by error fingerprint (ids and numbers blanked)."""
    if (missing := unknown_queue(queue)) is not None:
        return missing
    return reply(await run(service().dead_groups, queue, query_args.window))


@blueprint.post("/dead/<queue>/requeue")
@require(ACT)
@tag(["admin"])
@validate_body(DeadSelection)
@document_response(RequeueResult)
async def requeue_dead(queue: str, data: DeadSelection) -> Any:
    """Requeue dead letters (by id, or all matching filters) as fresh messages with the same job ids."""
    if (missing := unknown_queue(queue)) is not None:
        return missing
    admin = service()
    if data.all_matching:
        result, entry = await run(admin.requeue_matching, queue, **data.filters())
    else:
        result, entry = await run(admin.requeue, queue, data.ids)
    await record(entry)
    return reply(result)


@blueprint.post("/dead/<queue>/discard")
@require(ACT)
@tag(["admin"])
@validate_body(DeadSelection)
@document_response(DiscardResult)
async def discard_dead(queue: str, data: DeadSelection) -> Any:
    """Delete dead letters for good (by id, or all matching filters)."""
    if (missing := unknown_queue(queue)) is not None:
        return missing
    admin = service()
    if data.all_matching:
        removed, entry = await run(admin.discard_matching, queue, **data.filters())
    else:
        removed, entry = await run(admin.discard, queue, data.ids)
    await record(entry)
    return reply(DiscardResult(discarded=removed))


@blueprint.post("/dead/<queue>/<ident>/replay")
@require(ACT)
@tag(["admin"])
@validate_body(ReplayBody)
@document_response(ReplayResult, 201)
async def replay_dead(queue: str, ident: str, data: ReplayBody) -> Any:
    """Replay a dead letter as a new job with edited arguments, linked to the dead one (`replayed_from`)."""
    if (missing := unknown_queue(queue)) is not None:
        return missing
    result, entry = await run(service().replay, queue, ident, args=data.args, kwargs=data.kwargs)
    await record(entry)
    return reply(result, 201)


@blueprint.get("/jobs")
@require(READ)
@tag(["admin"])
@validate_querystring(JobQuery)
@document_response(JobPage)
async def search_jobs(query_args: JobQuery) -> Any:
    """Search jobs by status, actor, queue, argument text and time; `next_cursor` continues a bounded scan."""
    filters = query_args.model_dump()
    filters["status"] = query_args.status.value if query_args.status else None
    return reply(await run(service().jobs, **filters))


@blueprint.get("/jobs/<job_id>")
@require(READ)
@tag(["admin"])
@document_response(JobDetail)
async def job_detail(job_id: str) -> Any:
    """A job's record, every attempt with its error and traceback, its timeline and lineage."""
    detail = await run(service().job, job_id)
    if detail is None:
        return problem(404, "no such job (unknown, or past its retention)")
    return reply(detail)


@blueprint.get("/workers")
@require(READ)
@tag(["admin"])
@document_response(WorkersView)
async def list_workers() -> Any:
    """Worker processes (host, pid, queues, threads, jobs, memory, last beat) and jobs awaiting rescue."""
    return reply(await run(service().workers))


@blueprint.get("/edge-nodes")
@require(READ)
@tag(["admin"])
@document_response(EdgeNodes)
async def list_edge_nodes() -> Any:
    """Edge nodes (id, version, last seen, current job, done/failed counts, offline since) and their credentials."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        rows = await service().edge_nodes(conn)
        credentials = await select_edge_credentials(conn)
    return reply(EdgeNodes(nodes=rows, credentials=credentials))


@blueprint.get("/schedules")
@require(READ)
@tag(["admin"])
@document_response(SchedulesView)
async def list_schedules() -> Any:
    """Schedules: cron (and the admin's overrides), next and last run, outcome, missed runs, sources, leader."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        settings, config = await schedule_settings(conn)
    return reply(await run(service().schedules, settings, config))


@blueprint.get("/audit")
@require(READ)
@tag(["admin"])
@validate_querystring(AuditQuery)
@document_response(AuditLog)
async def audit_log(query_args: AuditQuery) -> Any:
    """The newest admin actions: who, what, when, before and after."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        rows = await select_audit(conn, **query_args.model_dump())
    return reply(AuditLog(rows=rows))
