"""`backroom tickets ...`: list and read ops tickets; assign, comment, close, approve a refund; the
provider events kept for orders Backroom does not know (`unmatched`).

Reads go to Postgres; every change is a message to the ticket actors (a worker writes it,
the author naming `cli:user@host`), like the admin API's.
"""

from __future__ import annotations

from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from cli.admin import JSON_HELP, console, emit_json, when, with_db

tickets_app = typer.Typer(
    help="Ops tickets: list, show; assign, comment, close; approve a refund request;"
    " events for unknown orders (unmatched).",
    invoke_without_command=True,
)


@tickets_app.callback()
def listing(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="open, waiting or closed."),
    kind: str | None = typer.Option(None, "--kind", help="e.g. dispute, refund_request."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=200),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Tickets, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from db.tickets import select_tickets

    rows = with_db(lambda conn: select_tickets(conn, status=status, kind=kind, limit=limit))
    if as_json:
        emit_json([asdict(t) for t in rows])
        return
    table = Table(
        "id",
        "opened (UTC)",
        "kind",
        "status",
        "assignee",
        "order",
        "contact",
        "subject",
        title="tickets",
        title_justify="left",
    )
    for t in rows:
        table.add_row(
            str(t.id),
            when(t.created_at),
            t.kind,
            t.status,
            t.assignee or "-",
            str(t.order_id or "-"),
            t.contact or "-",
            escape(t.subject),
        )
    console().print(table)


@tickets_app.command("show")
def show(ticket_id: int, as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """One ticket and its thread."""
    from db.tickets import select_ticket

    ticket = with_db(lambda conn: select_ticket(conn, ticket_id))
    if ticket is None:
        console().print(f"[red]no ticket {ticket_id}[/red]")
        raise typer.Exit(1)
    if as_json:
        emit_json(asdict(ticket))
        return
    console().print(
        f"#{ticket.id} [bold]{escape(ticket.subject)}[/bold] ({ticket.kind}, {ticket.status},"
        f" assignee {ticket.assignee or '-'}, order {ticket.order_id or '-'}, {ticket.contact or '-'})"
    )
    for entry in ticket.thread:
        console().print(f"  {when(entry.created_at)} {entry.author} [bold]{entry.action}[/bold] {escape(entry.body)}")


def _send(ticket_id: int, action: str, body: str = "", assignee: str | None = None) -> None:
    from actors.tickets import act_on_ticket
    from db.tickets import select_ticket
    from admin.service import cli_actor

    if with_db(lambda conn: select_ticket(conn, ticket_id)) is None:
        console().print(f"[red]no ticket {ticket_id}[/red]")
        raise typer.Exit(1)
    job = act_on_ticket.send(ticket_id, action, cli_actor(), body, assignee)
    console().print(f"ticket {ticket_id}: {action} enqueued (job {job.message_id})")


@tickets_app.command("assign")
def assign(ticket_id: int, assignee: str) -> None:
    """Assign a ticket."""
    _send(ticket_id, "assigned", assignee=assignee[:100])


@tickets_app.command("comment")
def comment(ticket_id: int, body: str) -> None:
    """Add a comment to a ticket's thread."""
    if not body.strip() or len(body) > 5000:
        console().print("[red]a comment needs 1 to 5000 characters[/red]")
        raise typer.Exit(1)
    _send(ticket_id, "comment", body=body)


@tickets_app.command("close")
def close(ticket_id: int, note: str = typer.Option("", "--note", help="A closing note.")) -> None:
    """Close a ticket."""
    _send(ticket_id, "closed", body=note[:5000])


@tickets_app.command("approve-refund")
def approve(ticket_id: int) -> None:
    """Approve a waiting refund request: the order is refunded and the ticket closed."""
    from actors.refund_requests import approve_refund
    from admin.service import cli_actor

    job = approve_refund.send(ticket_id, cli_actor())
    console().print(f"ticket {ticket_id}: refund approval enqueued (job {job.message_id})")


@tickets_app.command("unmatched")
def unmatched(
    source: str | None = typer.Option(None, "--source", help="stripe or printify."),
    before: int | None = typer.Option(None, "--before", min=1, help="Rows below this id (paging)."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=200),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Stripe and Printify events kept because they name no order here, newest first."""
    from db.webhooks import select_unmatched_event_page
    from domain.webhooks import SOURCES

    if source is not None and source not in SOURCES:
        console().print(f"[red]--source is one of {', '.join(SOURCES)}[/red]")
        raise typer.Exit(2)
    rows = with_db(lambda conn: select_unmatched_event_page(conn, source=source, before=before, limit=limit))
    if as_json:
        emit_json([asdict(r) for r in rows])
        return
    table = Table(
        "id",
        "received (UTC)",
        "source",
        "event",
        "type",
        "refers to",
        title="events for unknown orders",
        title_justify="left",
    )
    for r in rows:
        table.add_row(
            str(r.id),
            when(r.received_at),
            r.source,
            escape(r.event_id),
            escape(r.event_type),
            f"{r.refers_to} {escape(r.order_ref)}",
        )
    console().print(table)
    if len(rows) == limit:
        console().print(f"more: --before {rows[-1].id}")
