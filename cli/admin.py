"""`backroom queues|workers|edge nodes|schedules|audit`: the admin surface in a terminal.

The same service as the admin API and page (admin.service); every action writes the
same audit row, naming the OS user (`cli:user@host`). `--json` prints machine-readable
output for scripts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from admin.humanize import human_bytes, human_seconds

if TYPE_CHECKING:
    import asyncpg

    from domain.admin import AuditEntry
    from admin.service import Admin

T = TypeVar("T")
queues_app = typer.Typer(
    help="Queues: counts, latency, recent outcomes; pause and resume.", invoke_without_command=True
)
edge_app = typer.Typer(help="Edge nodes (the Pi workers).", no_args_is_help=True)
JSON_HELP = "Print JSON for scripts."


def console() -> Console:
    """A console sized at call time (COLUMNS is read when a Console is made)."""
    return Console()


def service() -> Admin:
    """The admin service over the configured broker."""
    import actors
    from admin.service import Admin

    return Admin(actors.broker)


def with_db(work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run `work` on one database connection."""
    import asyncpg

    from config.settings import get_settings

    async def run() -> T:
        conn = await asyncpg.connect(get_settings().database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def audited(entry: AuditEntry) -> None:
    """Store an action's audit row as done by this OS user."""
    from admin.service import audit, cli_actor

    with_db(lambda conn: audit(conn, cli_actor(), entry))


def emit_json(data: Any) -> None:
    """Print `data` (pydantic models included) as indented JSON."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    elif isinstance(data, list):
        data = [d.model_dump(mode="json") if isinstance(d, BaseModel) else d for d in data]
    typer.echo(json.dumps(data, indent=2, default=str))


def when(value: Any) -> str:
    """A time as `YYYY-MM-DD HH:MM:SS` (UTC), or `-`."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@queues_app.callback()
def queues(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every queue: ready, delayed, in flight, dead, latency, outcomes in 5/60 min, consumers."""
    if ctx.invoked_subcommand is not None:
        return
    views = service().queue_views()
    if as_json:
        emit_json(views)
        return
    table = Table(title="queues", title_justify="left")
    for column in (
        "queue",
        "ready",
        "delayed",
        "in flight",
        "dead",
        "latency",
        "5 min ok/failed",
        "60 min ok/failed",
        "consumers",
    ):
        table.add_column(column, justify="left" if column in ("queue", "consumers") else "right", overflow="fold")
    for q in views:
        name = f"{q.name} [yellow](paused)[/yellow]" if q.paused else q.name
        table.add_row(
            name,
            str(q.ready),
            str(q.delayed),
            str(q.in_flight),
            _red(q.dead),
            human_seconds(q.latency_s) if q.ready else "-",
            f"{q.processed_5m}/{_red(q.failed_5m)}",
            f"{q.processed_60m}/{_red(q.failed_60m)}",
            escape(", ".join(q.workers)) or "-",
        )
    console().print(table)


def _red(count: int) -> str:
    return f"[red]{count}[/red]" if count else "0"


def _known(queue: str) -> str:
    known = service().queues
    if queue not in known:
        raise typer.BadParameter(f"unknown queue {queue!r}; known: {', '.join(known)}", param_hint="QUEUE")
    return queue


@queues_app.command("pause")
def pause(queue: str = typer.Argument(..., callback=_known)) -> None:
    """Pause a queue: workers stop fetching from it (enqueues are still accepted)."""
    audited(service().pause(queue))
    console().print(f"paused [bold]{queue}[/bold]: workers stop fetching within a second")


@queues_app.command("resume")
def resume(queue: str = typer.Argument(..., callback=_known)) -> None:
    """Resume a paused queue."""
    audited(service().resume(queue))
    console().print(f"resumed [bold]{queue}[/bold]")


def workers(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Worker processes (host, pid, queues, threads, jobs, memory, last beat) and jobs awaiting rescue."""
    view = service().workers()
    if as_json:
        emit_json(view)
        return
    table = Table(
        title=f"workers (dead after {human_seconds(view.heartbeat_timeout_s)} of silence)", title_justify="left"
    )
    for column in ("process", "state", "queues", "threads", "jobs", "memory", "done/failed", "last beat (UTC)"):
        table.add_column(column, overflow="fold")
    for w in view.workers:
        # an edge worker describes itself: its names may hold markup
        jobs = "\n".join(f"{j.job_id[:8]} {escape(j.actor)} {'running' if j.running else 'prefetched'}" for j in w.jobs)
        name = escape(w.name) + (" [cyan]edge[/cyan]" if w.edge else "")
        table.add_row(
            name,
            "alive" if w.alive else "[red]dead[/red]",
            escape(",".join(w.queues)),
            str(w.threads),
            jobs or "idle",
            human_bytes(w.rss_bytes),
            f"{w.processed}/{w.failed}",
            when(w.last_beat),
        )
    console().print(table)
    if view.orphans:
        orphans = Table(
            "job",
            "actor",
            "queue",
            "dead worker",
            "back on its queue by (UTC)",
            title="jobs waiting for rescue",
            title_justify="left",
        )
        for o in view.orphans:
            orphans.add_row(
                o.job_id,
                o.actor,
                o.queue,
                o.worker,
                when(o.rescue_expected_at) + (" [red](overdue)[/red]" if o.overdue else ""),
            )
        console().print(orphans)


@edge_app.command("nodes")
def edge_nodes(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Edge nodes: id, version, last seen, current job, done/failed/blocked, offline since."""
    from db.edge_credentials import select_edge_credentials

    admin = service()
    nodes = with_db(admin.edge_nodes)
    creds = with_db(select_edge_credentials)
    if as_json:
        emit_json(
            {
                "nodes": [n.model_dump(mode="json") for n in nodes],
                "credentials": [c.model_dump(mode="json") | {"state": c.state} for c in creds],
            }
        )
        return
    table = Table(
        "node",
        "state",
        "version",
        "last seen (UTC)",
        "current job",
        "done/failed/blocked",
        "offline since",
        title="edge nodes",
        title_justify="left",
    )
    for n in nodes:
        table.add_row(
            n.node_id,
            "online" if n.online else "[red]offline[/red]",
            n.version or "-",
            when(n.last_seen),
            n.current_job or "-",
            f"{n.done}/{n.failed}/{n.blocked}",
            when(n.offline_since),
        )
    console().print(table if nodes else "no edge node has registered or heartbeated")
    seen = {n.node_id: n.last_seen for n in nodes}
    issued = Table(
        "node",
        "redis user",
        "credential",
        "created (UTC)",
        "by",
        "replaced / revoked (UTC)",
        "node last seen (UTC)",
        title="edge credentials (newest first)",
        title_justify="left",
    )
    for c in creds:
        issued.add_row(
            c.node_id,
            c.redis_user,
            "[red]revoked[/red]" if c.revoked_at else c.state,
            when(c.created_at),
            escape(c.created_by),
            when(c.revoked_at or c.replaced_at),
            when(seen.get(c.node_id)),
        )
    console().print(issued if creds else "no edge credential has been issued")


def schedules(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Schedules (UTC): cron, on/off, next run, last run and its outcome, missed runs, the leading scheduler."""
    from admin.schedules import schedule_settings

    settings, config = with_db(schedule_settings)
    view = service().schedules(settings, config)
    if as_json:
        emit_json(view)
        return
    table = Table(
        "actor",
        "cron",
        "state",
        "queue",
        "next run",
        "last run",
        "outcome",
        "missed",
        title=f"schedules (leader: {view.leader or 'none running'})",
        title_justify="left",
    )
    for s in view.schedules:
        spec = s.spec if s.spec == s.default_spec else f"{s.spec} [dim](declared {s.default_spec})[/dim]"
        table.add_row(
            s.actor,
            spec,
            "on" if s.enabled else "[red]off[/red]",
            s.queue,
            when(s.next_tick),
            when(s.last_tick),
            s.last_outcome or "-",
            _red(s.missed),
        )
    console().print(table)


def audit_log(
    limit: int = typer.Option(30, "--limit", "-n", min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The newest admin actions: who, what, when, before and after."""
    from db.audit import select_audit

    rows = with_db(lambda conn: select_audit(conn, limit=limit))
    if as_json:
        emit_json(rows)
        return
    table = Table("when (UTC)", "who", "action", "target", "before", "after", title="audit log", title_justify="left")
    for r in rows:
        table.add_row(
            when(r.at),
            r.actor,
            r.action,
            r.target,
            escape(json.dumps(r.before or {})),
            escape(json.dumps(r.after or {})),
        )
    console().print(table)
