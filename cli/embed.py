"""`backroom embed sync`: enqueue embedding batches and follow them with a progress bar."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

embed_app = typer.Typer(help="Image embeddings (CLIP on ONNX Runtime, the ml queue).", no_args_is_help=True)


@embed_app.callback()
def embed_group() -> None:
    """Image embeddings (CLIP on ONNX Runtime, the ml queue)."""


console = Console()
POLL_S = 0.5
WINDOW = 200  # job records read per poll: batches finish roughly in order


@dataclass
class Tally:
    """What the followed jobs reported so far."""

    pending: dict[str, int]
    done: int = 0
    totals: dict[str, int] = field(default_factory=lambda: {"embedded": 0, "skipped": 0, "failed": 0, "dead": 0})

    def absorb(self, job_id: str, record: Any) -> None:
        """Count one finished job (its result, or all its rows as dead)."""
        size = self.pending.pop(job_id)
        self.done += size
        if record.status.value != "succeeded":
            self.totals["dead"] += size
            return
        for key in ("embedded", "skipped", "failed"):
            self.totals[key] += int((record.result or {}).get(key, 0))


async def _plan(dsn: str, model: str, force: bool, size: int) -> list[list[int]]:
    import asyncpg

    from actors.embed import plan_item_batches

    conn = await asyncpg.connect(dsn)
    try:
        return await plan_item_batches(conn, model=model, force=force, size=size)
    finally:
        await conn.close()


def follow(tally: Tally, total: int) -> None:
    """Poll the job records until every followed job is over, advancing a progress bar."""
    import actors

    columns = (TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("embed", total=total)
        while tally.pending:
            for job_id in list(tally.pending)[:WINDOW]:
                record = actors.broker.jobs.get(job_id)
                if record is not None and record.status.final:
                    tally.absorb(job_id, record)
            progress.update(task, completed=tally.done)
            if tally.pending:
                time.sleep(POLL_S)


@embed_app.command("sync")
def sync(
    force: bool = typer.Option(False, "--force", help="Re-embed every item and seed, not only missing ones."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow the jobs with a progress bar."),
) -> None:
    """Embed items missing a vector of the current model (every item with --force), and the style seeds."""
    from actors.embed import current_model_id, embed_seeds, send_batches
    from config.settings import get_settings
    from ml.manifest import ModelDirError

    settings = get_settings()
    try:
        model = current_model_id()
    except ModelDirError as error:
        console.print(f"[red]bad MODEL_DIR:[/red] {error}")
        raise typer.Exit(2) from None
    batches = asyncio.run(_plan(settings.database_url, model, force, settings.embed_batch_size))
    jobs = dict(zip(send_batches(batches, force=force), (len(b) for b in batches)))
    seeds_job = embed_seeds.send(force=force).message_id
    count = sum(jobs.values())
    console.print(f"{count} item(s) in {len(jobs)} batch(es) and the style seeds enqueued for [bold]{model}[/bold]")
    if not wait:
        return
    tally = Tally(pending={**jobs, seeds_job: 0})
    try:
        follow(tally, count)
    except KeyboardInterrupt:
        console.print("stopped following; the jobs go on (`backroom embed sync` again is harmless)")
        raise typer.Exit(130) from None
    console.print(", ".join(f"{k} {v}" for k, v in tally.totals.items()))
    raise typer.Exit(1 if tally.totals["dead"] else 0)
