"""`backroom`: database migrations, API tokens and the embedded dev stack."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli import admin
from cli import edge as edge_cli
from cli.dead import dead_app
from cli.jobs import jobs_app
from cli.schedules import schedules_app
from cli.tickets import tickets_app
from cli.endpoints import endpoints_app
from cli.catalog import catalog_app
from cli.embed import embed_app
from cli.models import models_app
from config.settings import get_settings

app = typer.Typer(help="Backroom: the background-job backbone.", no_args_is_help=True)
db_app = typer.Typer(help="The PostgreSQL schema.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens (stored hashed; shown once).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tokens_app, name="tokens")
app.add_typer(dead_app, name="dead")
app.add_typer(admin.queues_app, name="queues")
app.add_typer(jobs_app, name="jobs")
app.add_typer(admin.edge_app, name="edge")
admin.edge_app.command("credentials")(edge_cli.credentials)
admin.edge_app.command("revoke")(edge_cli.revoke)
app.command("workers")(admin.workers)
app.add_typer(schedules_app, name="schedules")
app.add_typer(tickets_app, name="tickets")
app.add_typer(endpoints_app, name="endpoints")
app.add_typer(catalog_app, name="catalog")
app.command("audit")(admin.audit_log)
app.add_typer(models_app, name="models")
app.add_typer(embed_app, name="embed")
console = Console()


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (under an advisory lock; edited applied files are refused)."""
    from db.migrate import MigrationError, migrate

    try:
        applied = asyncio.run(migrate(get_settings().database_url))
    except MigrationError as error:
        console.print(f"[red]migration refused:[/red] {error}")
        raise typer.Exit(1) from None
    console.print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@tokens_app.command("create")
def tokens_create(
    scope: list[str] = typer.Option(..., "--scope", help="jobs, admin or admin:read (repeatable)"),
    name: str = typer.Option("api", "--name", help="Who or what holds the token."),
    rate_limit: str | None = typer.Option(
        None,
        "--rate-limit",
        help="Requests it may make, e.g. 120/min, 5/s, 600/h; 0 = unlimited (default: TOKEN_RATE_LIMIT_PER_MIN).",
    ),
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    token = asyncio.run(
        create_token(get_settings().database_url, name=name, scopes=scope, rate_limit_per_min=_rate(rate_limit))
    )
    console.print(token, soft_wrap=True, highlight=False)


def _rate(text: str | None) -> int | None:
    from domain.tokens import parse_rate

    try:
        return None if text is None else parse_rate(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--rate-limit") from None


async def create_token(dsn: str, *, name: str, scopes: list[str], rate_limit_per_min: int | None = None) -> str:
    """Store a new token's hash with `scopes` (and its own rate limit); return the token itself."""
    import asyncpg

    from db.tokens import insert_token
    from domain.tokens import display_prefix, hash_token, make_token, validate_scopes

    try:
        checked = validate_scopes(scopes)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--scope") from None
    token = make_token(secrets.token_hex(32))
    conn = await asyncpg.connect(dsn)
    try:
        await insert_token(
            conn,
            name=name,
            token_hash=hash_token(token),
            prefix=display_prefix(token),
            scopes=checked,
            rate_limit_per_min=rate_limit_per_min,
        )
    finally:
        await conn.close()
    return token


@tokens_app.command("list")
def tokens_list() -> None:
    """List tokens (prefix, name, scopes, last use)."""
    import asyncpg

    from db.tokens import select_tokens

    async def fetch() -> list:
        conn = await asyncpg.connect(get_settings().database_url)
        try:
            return await select_tokens(conn)
        finally:
            await conn.close()

    table = Table("id", "prefix", "name", "scopes", "rate limit", "created", "last used", "revoked")
    for token in asyncio.run(fetch()):
        limit = (
            "default"
            if token.rate_limit_per_min is None
            else f"{token.rate_limit_per_min}/min"
            if token.rate_limit_per_min
            else "unlimited"
        )
        table.add_row(
            str(token.id),
            token.prefix,
            token.name,
            " ".join(token.scopes),
            limit,
            str(token.created_at)[:19],
            str(token.last_used_at or "")[:19],
            str(token.revoked_at or "")[:19],
        )
    console.print(table)


@tokens_app.command("limit")
def tokens_limit(
    token_id: int,
    rate: str = typer.Argument(..., help="e.g. 120/min, 5/s; 0 = unlimited; 'default' = TOKEN_RATE_LIMIT_PER_MIN"),
) -> None:
    """Set a token's rate limit (every web process applies it within 30 s)."""
    import asyncpg

    from db.tokens import update_token_rate_limit

    per_min = None if rate == "default" else _rate(rate)

    async def update() -> bool:
        conn = await asyncpg.connect(get_settings().database_url)
        try:
            return await update_token_rate_limit(conn, token_id, per_min)
        finally:
            await conn.close()

    if not asyncio.run(update()):
        console.print(f"[red]no token with id {token_id}[/red]")
        raise typer.Exit(1)
    console.print(f"token {token_id}: {rate}")


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by id (the API stops accepting it within 30 s)."""
    import asyncpg

    from db.tokens import update_token_revoked

    async def revoke() -> bool:
        conn = await asyncpg.connect(get_settings().database_url)
        try:
            return await update_token_revoked(conn, token_id)
        finally:
            await conn.close()

    if not asyncio.run(revoke()):
        console.print(f"[red]no live token with id {token_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked token {token_id}")


@app.command("worker")
def worker(
    processes: int = typer.Option(2, "--processes", "-p", envvar="WORKER_PROCESSES", min=1),
    threads: int = typer.Option(8, "--threads", "-t", envvar="WORKER_THREADS", min=1),
    queues: list[str] = typer.Option(None, "--queue", "-Q", help="Queues to consume (default: the server queues)."),
    edge: bool = typer.Option(False, "--edge", help="Run the edge worker (edge.worker, queue edge) instead."),
    module: list[str] = typer.Option(None, "--module", "-m", help="Extra modules declaring actors to import."),
    gateway: bool = typer.Option(
        True,
        "--gateway/--no-gateway",
        help="Also run the edge gateway (checks and forwards edge results; server only).",
    ),
) -> None:
    """Run a supervised pool of worker processes (and the edge gateway); a process that dies is replaced."""
    from cli.worker import SERVER_MODULES, dramatiq_command, expose_metrics, supervise
    from config.settings import EDGE_QUEUE, SERVER_QUEUES, get_edge_settings

    settings = get_edge_settings() if edge else get_settings()
    expose_metrics(settings)
    modules = (["edge.worker"] if edge else list(SERVER_MODULES)) + list(module or [])
    chosen = list(queues or ([EDGE_QUEUE] if edge else SERVER_QUEUES))
    if edge:  # a Pi's memory: a stdlib-only supervisor over master-less worker processes (cli.worker_process)
        from cli import worker_process
        from cli.worker import lean_supervise

        lean_supervise(
            worker_process.command(modules[0], modules[1:], chosen, threads, settings.worker_shutdown_timeout_s),
            processes,
        )
    command = dramatiq_command(modules, chosen, threads, settings.worker_shutdown_timeout_s)
    extra: tuple[list[str], ...] = ()
    if gateway:  # edge results reach server actors only through it (broker.gateway)
        from cli import worker_process
        from domain.contracts import RESULTS_QUEUE

        extra = (
            worker_process.command("broker.gateway_worker", [], [RESULTS_QUEUE], 2, settings.worker_shutdown_timeout_s),
        )
    raise typer.Exit(supervise(command, processes, extra))


@app.command("doctor")
def doctor() -> None:
    """Check a live deployment (Redis, PostgreSQL + pgvector, migrations, host) and print fixes."""
    from cli.doctor import run_doctor

    raise typer.Exit(run_doctor(get_settings()))


@app.command("scheduler")
def scheduler() -> None:
    """Fire the periodic actors' ticks in UTC; run several, one leads and each tick fires once."""
    from cli.scheduler import run_scheduler

    raise typer.Exit(run_scheduler())


@app.command("dev")
def dev(
    data_dir: Path = typer.Option(Path("var"), help="Where the embedded Postgres and Redis keep their data."),
    processes: str = typer.Option("web,worker,scheduler,edge", help="Procfile processes to start."),
) -> None:
    """Run the whole system on embedded defaults (pgserver + redis-server) under honcho."""
    from cli.devstack import run_dev_stack

    raise typer.Exit(run_dev_stack(data_dir.resolve(), processes.split(",")))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
