"""`backroom endpoints ...`: storefront endpoints (add, enable, disable, remove), their delivery log, replays.

Changes go to Postgres with their audit row (naming `cli:user@host`); deliveries that must
go out again are sent by `sweep_events`, enqueued here after the change commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, UTC
from typing import Any, TypeVar

import typer
from rich.table import Table

from cli.admin import JSON_HELP, console, emit_json, when, with_db

T = TypeVar("T")
endpoints_app = typer.Typer(
    help="Storefront endpoints: signed event deliveries, their log, replays.", invoke_without_command=True
)


def _act(work: Callable[[Any, str], Awaitable[T]]) -> T:
    """Run one change as this OS user; a refused change exits 1 with its reason."""
    from admin.service import cli_actor

    by = cli_actor()
    try:
        return with_db(lambda conn: work(conn, by))
    except ValueError as error:  # EndpointRefused and pydantic's ValidationError
        console().print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from None


def _sweep() -> None:
    from actors.events import sweep_events

    sweep_events.send(0)


@endpoints_app.callback()
def overview(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Every endpoint: URL, event types, on/off (and why off), failing since."""
    if ctx.invoked_subcommand is not None:
        return
    from db.events import select_endpoints
    from admin.endpoints import endpoint_view

    views = [endpoint_view(e) for e in with_db(select_endpoints)]
    if as_json:
        emit_json(views)
        return
    table = Table("id", "name", "url", "types", "state", "failing since")
    for v in views:
        state = "on" if v["enabled"] else f"off ({v['disabled_reason']})"
        types = ", ".join(v["event_types"]) or "all"  # type: ignore[arg-type]  # a view lists its type names
        table.add_row(str(v["id"]), str(v["name"]), str(v["url"]), types, state, when(v["failing_since"]))
    console().print(table)


@endpoints_app.command("add")
def add(
    name: str,
    url: str,
    event_type: list[str] | None = typer.Option(None, "--type", help="An event type (repeat); none = all."),
    secret: str | None = typer.Option(None, help="A whsec_ secret; unset = one is made."),
) -> None:
    """Add an endpoint; prints its signing secret (shown this once)."""
    from admin.endpoints import NewEndpoint, add_endpoint

    def work(conn: Any, by: str) -> Awaitable[Any]:
        return add_endpoint(conn, NewEndpoint(name=name, url=url, event_types=event_type or [], secret=secret), by=by)

    endpoint = _act(work)
    console().print(f"endpoint {endpoint.id} added; its secret (shown once): {endpoint.secret}")


def _switch(endpoint_id: int, enabled: bool) -> None:
    from admin.endpoints import set_enabled

    changed = _act(lambda conn, by: set_enabled(conn, endpoint_id, enabled, by=by))
    if enabled and changed:
        _sweep()
    console().print(f"endpoint {endpoint_id}: {'on' if enabled else 'off'}{'' if changed else ' (already)'}")


@endpoints_app.command("enable")
def enable(endpoint_id: int) -> None:
    """Switch an endpoint back on (what waited is sent; replay what it missed while off)."""
    _switch(endpoint_id, True)


@endpoints_app.command("disable")
def disable(endpoint_id: int) -> None:
    """Switch an endpoint off."""
    _switch(endpoint_id, False)


@endpoints_app.command("remove")
def remove(endpoint_id: int) -> None:
    """Remove an endpoint with its deliveries and log."""
    from admin.endpoints import remove_endpoint

    _act(lambda conn, by: remove_endpoint(conn, endpoint_id, by=by))
    console().print(f"endpoint {endpoint_id} removed")


@endpoints_app.command("log")
def log(
    endpoint_id: int,
    limit: int = typer.Option(20, min=1, max=500),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The endpoint's delivery attempts, newest first."""
    from db.events import select_attempts

    attempts = with_db(lambda conn: select_attempts(conn, endpoint_id, limit=limit))
    if as_json:
        emit_json([vars(a) for a in attempts])
        return
    table = Table("at", "event", "type", "status", "ms", "delivery", "error / answer")
    for a in attempts:
        table.add_row(
            when(a.at),
            str(a.event_id),
            a.event_type,
            str(a.status_code or "-"),
            str(a.latency_ms),
            f"{a.delivery_status} ({a.attempts})",
            (a.error or a.excerpt or "")[:60],
        )
    console().print(table)


@endpoints_app.command("replay")
def replay(
    endpoint_id: int,
    event: int | None = typer.Option(None, help="One event id."),
    since: datetime | None = typer.Option(None, help="Every event since (UTC), e.g. 2026-12-01T00:00:00."),
) -> None:
    """Deliver one event, or every event since a time, to the endpoint again."""

    from admin.endpoints import replay as replay_events

    start = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    count = _act(lambda conn, by: replay_events(conn, endpoint_id, by=by, event_id=event, since=start))
    _sweep()
    console().print(f"endpoint {endpoint_id}: {count} deliveries queued again")
