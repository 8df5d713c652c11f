"""The watches' periodic actors (UTC): edge-node liveness, the dead-letter watch, refused messages' audit."""

from __future__ import annotations

import dramatiq
from periodiq import cron

from actors.refusals import audit_refused_messages
from actors.watch import check_edge_nodes, watch_dead_letters
from schedules.fanout import PERIODIC, send_once


@dramatiq.actor(queue_name="default", periodic=cron("*/5 * * * *"), **PERIODIC)
def schedule_check_edge_nodes() -> str:
    """Every 5 minutes: check_edge_nodes (alerts once when a live edge node goes silent)."""
    return send_once(check_edge_nodes)


@dramatiq.actor(queue_name="default", periodic=cron("*/5 * * * *"), **PERIODIC)
def schedule_watch_dead_letters() -> str:
    """Every 5 minutes: watch_dead_letters (alerts when a queue dead-lettered since the last check)."""
    return send_once(watch_dead_letters)


@dramatiq.actor(queue_name="default", periodic=cron("* * * * *"), **PERIODIC)
def schedule_audit_refused_messages() -> str:
    """Every minute: audit_refused_messages (refused messages into the audit log)."""
    return send_once(audit_refused_messages)
