"""purge_expired with a real worker: it removes exactly what is past its retention, and nothing else."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

import actors
from actors.retention import purge_expired
from config.settings import get_settings
from domain.jobs import JobStatus
from media.store import LocalMediaStore
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect

DAY = 86_400


@pytest.fixture()
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the database the worker writes."""
    conn = await connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture()
def media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalMediaStore:
    """An empty local media store the worker (same process) purges, with the default retention settings."""
    settings = get_settings()
    monkeypatch.setattr(settings, "media_dir", tmp_path / "media")
    for name, value in {
        "media_orphan_grace_hours": 24.0,
        "notification_retention_days": 90.0,
        "webhook_retention_days": 30.0,
        "listing_check_retention_days": 90.0,
        "job_retention_days": 7.0,
    }.items():
        monkeypatch.setattr(settings, name, value)
    return LocalMediaStore(settings.media_dir)


def aged(store: LocalMediaStore, data: bytes, age_s: float) -> str:
    """Store `data` and make its file `age_s` old; returns the key."""
    key = store.put(data, extension="jpg")
    when = time.time() - age_s
    os.utime(store.path(key), (when, when))
    return key


async def notification(conn: asyncpg.Connection, status: str, age_days: float) -> str:
    key = f"retention:{secrets.token_hex(6)}"
    await conn.execute(
        "INSERT INTO notifications (idempotency_key, channel, recipient, template, status, created_at)"
        " VALUES ($1, 'email', 'a@example.com', 'ops_message', $2, now() - make_interval(days => $3))",
        key,
        status,
        age_days,
    )
    return key


async def webhook(conn: asyncpg.Connection, processed: bool, age_days: float) -> str:
    event_id = f"evt_{secrets.token_hex(6)}"
    await conn.execute(
        "INSERT INTO webhook_events (provider, event_id, event_type, payload, received_at, processed_at)"
        " VALUES ('stripe', $1, 'checkout.session.completed', $2, now() - make_interval(days => $3),"
        " CASE WHEN $4 THEN now() END)",
        event_id,
        json.dumps({}),
        age_days,
        processed,
    )
    return event_id


async def listing_check(conn: asyncpg.Connection, item_id: int, applied: bool, age_days: float) -> str:
    check_id = f"test:{secrets.token_hex(6)}"
    await conn.execute(
        "INSERT INTO listing_checks (check_id, item_id, outcome, via, applied, checked_at)"
        " VALUES ($1, $2, $3, 'server', $4, now() - make_interval(days => $5))",
        check_id,
        item_id,
        "sold" if applied else "unknown",
        applied,
        age_days,
    )
    return check_id


async def existing(conn: asyncpg.Connection, table: str, column: str, values: list[str]) -> set[str]:
    rows = await conn.fetch(f"SELECT {column} FROM {table} WHERE {column} = ANY($1)", values)
    return {r[column] for r in rows}


async def test_purge_removes_exactly_what_is_past_due(media, worker, conn, redis_client) -> None:
    # notifications: finished ones older than 90 days go; pending/sending ones guard their key and stay
    gone_n = [await notification(conn, s, 91) for s in ("sent", "failed", "skipped", "unknown")]
    kept_n = [
        await notification(conn, "sent", 89),
        await notification(conn, "pending", 200),
        await notification(conn, "sending", 200),
    ]
    # webhook events: processed ones older than 30 days go; an unprocessed one is work not done
    gone_w = [await webhook(conn, True, 31)]
    kept_w = [await webhook(conn, True, 29), await webhook(conn, False, 100)]
    # listing checks: older than 90 days go, except one that changed its item (the proof)
    item_id = await conn.fetchval(
        "INSERT INTO items (source, source_listing_id, title, kind, status) VALUES"
        " ('retention', $1, 'Piece', 'one_of_one', 'sold') RETURNING id",
        secrets.token_hex(6),
    )
    gone_c = [await listing_check(conn, item_id, False, 91)]
    kept_c = [await listing_check(conn, item_id, True, 400), await listing_check(conn, item_id, False, 89)]
    # the job index: entries older than JOB_RETENTION_DAYS go (the records themselves expire by TTL)
    index, now_ms = actors.broker.jobs.keys.job_index, int(time.time() * 1000)
    redis_client.zadd(index, {"old-job": now_ms - 8 * DAY * 1000, "new-job": now_ms - 6 * DAY * 1000})
    edge_index = actors.broker.jobs.keys.edge.job_index  # edge jobs' entries, where their records live
    redis_client.zadd(edge_index, {"old-edge-job": now_ms - 8 * DAY * 1000, "new-edge-job": now_ms - 6 * DAY * 1000})
    # media: files older than the grace period that nothing references go
    referenced = aged(media, b"item image", 2 * DAY)
    seed_image = aged(media, b"seed image", 2 * DAY)
    orphan = aged(media, b"orphan", 2 * DAY)
    fresh_orphan = aged(media, b"just rehosted", 3_600)
    reused = aged(media, b"reused", 2 * DAY)
    media.put(b"reused", extension="jpg")  # a rehost of the same bytes refreshes the file: not an orphan now
    temp = media.root / "ab" / ".tmp-crashed"
    temp.parent.mkdir(parents=True, exist_ok=True)
    temp.write_bytes(b"half")
    os.utime(temp, (time.time() - 2 * DAY,) * 2)
    await conn.execute("UPDATE items SET media_keys = $2 WHERE id = $1", item_id, [referenced])
    await conn.execute(
        "INSERT INTO style_seeds (label, media_key) VALUES ($1, $2)", f"retention {secrets.token_hex(4)}", seed_image
    )

    result = wait_for_status(purge_expired.send().message_id, JobStatus.SUCCEEDED, timeout=60).result

    assert await existing(conn, "notifications", "idempotency_key", gone_n + kept_n) == set(kept_n)
    assert await existing(conn, "webhook_events", "event_id", gone_w + kept_w) == set(kept_w)
    assert await existing(conn, "listing_checks", "check_id", gone_c + kept_c) == set(kept_c)
    assert redis_client.zscore(index, "old-job") is None and redis_client.zscore(index, "new-job") is not None
    assert redis_client.zscore(edge_index, "old-edge-job") is None
    assert redis_client.zscore(edge_index, "new-edge-job") is not None
    assert {k for k in (referenced, seed_image, orphan, fresh_orphan, reused) if media.exists(k)} == {
        referenced,
        seed_image,
        fresh_orphan,
        reused,
    }
    assert not temp.exists()
    # nothing else in the suite's database is that old, so the counts are exactly ours
    assert (result["notifications"], result["webhook_events"], result["listing_checks"], result["media"]) == (
        4,
        1,
        1,
        2,
    )
    assert result["job_index"] >= 2
