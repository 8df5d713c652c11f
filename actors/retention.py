"""Retention: delete what is past its keeping period (job index, notifications, webhooks, checks, orphan media)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, UTC

import dramatiq

from actors.jobs import trim_job_index
from config.settings import get_settings
from db.pool import get_process_pool
from db.retention import delete_past_due, select_referenced_media_keys
from media.orphans import old_files, remove_if_old
from media.store import LocalMediaStore, open_store

MEDIA_BATCH = 1_000


@dramatiq.actor(queue_name="default", max_retries=3, min_backoff=10_000, max_backoff=300_000, time_limit=3_600_000)
async def purge_expired() -> dict:
    """Delete job index entries, finished notifications, processed webhooks, old checks and orphan media past due."""
    settings, now = get_settings(), datetime.now(UTC)
    result: dict = {"job_index": await asyncio.to_thread(trim_job_index.fn)}
    periods = {
        "notifications": settings.notification_retention_days,
        "webhook_events": settings.webhook_retention_days,
        "listing_checks": settings.listing_check_retention_days,
    }
    async with get_process_pool().acquire() as conn:
        for table, days in periods.items():
            result[table] = await delete_past_due(conn, table, now - timedelta(days=days))
    result["media"] = await purge_orphan_media(time.time() - settings.media_orphan_grace_hours * 3600)
    return result


async def purge_orphan_media(older_than: float) -> int | str:
    """Delete local media files older than `older_than` (epoch s) that no item or seed references; returns how many."""
    store = open_store(get_settings())
    if not isinstance(store, LocalMediaStore):
        return "skipped: not a local store"  # a bucket's lifecycle rules are the tool there
    candidates = await asyncio.to_thread(lambda: list(old_files(store.root, older_than=older_than)))
    removed = 0
    for start in range(0, len(candidates), MEDIA_BATCH):
        batch = candidates[start : start + MEDIA_BATCH]
        async with get_process_pool().acquire() as conn:
            used = await select_referenced_media_keys(conn, [f.key for f in batch if f.key])
        orphans = [f.path for f in batch if f.key not in used]
        removed += await asyncio.to_thread(lambda: sum(remove_if_old(p, older_than=older_than) for p in orphans))
    return removed
