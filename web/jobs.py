"""/v1/jobs: enqueue an operation, read a job's record, cancel a job that has not started."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from dramatiq.common import current_millis
from quart import Blueprint, current_app, g
from quart_schema import document_response, tag

import actors
from actors.collections import generate_collections
from actors.embed import embed_items, sync_embeddings
from actors.enrich import enrich_items
from actors.ops import ping
from actors.prune import prune_listings
from domain.contracts import SCRAPE_SOURCE
from domain.jobs import JobRecord, JobStatus
from domain.tokens import grants
from web.auth import require
from web.bodies import validate_body
from web.edge_jobs import enqueue_edge
from web.enqueue import BROKER_DOWN, enqueue
from web.errors import document_errors, problem
from web.known import unknown_source, unknown_surface
from web.notify import enqueue_notify
from web.schemas import (
    Accepted,
    CollectionsJob,
    EmbedJob,
    EnrichJob,
    NotifyJob,
    PingJob,
    PruneJob,
    ScrapeJob,
    reply,
)

blueprint = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
JOB_ID = re.compile(r"^[0-9a-f-]{36}$")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def operation(
    method: str,
    rule: str,
    *,
    body: type | None = None,
    answers: type = Accepted,
    status: int = 202,
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Route a `jobs`-scoped operation: bearer token, its body validated, its answers documented.

    `body`: the request model (the handler gets `data=`); `answers`/`status`: its success
    response; `errors`: its own error statuses (web.errors.document_errors).
    """

    def decorate(handler: F) -> F:
        view: Any = document_errors(*errors)(handler)
        view = document_response(answers, status)(view)
        if body is not None:
            view = validate_body(body)(view)
        view = require("jobs")(tag(["jobs"])(view))
        return blueprint.route(rule, methods=[method])(view)

    return decorate


@operation("POST", "/ping", body=PingJob)
async def post_ping(data: PingJob) -> Any:
    """Enqueue a diagnostic ping (it can be asked to fail, to exercise retries)."""
    return await enqueue(ping, unique_key=data.unique_key, **data.arguments())


@operation("POST", "/embed", body=EmbedJob)
async def post_embed(data: EmbedJob) -> Any:
    """Embed these items' images, or sync every item missing a current vector when `item_ids` is empty."""
    if data.item_ids:
        return await enqueue(embed_items, unique_key=data.unique_key, item_ids=data.item_ids, force=data.force)
    return await enqueue(sync_embeddings, unique_key=data.unique_key, force=data.force)


@operation("POST", "/notify", body=NotifyJob)
async def post_notify(data: NotifyJob) -> Any:
    """Send one templated email, push or chat message once per idempotency key (503: provider not configured)."""
    return await enqueue_notify(data)


@operation("POST", "/collections", body=CollectionsJob, errors=(404,))
async def post_collections(data: CollectionsJob) -> Any:
    """Generate a new generation of one surface's curated collections and swap it in (404: unknown surface)."""
    if (unknown := await unknown_surface(data.surface)) is not None:
        return unknown
    return await enqueue(generate_collections, unique_key=data.unique_key, **data.arguments())


@operation("POST", "/enrich", body=EnrichJob)
async def post_enrich(data: EnrichJob) -> Any:
    """Enrich these items: stylist slot and style tags (and an LLM description when configured)."""
    return await enqueue(enrich_items, unique_key=data.unique_key, item_ids=data.item_ids, force=data.force)


@operation("POST", "/prune", body=PruneJob, errors=(404,))
async def post_prune(data: PruneJob) -> Any:
    """Check that available items' source listings still exist (sold -> sold, removed -> archived)."""
    if (unknown := await unknown_source(data.source)) is not None:
        return unknown
    return await enqueue(prune_listings, unique_key=data.unique_key, **data.arguments())


@operation("POST", "/scrape", body=ScrapeJob, errors=(404, 409))
async def post_scrape(data: ScrapeJob) -> Any:
    """Scrape one marketplace search on an edge worker; 409 when no edge node is live (unless `force`)."""
    if (unknown := await unknown_source(data.source)) is not None:
        return unknown
    return await enqueue_edge(
        SCRAPE_SOURCE,
        {"source": data.source, "query": data.query, "limit": data.limit},
        force=data.force,
        unique_key=data.unique_key,
    )


# a job id is a UUID (36 characters): /v1/jobs/ping is an operation, never a job, so that a path
# answers (and advertises in `Allow`) only the methods it documents
@operation("GET", "/<string(length=36):job_id>", answers=JobRecord, status=200)
async def get_job(job_id: str) -> Any:
    """The record of one job: status, attempts, last error, times, worker, result (a `jobs` token: its own jobs)."""
    if not JOB_ID.match(job_id):
        return problem(404, "no such job")
    try:
        record = await asyncio.to_thread(actors.broker.jobs.get, job_id)
    except BROKER_DOWN:
        return problem(503, "the job store is unreachable", headers={"Retry-After": "5"})
    if record is None or not _may_see(record.token_id):
        return problem(404, "no such job (unknown, or past its retention)")
    return reply(record)


def _may_see(owner: int | None) -> bool:
    """Admin tokens see every job; a `jobs` token only those it enqueued (others answer 404: ids do not leak)."""
    return grants(g.token.scopes, "admin") or (owner is not None and owner == g.token.id)


async def _owner(job_id: str) -> int | None:
    raw = await current_app.config["REDIS"].hget(actors.broker.jobs.keys.job(job_id), "token_id")
    return int(raw) if raw else None


@operation("POST", "/<string(length=36):job_id>/cancel", answers=JobRecord, status=200, errors=(409,))
async def cancel_job(job_id: str) -> Any:
    """Cancel a job that has not started; 409 when it already runs or is over (a `jobs` token: its own jobs)."""
    if not JOB_ID.match(job_id):
        return problem(404, "no such job")
    try:
        if not grants(g.token.scopes, "admin") and not _may_see(await _owner(job_id)):
            return problem(404, "no such job (unknown, or past its retention)")
        status = await asyncio.to_thread(actors.broker.jobs.cancel, job_id, now_ms=current_millis())
    except BROKER_DOWN:
        return problem(503, "the job store is unreachable", headers={"Retry-After": "5"})
    if status is None:
        return problem(404, "no such job (unknown, or past its retention)")
    if status is not JobStatus.CANCELLED:
        return problem(409, f"the job is {status.value} and can no longer be cancelled")
    return await get_job(job_id)
