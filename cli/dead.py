"""`backroom dead`: list, requeue and discard dead letters (messages that exhausted their retries)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from config.settings import ALL_QUEUES

if TYPE_CHECKING:
    from broker.deadletters import DeadLetters, DeadPage, RequeueResult

dead_app = typer.Typer(help="Dead letters: list, requeue or discard what exhausted its retries.", no_args_is_help=True)


def console() -> Console:
    """A console sized at call time (COLUMNS is read when a Console is made)."""
    return Console()


QUEUES = ", ".join(ALL_QUEUES)
IDS_HELP = "Redis ids of dead letters (as `dead list` shows them) or job ids."
ALL_HELP = "Act on every dead letter of the queue that matches --error/--actor (all of them without filters)."


def service() -> DeadLetters:
    """The dead-letter service over the configured broker (built on first use)."""
    import actors
    from broker.deadletters import DeadLetters

    return DeadLetters.for_broker(actors.broker)


def _queue(value: str) -> str:
    if value not in ALL_QUEUES:
        raise typer.BadParameter(f"unknown queue {value!r}; known: {QUEUES}", param_hint="QUEUE")
    return value


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@dead_app.command("list")
def list_dead(
    queue: str | None = typer.Option(None, "--queue", "-q", help=f"One queue ({QUEUES}); default: every queue."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="Dead letters shown per queue."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many (newest first)."),
    actor: str | None = typer.Option(None, "--actor", help="Only this actor's."),
    error: str | None = typer.Option(None, "--error", help="Only those whose error contains TEXT (any case)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List dead letters, newest first, with their error and when they expire."""
    dead = service()
    counts = dead.counts()
    queues = [_queue(queue)] if queue else [q for q in ALL_QUEUES if counts.get(q)]
    pages = {q: dead.list(q, offset=offset, limit=limit, actor=actor, error_contains=error) for q in queues}
    if as_json:
        _emit_json({"counts": counts, "queues": {q: p.model_dump(mode="json") for q, p in pages.items()}})
        return
    if not queue:
        console().print("dead letters: " + "  ".join(f"{q} [bold]{counts[q]}[/bold]" for q in ALL_QUEUES))
    for name, page in pages.items():
        console().print(_table(name, page))
    if not any(page.total for page in pages.values()):
        console().print("[green]no dead letters[/green]" + (" match" if actor or error else ""))


def _table(queue: str, page: DeadPage) -> Table:
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}" if page.items else "0"
    total = f"{page.total}{'' if page.exact else '+'}"
    table = Table(title=f"{queue}: {shown} of {total}", title_justify="left", show_lines=False)
    for column in ("redis id", "job id", "actor", "error", "tries", "dead at (UTC)", "expires"):
        table.add_column(column, overflow="fold")
    for item in page.items:
        table.add_row(
            item.redis_id,
            item.job_id or "?",
            item.actor,
            escape(item.error or ""),
            str(item.attempts),
            item.dead_at.strftime("%Y-%m-%d %H:%M:%S"),
            item.expires_at.strftime("%Y-%m-%d"),
        )
    return table


def _targets(
    dead: DeadLetters, queue: str, ids: list[str], all_matching: bool, filters: dict[str, str | None]
) -> tuple[list[str], list[str]]:
    """The redis ids to act on and the ids that match no dead letter; refuses ambiguous input."""
    if all_matching == bool(ids):
        raise typer.BadParameter("give dead-letter IDS or --all-matching (not both, not neither)")
    if not all_matching and any(filters.values()):
        raise typer.BadParameter("--error and --actor select dead letters only with --all-matching")
    return dead.resolve(queue, ids) if ids else ([], [])


@dead_app.command("requeue")
def requeue(
    queue: str = typer.Argument(..., callback=_queue, help=f"The queue ({QUEUES})."),
    ids: list[str] = typer.Argument(None, help=IDS_HELP, show_default=False),
    all_matching: bool = typer.Option(False, "--all-matching", help=ALL_HELP),
    error: str | None = typer.Option(None, "--error", help="With --all-matching: error contains TEXT."),
    actor: str | None = typer.Option(None, "--actor", help="With --all-matching: this actor only."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Put dead letters back on their queue as fresh messages (same job id, retries reset)."""
    dead = service()
    found, unknown = _targets(dead, queue, list(ids or []), all_matching, {"error": error, "actor": actor})
    if all_matching:
        result = dead.requeue_matching(queue, error_contains=error, actor=actor)
    else:
        result = dead.requeue(queue, found)
    result.skipped += unknown
    from cli.admin import audited
    from admin.service import plain_filters, requeue_audit

    before = {"filter": plain_filters({"error_contains": error, "actor": actor})} if all_matching else {"ids": ids}
    audited(requeue_audit(queue, before, result))
    _report_requeue(queue, result, as_json)
    if ids and not result.requeued:
        raise typer.Exit(1)


def _report_requeue(queue: str, result: RequeueResult, as_json: bool) -> None:
    if as_json:
        _emit_json(result.model_dump(mode="json"))
        return
    console().print(f"requeued [bold]{len(result.requeued)}[/bold] dead letter(s) on {queue}")
    for job_id in result.job_ids:
        console().print(f"  job {job_id}", highlight=False)
    if result.skipped:
        console().print(
            f"[yellow]skipped {len(result.skipped)} (not in the dead-letter queue, "
            f"or already requeued or discarded):[/yellow] {' '.join(result.skipped)}",
            highlight=False,
        )


@dead_app.command("discard")
def discard(
    queue: str = typer.Argument(..., callback=_queue, help=f"The queue ({QUEUES})."),
    ids: list[str] = typer.Argument(None, help=IDS_HELP, show_default=False),
    all_matching: bool = typer.Option(False, "--all-matching", help=ALL_HELP),
    error: str | None = typer.Option(None, "--error", help="With --all-matching: error contains TEXT."),
    actor: str | None = typer.Option(None, "--actor", help="With --all-matching: this actor only."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Delete dead letters for good (their job records then expire like finished ones)."""
    if as_json and not yes:
        raise typer.BadParameter("--json needs --yes (a script cannot answer the confirmation)")
    dead = service()
    found, unknown = _targets(dead, queue, list(ids or []), all_matching, {"error": error, "actor": actor})
    count = dead.list(queue, limit=1, actor=actor, error_contains=error).total if all_matching else len(found)
    if unknown and not as_json:
        console().print(f"[yellow]not dead letters of {queue}:[/yellow] {' '.join(unknown)}", highlight=False)
    if count == 0:
        _done(0, queue, unknown, as_json)
        return
    what = "matching " if all_matching and (error or actor) else ("" if not all_matching else "ALL ")
    if not yes:
        typer.confirm(f"Discard {count} {what}dead letter(s) from {queue}? This cannot be undone", abort=True)
    if all_matching:
        removed = dead.discard_matching(queue, error_contains=error, actor=actor)
    else:
        removed = dead.discard(queue, found)
    from cli.admin import audited
    from admin.service import discard_audit, plain_filters

    before = {"filter": plain_filters({"error_contains": error, "actor": actor})} if all_matching else {"ids": ids}
    audited(discard_audit(queue, before, removed, unknown))
    _done(removed, queue, unknown, as_json)


def _done(removed: int, queue: str, unknown: list[str], as_json: bool) -> None:
    if as_json:
        _emit_json({"discarded": removed, "unknown": unknown})
    else:
        console().print(f"discarded [bold]{removed}[/bold] dead letter(s) from {queue}")


@dead_app.command("groups")
def groups(
    queue: str = typer.Argument(..., callback=_queue, help=f"The queue ({QUEUES})."),
    window: int = typer.Option(1000, "--window", min=1, max=10_000, help="How many of the newest to group."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Group the newest dead letters by error fingerprint (ids, numbers and quoted values blanked)."""
    from cli.admin import emit_json, service as admin_service

    result = admin_service().dead_groups(queue, window)
    if as_json:
        emit_json(result)
        return
    table = Table(
        "count",
        "error",
        "actors",
        "fingerprint",
        title=f"{queue}: newest {result.scanned} of {result.total} dead letters by error",
        title_justify="left",
    )
    for group in result.groups:
        table.add_row(
            str(group.count), escape(group.example or "(no error recorded)"), ", ".join(group.actors), group.fingerprint
        )
    console().print(table)


@dead_app.command("replay")
def replay(
    queue: str = typer.Argument(..., callback=_queue, help=f"The queue ({QUEUES})."),
    ident: str = typer.Argument(..., help="The dead letter's redis id or job id."),
    args: str | None = typer.Option(None, "--args", help="New positional arguments, a JSON list (default: keep)."),
    kwargs: str | None = typer.Option(
        None, "--kwargs", help='New keyword arguments, a JSON object (default: keep; "[redacted]" keeps a secret).'
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Replay a dead letter as a new job with edited arguments, linked to the dead one."""
    from admin.replay import NotDeadLettered
    from cli.admin import audited, emit_json, service as admin_service

    new_args, new_kwargs = _json_arg(args, list, "--args"), _json_arg(kwargs, dict, "--kwargs")
    try:
        result, entry = admin_service().replay(queue, ident, args=new_args, kwargs=new_kwargs)
    except NotDeadLettered as error:
        console().print(
            f"[red]{escape(str(error))}[/red] (never dead-lettered, or already requeued, replayed or discarded)"
        )
        raise typer.Exit(1) from None
    audited(entry)
    if as_json:
        emit_json(result)
        return
    console().print(
        f"replayed [bold]{result.replayed_from}[/bold] as job [bold]{result.job_id}[/bold]", highlight=False
    )


def _json_arg(raw: str | None, kind: type, name: str) -> Any:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=name) from None
    if not isinstance(value, kind):
        raise typer.BadParameter(f"must be a JSON {'list' if kind is list else 'object'}", param_hint=name)
    return value
