"""The hold-release sweep: every minute, fan out release_order for holds that slipped through."""
from __future__ import annotations

import dramatiq
from periodiq import cron

from actors.release import release_due_orders


@dramatiq.actor(queue_name="orders", periodic=cron("* * * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_release_due_orders() -> str:
    """Every minute: have release_due_orders send release_order for each due or stalled order."""
    return str(release_due_orders.send().message_id)
