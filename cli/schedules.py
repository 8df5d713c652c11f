"""`backroom schedules ...`: list the schedules; change cadence, on/off, sources, brands, surfaces.

Changes go to Postgres with their audit row (naming `cli:user@host`); the running scheduler
reads them again within SCHEDULER_SETTINGS_TTL_S and the fan-outs at their next run, so no
restart or deploy is needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from cli.admin import JSON_HELP, console, emit_json, schedules as list_schedules, with_db

T = TypeVar("T")
schedules_app = typer.Typer(
    help="Schedules: list; cadence, on/off; scrape sources, brands, surfaces.", invoke_without_command=True
)
sources_app = typer.Typer(
    help="Scrape sources of the hourly cycle (each query -> scrape_source on edge).", invoke_without_command=True
)
brands_app = typer.Typer(help="Brands searched on every source that opts in.", invoke_without_command=True)
surfaces_app = typer.Typer(help="Surfaces the nightly collections are generated for.", invoke_without_command=True)
schedules_app.add_typer(sources_app, name="sources")
schedules_app.add_typer(brands_app, name="brands")
schedules_app.add_typer(surfaces_app, name="surfaces")


def _act(work: Callable[[Any, str], Awaitable[T]]) -> T:
    """Run one change on a database connection as this OS user; a refused change exits 1 with its reason."""
    from admin.service import cli_actor

    by = cli_actor()
    try:
        return with_db(lambda conn: work(conn, by))
    except ValueError as error:  # pydantic's ValidationError is a ValueError too
        console().print(f"[red]refused:[/red] {error}")
        raise typer.Exit(1) from None


@schedules_app.callback()
def overview(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Schedules (UTC): cron, on/off, next run, last run and its outcome, missed runs, the leader."""
    if ctx.invoked_subcommand is None:
        list_schedules(as_json)


@schedules_app.command("set")
def set_cadence(
    actor: str,
    cron: str | None = typer.Argument(None, help="5-field cron in UTC, or @hourly etc."),
    default: bool = typer.Option(False, "--default", help="Back to the declared cron."),
) -> None:
    """Change a schedule's cadence (takes effect without a restart)."""
    if (cron is None) == (not default):
        raise typer.BadParameter("give a cron expression or --default")
    setting = _change(actor, cron=None if default else cron)
    console().print(f"{actor}: {setting.cron or 'declared cron'} ({'on' if setting.enabled else 'off'})")


@schedules_app.command("enable")
def enable(actor: str) -> None:
    """Switch a schedule on."""
    _change(actor, enabled=True)
    console().print(f"{actor}: on")


@schedules_app.command("disable")
def disable(actor: str) -> None:
    """Switch a schedule off: it does not fire until enabled (its skipped ticks are not caught up)."""
    _change(actor, enabled=False)
    console().print(f"{actor}: off")


def _change(actor: str, **changes: Any) -> Any:
    import actors
    from admin.schedules import change_schedule

    return _act(lambda conn, by: change_schedule(conn, actors.broker, actor, by=by, **changes))


@sources_app.callback()
def sources(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """The scrape sources: queries, limit, whether brands are searched, on/off."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from db.schedules import select_schedule_config

    config = with_db(select_schedule_config)
    if as_json:
        emit_json(config.sources)
        return
    table = Table("source", "state", "queries", "brands", "limit", title="scrape sources", title_justify="left")
    for s in config.sources:
        table.add_row(
            s.source,
            "on" if s.enabled else "[red]off[/red]",
            ", ".join(s.queries) or "-",
            "searched" if s.brands else "-",
            str(s.limit),
        )
    console().print(table if config.sources else "no scrape source: the hourly cycle sends nothing")


@sources_app.command("set")
def set_source(
    source: str,
    query: list[str] | None = typer.Option(None, "--query", "-q", help="Search text (repeatable; replaces them)."),
    clear_queries: bool = typer.Option(False, "--clear-queries", help="No queries of its own."),
    limit: int | None = typer.Option(None, "--limit", min=1, max=500, help="Listings per query per cycle."),
    brands: bool | None = typer.Option(None, "--brands/--no-brands", help="Also search the brands."),
    enabled: bool | None = typer.Option(None, "--enable/--disable", help="Scrape it or not."),
) -> None:
    """Add a scrape source or change it (only the options given)."""
    from admin.schedules import change_source

    queries = [] if clear_queries else (list(query) if query else None)
    changed = _act(
        lambda conn, by: change_source(
            conn, source, by=by, queries=queries, limit=limit, brands=brands, enabled=enabled
        )
    )
    console().print(f"{len(changed)} scrape source(s): {', '.join(s.source for s in changed)}")


@sources_app.command("remove")
def remove_source(source: str) -> None:
    """Stop scraping a source and forget its queries."""
    from admin.schedules import change_source

    changed = _act(lambda conn, by: change_source(conn, source, by=by, remove=True))
    console().print(f"removed {source}; {len(changed)} scrape source(s) left")


def _list_commands(app: typer.Typer, key: str) -> None:
    """list / set / add / remove / reset for the brands or the surfaces."""

    @app.callback()
    def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
        if ctx.invoked_subcommand is not None:
            return
        from db.schedules import select_schedule_config

        values = getattr(with_db(select_schedule_config), key)
        emit_json(values) if as_json else console().print("\n".join(values) or f"no {key}")

    def change(**kwargs: Any) -> None:
        from admin.schedules import change_list

        values = _act(lambda conn, by: change_list(conn, key, by=by, **kwargs))
        console().print(f"{len(values)} {key}: {', '.join(values) or '-'}")

    def set_values(values: list[str]) -> None:
        change(set_to=values)

    def add(values: list[str]) -> None:
        change(add=values)

    def remove(values: list[str]) -> None:
        change(remove=values)

    def reset() -> None:
        change(reset=True)

    for name, command, text in (
        ("set", set_values, "Replace the"),
        ("add", add, "Add to the"),
        ("remove", remove, "Remove from the"),
        ("reset", reset, "Back to the default"),
    ):
        app.command(name, help=f"{text} {key}.")(command)
    show.__doc__ = f"The {key}."


_list_commands(brands_app, "brands")
_list_commands(surfaces_app, "surfaces")
