"""The audit writer of refused messages: the broker's refusal list (broker.guard) into the audit log."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.broker import broker
from broker.guard import drop_oldest_refusals, oldest_refusals
from db.audit import insert_audit
from db.pool import get_process_pool
from domain.admin import AuditEntry

BATCH = 200


def refusal_entry(refusal: dict[str, Any]) -> AuditEntry:
    """The audit entry of one refused message (its fields are bounded by the guard that wrote them)."""
    target = f"queue:{str(refusal.get('queue', '?'))[:80]}"
    return AuditEntry(
        action="message.refused", target=target, after={k: str(v)[:500] for k, v in list(refusal.items())[:12]}
    )


async def write_refusals(client: Any, key: str, pool: Any) -> int:
    """Move every refusal waiting on `key` into the audit log; how many were written."""
    recorded = 0
    while True:
        refusals, count = oldest_refusals(client, key, BATCH)
        if not count:
            return recorded
        async with pool.acquire() as conn, conn.transaction():
            for refusal in refusals:
                await insert_audit(conn, actor="broker", entry=refusal_entry(refusal))
        drop_oldest_refusals(client, key, count)  # after the commit: a crash re-records, never loses
        recorded += len(refusals)


@dramatiq.actor(queue_name="default", max_retries=3, max_backoff=60_000, time_limit=60_000)
async def audit_refused_messages() -> dict[str, Any]:
    """Write every refused message (wrong queue, undeclared actor, bad edge delivery) to the audit log."""
    return {"recorded": await write_refusals(broker.client, broker.jobs.keys.refused, get_process_pool())}
