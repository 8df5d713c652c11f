"""`backroom tickets ...`: list and show from Postgres; changes go to the ticket actors."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import asyncpg
from typer.testing import CliRunner

from cli.main import app
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status
from tests.admin_support import running_worker

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def db(database_url: str, query: str, *args: Any) -> Any:
    async def fetch() -> Any:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_list_show_assign_comment_close(database_url: str, redis_client: Any) -> None:
    ticket_id = db(
        database_url,
        "INSERT INTO tickets (kind, key, subject, contact) VALUES ('dispute', 'cli:t1',"
        " 'Order #1: payment disputed', 'ada@example.com') RETURNING id",
    )
    assert "payment disputed" in ok("tickets", "--status", "open")
    with running_worker({"orders"}):
        for args in (
            ["assign", str(ticket_id), "ana"],
            ["comment", str(ticket_id), "called the bank"],
            ["close", str(ticket_id), "--note", "won"],
        ):
            output = ok("tickets", *args)
            wait_for_status(output.split("(job ")[1].rstrip(")\n"), JobStatus.SUCCEEDED)
    shown = json.loads(ok("tickets", "show", str(ticket_id), "--json"))
    assert shown["status"] == "closed" and shown["assignee"] == "ana"
    assert [e["action"] for e in shown["thread"]] == ["assigned", "comment", "closed"]
    assert shown["thread"][0]["author"].startswith("cli:")
    assert runner.invoke(app, ["tickets", "close", "99999999"], env=WIDE).exit_code == 1
    assert runner.invoke(app, ["tickets", "comment", str(ticket_id), " "], env=WIDE).exit_code == 1


def test_unmatched_lists_events_kept_for_unknown_orders(database_url: str) -> None:
    ref = f"pi_{secrets.token_hex(8)}"
    row_id = db(
        database_url,
        "INSERT INTO webhook_events (provider, event_id, event_type, payload, order_ref,"
        " unmatched_at) VALUES ('stripe', $1, 'charge.refunded', '{}', $2, now()) RETURNING id",
        f"evt_{ref}",
        ref,
    )
    listed = json.loads(ok("tickets", "unmatched", "--before", str(row_id + 1), "--limit", "1", "--json"))
    assert [(e["source"], e["event_id"], e["event_type"], e["order_ref"], e["refers_to"]) for e in listed] == [
        ("stripe", f"evt_{ref}", "charge.refunded", ref, "payment_intent")
    ]
    table = ok("tickets", "unmatched", "--source", "stripe", "--before", str(row_id + 1), "-n", "1")
    assert f"evt_{ref}" in table and "payment_intent" in table and f"--before {row_id}" in table
    assert f"evt_{ref}" not in ok("tickets", "unmatched", "--source", "printify", "--before", str(row_id + 1))
    assert runner.invoke(app, ["tickets", "unmatched", "--source", "payload"], env=WIDE).exit_code == 2
