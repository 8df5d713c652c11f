"""Order sweeps: every minute the holds that slipped through, every 5 minutes the Printify orders gone quiet."""

from __future__ import annotations

import dramatiq
from periodiq import cron

from actors.provider_catalog import sync_catalog
from actors.provider_poll import poll_stalled_printify_orders
from actors.reconcile import reconcile_orders
from actors.release import release_due_orders


@dramatiq.actor(queue_name="orders", periodic=cron("* * * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_release_due_orders() -> str:
    """Every minute: have release_due_orders send release_order for each due or stalled order."""
    return str(release_due_orders.send().message_id)


@dramatiq.actor(queue_name="orders", periodic=cron("*/5 * * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_poll_stalled_printify_orders() -> str:
    """Every 5 minutes: poll the released Printify orders whose webhooks have not come."""
    return str(poll_stalled_printify_orders.send().message_id)


@dramatiq.actor(queue_name="orders", periodic=cron("40 3 * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_reconcile_orders() -> str:
    """Nightly: compare orders and stock with Stripe and Printify, a ticket per mismatch."""
    return str(reconcile_orders.send().message_id)


@dramatiq.actor(queue_name="orders", periodic=cron("10 2 * * *"), max_retries=3, max_backoff=60_000, time_limit=10_000)
def schedule_sync_catalog() -> str:
    """Nightly: sync the print provider's products, variants and prices (resuming a stopped run)."""
    return str(sync_catalog.send().message_id)
