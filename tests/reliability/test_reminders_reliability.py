"""Reminders on a real `backroom worker` pool: a worker SIGKILLed mid-dispatch sends nothing twice."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections import Counter
from datetime import datetime, timedelta, UTC

import pytest

import actors
from actors.reminders import upsert_reminder_subject
from domain.jobs import JobStatus
from tests.orders_support import connect, fake, fakes  # noqa: F401
from tests.reliability.conftest import live_workers
from tests.reliability.test_orders_reliability import running_job
from tests.waiting import eventually, wait_until

pytestmark = pytest.mark.reliability
N = 12  # per channel


async def test_a_worker_killed_mid_dispatch_sends_nothing_twice(fake, redis_client, pools, database_url) -> None:
    fake.resend.hang_next("send", 1.2, times=N)  # under PROVIDER_TIMEOUT_S: the provider does send it
    fake.pushover.hang_next("send", 1.2, times=N)
    users = {f"user-{i}-{secrets.token_hex(3)}" for i in range(N)}
    fake.pushover.users |= users
    pools(os.environ["REDIS_URL"], processes=2, threads=2)
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    when = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    tag = secrets.token_hex(4)
    emails = [f"r{i}-{tag}@example.com" for i in range(N)]
    targets = [("email", e) for e in emails] + [("push", u) for u in sorted(users)]
    for i, (channel, address) in enumerate(targets):
        upsert_reminder_subject.send(
            f"kill:{tag}:{i}",
            address,
            {channel: address},
            when.date().isoformat(),
            "UTC",
            when.time().isoformat(),
            "yearly",
            [0],
            [channel],
            "ops_message",
            {"title": f"reminder {i}", "text": "soon"},
        )
    # four threads, each held in a provider call for a second: whichever worker dies, it dies mid-send
    await asyncio.to_thread(
        wait_until,
        lambda: fake.resend.calls["send"] + fake.pushover.calls["send"] >= 4,
        60,
        "every thread in a provider call",
    )
    victim = await asyncio.to_thread(
        wait_until, lambda: running_job("send_reminders") or running_job("send_reminder"), 60, "a send in flight"
    )
    os.kill(int(victim.worker.rsplit(":", 1)[1]), signal.SIGKILL)
    conn = await connect(database_url)
    try:
        # every send settles: rolled forward to next year after a send, or closed as failed (maybe sent)
        await eventually(
            lambda: conn.fetchval(
                "SELECT count(*) = $2 FROM reminders WHERE subject LIKE $1 AND occurrence > $3",
                f"kill:{tag}:%",
                len(targets),
                when.date(),
            ),
            timeout=120,
            what="every reminder settled",
        )
        mail = Counter(to for m in fake.resend.sent for to in m["to"] if to in emails)
        push = Counter(m["user"] for m in fake.pushover.sent if m["user"] in users)
        assert set(mail.values()) == {1} and len(mail) == N  # Resend dedupes a repeat by Idempotency-Key
        assert set(push.values()) <= {1}  # Pushover cannot dedupe: a send cut off mid-call is never repeated
        sent = await conn.fetch(
            "SELECT channel, count(*) AS n FROM reminder_log WHERE subject LIKE $1 AND event = 'sent' GROUP BY channel",
            f"kill:{tag}:%",
        )
        logged = {r["channel"]: r["n"] for r in sent}
        assert logged.get("email") == N
        failed = await conn.fetchval(
            "SELECT count(*) FROM reminder_log WHERE subject LIKE $1 AND event = 'failed'", f"kill:{tag}:%"
        )
        # each push reminder is logged sent, or failed as maybe sent when its worker died inside the call;
        # a maybe-sent one may have reached Pushover before the kill (then it is in `push` too)
        assert logged.get("push", 0) + failed == N
        assert logged.get("push", 0) <= len(push) <= N
        record = await asyncio.to_thread(
            wait_until,
            lambda: (
                (r := actors.broker.jobs.get(victim.job_id)) and r.status in (JobStatus.SUCCEEDED, JobStatus.DEAD) and r
            ),
            60,
            "the victim",
        )
        assert record.recoveries == 1
    finally:
        await conn.close()
        fake.pushover.users -= users
