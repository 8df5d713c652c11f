"""/admin/: the admin pages, rendered on the server; a little JavaScript refreshes the counts.

Pages read through the same service as the admin API (admin.service); the actions
they post live in web.admin.actions.
"""

from __future__ import annotations

import json
from datetime import datetime, UTC
from typing import Any

from pydantic import ValidationError
from quart import Blueprint, Quart, current_app, g, redirect, render_template, request, url_for

from admin.humanize import human_bytes, human_seconds
from admin.schedules import schedule_settings
from config.settings import Settings
from db.audit import select_audit
from db.edge_credentials import select_edge_credentials
from domain.admin import QueueSample, QueueView
from web.admin.api import run, service
from web.admin.charts import sparkline
from web.admin.schemas import DeadQuery, JobQuery
from web.admin.session import (
    can_act,
    configure_sessions,
    csrf_token,
    csrf_valid,
    page_error,
    session_token,
    sign_in,
    signed_in,
    store_down,
    token_for,
)

blueprint = Blueprint(
    "admin_pages",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def install(app: Quart, settings: Settings) -> None:
    """Register the admin pages and actions with their session set-up and template helpers."""
    from web.admin import actions as admin_actions, tickets as admin_tickets
    from web.admin.metrics import install_queue_metrics

    configure_sessions(app, settings)
    install_queue_metrics()
    app.register_blueprint(blueprint)
    app.register_blueprint(admin_actions.blueprint)
    app.register_blueprint(admin_tickets.blueprint)
    app.jinja_env.filters.update(ago=ago, when=when, seconds=human_seconds, size=human_bytes, pretty=pretty)


@blueprint.after_app_request
async def secure(response: Any) -> Any:
    """Strict headers on every admin page (no framing, no inline script, nothing cached)."""
    if request.path.startswith("/admin"):
        response.headers.update(SECURITY_HEADERS)
    return response


@blueprint.app_context_processor
def helpers() -> dict[str, Any]:
    """What every admin template may use."""
    if not request.path.startswith("/admin"):
        return {}
    return {"csrf_token": csrf_token, "can_act": can_act(), "token": g.get("token")}


def ago(value: datetime | None) -> str:
    """`12 s ago`, `3 min ago` (or `-`)."""
    if value is None:
        return "-"
    seconds = (datetime.now(UTC) - value).total_seconds()
    return f"in {human_seconds(-seconds)}" if seconds < 0 else f"{human_seconds(seconds)} ago"


def pretty(value: Any) -> str:
    """Indented JSON for reading (escaped by the template like any text)."""
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def when(value: datetime | None) -> str:
    """`2026-01-02 03:04:05` in UTC (or `-`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@blueprint.get("/login")
async def login() -> Any:
    """The sign-in form."""
    return await render_template("admin/login.html", next=_safe_next(request.args.get("next")), error=None)


@blueprint.post("/login")
async def login_post() -> Any:
    """Exchange an admin or admin:read token for a session."""
    form = await request.form
    if store_down():
        return await page_error(503, "The session store (PostgreSQL) is unreachable. Retry shortly.")
    if not await csrf_valid():  # no login CSRF: the form must come from our own sign-in page
        return await page_error(403, "The sign-in form was stale. Reload the page and try again.")
    token = await token_for(form.get("token", "")) if form.get("token") else None
    if token is None:
        page = await render_template(
            "admin/login.html",
            next=_safe_next(form.get("next")),
            error="That token is unknown, revoked, or lacks the admin:read scope.",
        )
        return page, 401
    await sign_in(token)
    return redirect(_safe_next(form.get("next")), 303)


def _safe_next(target: str | None) -> str:
    """Only paths inside /admin/ (never another site) after sign-in."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("admin_pages.overview")


async def overview_data() -> dict[str, Any]:
    """Queues with their hour of samples as sparkline points (the live value last)."""
    admin = service()
    queues, histories = await run(lambda: (admin.queue_views(), admin.histories()))
    now = datetime.now(UTC)
    charts = {q.name: _charts(q, histories.get(q.name, []), now) for q in queues}
    return {"queues": queues, "charts": charts, "at": now}


def _charts(queue: QueueView, samples: list[QueueSample], now: datetime) -> dict[str, Any]:
    ready = [(s.at, float(s.ready)) for s in samples] + [(now, float(queue.ready))]
    latency = [(s.at, s.latency_s) for s in samples] + [(now, queue.latency_s)]
    return {"ready": sparkline(ready, end=now), "latency": sparkline(latency, end=now)}


@blueprint.get("/")
@signed_in()
async def overview() -> Any:
    """Queues at a glance, refreshed every 2 s."""
    data = await overview_data()
    workers = await run(service().workers)
    return await render_template("admin/overview.html", **data, workers=workers)


@blueprint.get("/overview.json")
@signed_in()
async def overview_json() -> Any:
    """What the overview's script polls."""
    data = await overview_data()
    return {
        "at": data["at"].isoformat(),
        "queues": [q.model_dump() for q in data["queues"]],
        "charts": {name: {k: v.model_dump() for k, v in c.items()} for name, c in data["charts"].items()},
    }


@blueprint.get("/dead")
@signed_in()
async def dead() -> Any:
    """Dead letters of one queue with filters, and counts for every queue."""
    admin = service()
    queue = request.args.get("queue") or "default"
    if queue not in admin.queues:
        return await page_error(404, f"Unknown queue {queue!r}.")
    try:
        query = DeadQuery(**{k: v for k, v in request.args.items() if k in DeadQuery.model_fields and v})
    except ValidationError as error:
        return await page_error(422, f"Bad filter: {error.errors()[0]['msg']}")
    counts, page = await run(lambda: (admin.dead.counts(), admin.dead_page(queue, **query.filters())))
    return await render_template("admin/dead.html", queue=queue, counts=counts, page=page, query=query)


@blueprint.get("/dead/<queue>/groups")
@signed_in()
async def dead_groups(queue: str) -> Any:
    """The newest dead letters grouped by error fingerprint."""
    if queue not in service().queues:
        return await page_error(404, f"Unknown queue {queue!r}.")
    groups = await run(service().dead_groups, queue)
    return await render_template("admin/groups.html", queue=queue, result=groups)


@blueprint.get("/jobs")
@signed_in()
async def jobs() -> Any:
    """Job search."""
    try:
        query = JobQuery(**{k: v for k, v in request.args.items() if k in JobQuery.model_fields and v})
    except ValidationError as error:
        return await page_error(422, f"Bad filter: {error.errors()[0]['msg']}")
    filters = query.model_dump()
    filters["status"] = query.status.value if query.status else None
    page = await run(service().jobs, **filters)
    args: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor" and v}
    next_url = url_for("admin_pages.jobs", **args, cursor=page.next_cursor) if page.next_cursor else None
    return await render_template("admin/jobs.html", page=page, query=query, queues=service().queues, next_url=next_url)


@blueprint.get("/jobs/<job_id>")
@signed_in()
async def job(job_id: str) -> Any:
    """One job: record, attempts, timeline, lineage, and the replay form when it is dead-lettered."""
    detail = await run(service().job, job_id)
    if detail is None:
        return await page_error(404, "No such job (unknown, or past its retention).")
    return await render_template("admin/job.html", detail=detail, record=detail.record)


@blueprint.get("/workers")
@signed_in()
async def workers() -> Any:
    """Worker processes and the jobs of dead ones awaiting rescue."""
    return await render_template("admin/workers.html", view=await run(service().workers))


@blueprint.get("/edge")
@signed_in()
async def edge() -> Any:
    """Edge nodes."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        nodes = await service().edge_nodes(conn)
        credentials = await select_edge_credentials(conn)
    seen = {n.node_id: n.last_seen for n in nodes}
    return await render_template("admin/edge.html", nodes=nodes, credentials=credentials, seen=seen)


@blueprint.get("/schedules")
@signed_in()
async def schedules() -> Any:
    """Schedules (cadence, on/off), scrape sources, brands, surfaces and the leading scheduler."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        settings, config = await schedule_settings(conn)
    return await render_template("admin/schedules.html", view=await run(service().schedules, settings, config))


@blueprint.get("/audit")
@signed_in()
async def audit() -> Any:
    """The newest admin actions."""
    async with current_app.config["DB_POOL"].acquire() as conn:
        rows = await select_audit(conn, limit=100)
    return await render_template("admin/audit.html", rows=rows)


@blueprint.get("/whoami.json")
async def whoami() -> Any:
    """Whether this browser is signed in, and whether it may act (for scripts and tests)."""
    token = await session_token()
    if token is None:
        return {"signed_in": False}, 401
    g.token = token
    return {"signed_in": True, "name": token.name, "can_act": can_act()}
