"""The storefront events sweep: every minute, relay what no kick relayed and re-send deliveries left behind."""

from __future__ import annotations

import dramatiq
from periodiq import cron

from actors.events import sweep_events
from schedules.fanout import PERIODIC, send_once


@dramatiq.actor(queue_name="default", periodic=cron("* * * * *"), **PERIODIC)
def schedule_sweep_events() -> str:
    """Every minute: sweep_events (a worker killed between a commit and its enqueue loses nothing)."""
    return send_once(sweep_events)
