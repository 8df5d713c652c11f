"""`backroom catalog import FILE`: JSON Lines and CSV, a per-line error report, nothing half-imported."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from cli.main import app
from tests.actors.test_catalog import product_event
from tests.cli.test_schedules import WIDE, db, runner


def count(database_url: str, prefix: str) -> int:
    return db(
        database_url,
        "SELECT count(*) AS n FROM items WHERE source = 'payload' AND attributes ->> 'payload_product_id' LIKE $1",
        f"{prefix}%",
    )[0]["n"]


def test_a_bad_line_imports_nothing_and_is_named(tmp_path: Path, database_url: str, redis_client) -> None:  # type: ignore[no-untyped-def]
    prefix = f"imp-{secrets.token_hex(3)}"
    good = [json.dumps(product_event(f"{prefix}-{n}", minutes=1, title=f"Piece {n}")) for n in range(3)]
    bad = json.loads(good[1])
    bad["variants"][0]["price"] = -5
    path = tmp_path / "catalog.jsonl"
    path.write_text("\n".join([good[0], json.dumps(bad), good[2], "{not json"]) + "\n")
    result = runner.invoke(app, ["catalog", "import", str(path)], env=WIDE)
    assert result.exit_code == 1
    assert "line 2: variants.0.price" in result.output and "line 4:" in result.output
    assert "2 bad line(s): nothing imported" in result.output
    assert count(database_url, prefix) == 0
    path.write_text("\n".join(good) + "\n")
    result = runner.invoke(app, ["catalog", "import", str(path)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "3 of 3 product(s) applied" in result.output and "3 item(s) queued for rehosting" in result.output
    assert count(database_url, prefix) == 3
    again = runner.invoke(app, ["catalog", "import", str(path)], env=WIDE)
    assert "0 of 3 product(s) applied (3 older than stored)" in again.output


def test_csv_rows_are_variants_grouped_by_product(tmp_path: Path, database_url: str, redis_client) -> None:  # type: ignore[no-untyped-def]
    prefix = f"csv-{secrets.token_hex(3)}"
    path = tmp_path / "catalog.csv"
    path.write_text(
        "payload_product_id,title,brand,status,price_cents,currency,stock,variant_id,sku,image_url,description,ts\n"
        f"{prefix}-1,Tee,Acme,published,2500,GBP,4,{prefix}-v1,T-S,,Soft,2026-12-01T10:00:00Z\n"
        f"{prefix}-1,Tee,Acme,published,2700,GBP,2,{prefix}-v2,T-M,,Soft,2026-12-01T10:00:00Z\n"
        f"{prefix}-2,Poster,Acme,published,3000,GBP,,,,,,2026-12-01T10:00:00Z\n"
    )
    result = runner.invoke(app, ["catalog", "import", str(path)], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = db(
        database_url,
        "SELECT kind, stock, price_cents FROM items WHERE source = 'payload'"
        " AND attributes ->> 'payload_product_id' LIKE $1 ORDER BY price_cents",
        f"{prefix}%",
    )
    assert [(r["kind"], r["stock"], r["price_cents"]) for r in rows] == [
        ("stable", 4, 2500),
        ("stable", 2, 2700),
        ("print_on_demand", None, 3000),
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("title,ts\nTee,2026-12-01T10:00:00Z\n")
    refused = runner.invoke(app, ["catalog", "import", str(bad)], env=WIDE)
    assert refused.exit_code == 1 and "missing column(s) payload_product_id" in refused.output
