"""`backroom catalog import FILE`: the first load of a CMS catalogue (JSON Lines or CSV), all or nothing.

Every line is read and checked first; one bad line stops the import with a report of every
bad line and nothing written. Then all products are applied in one transaction (an older
`ts` than the stored product is skipped), their rehosting (which embeds) written to the job
outbox in it: a worker's relay sends it after the commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from cli.admin import console, with_db

catalog_app = typer.Typer(help="The catalogue mirrored from a CMS (Payload).", no_args_is_help=True)
MAX_FILE = 200 * 1024 * 1024


@catalog_app.command("import")
def import_file(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    fmt: str = typer.Option("auto", "--format", help="jsonl, csv or auto (by the file's suffix)."),
) -> None:
    """Import products (JSON Lines of product.changed bodies, or CSV one row per variant); all or nothing."""
    from domain.catalog_import import read_csv, read_jsonl

    if path.stat().st_size > MAX_FILE:
        raise typer.BadParameter(f"larger than {MAX_FILE // 1024 // 1024} MB: split it")
    kind = fmt if fmt != "auto" else ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    text = path.read_text(encoding="utf-8")
    products, errors = read_csv(text) if kind == "csv" else read_jsonl(text.splitlines())
    if errors:
        for error in errors[:100]:
            console().print(f"line {error.line}: {error.error}")
        console().print(f"[red]{len(errors)} bad line(s): nothing imported[/red]")
        raise typer.Exit(1)
    applied, rehost = with_db(lambda conn: _apply(conn, products))
    console().print(
        f"{len(applied)} of {len(products)} product(s) applied "
        f"({len(products) - len(applied)} older than stored), {rehost} item(s) queued for rehosting"
    )


async def _apply(conn: Any, products: list[Any]) -> tuple[list[Any], int]:
    """Apply every product in one transaction; their rehosting goes to the job outbox in it (sent after commit)."""
    from db.catalog import apply_product
    from db.outbox import insert_job

    done, rehost = [], 0
    with Progress(console=console(), transient=True) as progress:
        task = progress.add_task("importing", total=len(products))
        async with conn.transaction():
            for product in products:
                if (applied := await apply_product(conn, product)) is not None:
                    done.append(applied)
                    for item_id in applied.item_ids if applied.live and applied.images_changed else []:
                        await insert_job(conn, "rehost_images", [item_id], unique_key=f"rehost_images:{item_id}")
                        rehost += 1
                progress.advance(task)
    return done, rehost
