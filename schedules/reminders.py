"""The reminder sweep: every minute, a delayed send_reminder for each send due within the next two minutes."""

from __future__ import annotations

import dramatiq
from periodiq import cron

from actors.reminders import send_due_reminders
from schedules.fanout import PERIODIC, send_once


@dramatiq.actor(queue_name="default", periodic=cron("* * * * *"), **PERIODIC)
def schedule_send_due_reminders() -> str:
    """Every minute: send_due_reminders (far-future sends coming due, and any a dead worker dropped)."""
    return send_once(send_due_reminders)
