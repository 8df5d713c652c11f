"""`backroom jobs list|show`: search jobs and read one job's attempts and timeline."""

from __future__ import annotations

import json
from datetime import datetime, UTC

import typer
from rich.markup import escape
from rich.table import Table

from admin.jobsearch import parse_cursor
from cli.admin import JSON_HELP, console, emit_json, service, when
from domain.jobs import JobStatus

jobs_app = typer.Typer(help="Jobs: search them, or show one with every attempt and its timeline.", no_args_is_help=True)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@jobs_app.command("list")
def list_jobs(
    status: JobStatus | None = typer.Option(None, "--status", help="Only jobs with this status."),
    actor: str | None = typer.Option(None, "--actor"),
    queue: str | None = typer.Option(None, "--queue", "-q"),
    text: str | None = typer.Option(None, "--text", help="Arguments contain TEXT (any case)."),
    since: datetime | None = typer.Option(None, "--since", help="Enqueued at or after (UTC)."),
    until: datetime | None = typer.Option(None, "--until", help="Enqueued at or before (UTC)."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=500),
    cursor: str | None = typer.Option(None, "--cursor", help="Continue a search (the `next_cursor` shown)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Search jobs, newest first (a bounded scan: `--cursor` continues it)."""
    if cursor:
        try:
            parse_cursor(cursor)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--cursor") from None
    page = service().jobs(
        status=status.value if status else None,
        actor=actor,
        queue=queue,
        text=text,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
        cursor=cursor,
    )
    if as_json:
        emit_json(page)
        return
    table = Table(
        "job",
        "status",
        "actor",
        "queue",
        "tries",
        "enqueued (UTC)",
        "arguments / last error",
        title=f"jobs ({page.scanned} examined)",
        title_justify="left",
    )
    for job in page.items:
        detail = escape(job.args) + (f"\n[red]{escape(job.last_error)}[/red]" if job.last_error else "")
        table.add_row(
            job.job_id, job.status.value, job.actor, job.queue, str(job.attempts), when(job.enqueued_at), detail
        )
    console().print(table)
    if page.next_cursor:
        console().print(f"more may match: --cursor {page.next_cursor}", highlight=False)


@jobs_app.command("show")
def show_job(job_id: str, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """One job: record, arguments, every attempt with its error and traceback, the timeline."""
    detail = service().job(job_id)
    if detail is None:
        console().print(f"[red]no such job {escape(job_id)} (unknown, or past its retention)[/red]")
        raise typer.Exit(1)
    if as_json:
        emit_json(detail)
        return
    record, out = detail.record, console()
    out.print(
        f"[bold]job {record.job_id}[/bold]  {record.status.value}  {record.actor} on {record.queue}", highlight=False
    )
    out.print(f"arguments: {escape(json.dumps(record.args))}  {escape(json.dumps(record.kwargs))}", highlight=False)
    for label, value in (("replay of", record.replayed_from), ("replayed as", record.replayed_as)):
        if value:
            out.print(f"{label}: {value}", highlight=False)
    if detail.dead_letter:
        out.print(f"dead-lettered on {detail.dead_letter.queue} as {detail.dead_letter.redis_id}", highlight=False)
    for attempt in detail.attempts:
        took = f" in {attempt.duration_ms} ms" if attempt.duration_ms is not None else ""
        out.print(
            f"\nattempt {attempt.number}: {attempt.outcome}{took} on {attempt.worker} at {when(attempt.started_at)}",
            highlight=False,
        )
        if attempt.error:
            out.print(f"  [red]{escape(attempt.error)}[/red]")
        if attempt.traceback:
            out.print(escape(attempt.traceback.rstrip()), highlight=False)
    table = Table("at (UTC)", "event", "detail", title="timeline", title_justify="left")
    for event in detail.timeline:
        extra = {k: v for k, v in event.model_dump(exclude={"at", "event", "traceback"}).items() if v is not None}
        table.add_row(when(event.at), event.event, escape(json.dumps(extra, default=str)) if extra else "")
    out.print(table)
