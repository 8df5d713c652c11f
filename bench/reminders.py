"""Reminder dispatch lateness: many sends due over a few minutes, 2,000 recipients' zones and quiet hours.

Run from the repo root with no arguments: `python bench/reminders.py` (a few minutes). It
starts its own redis-server and embedded PostgreSQL in a temp dir (like the tests), the
fake providers in this process, `backroom scheduler` (the minute sweep) and one
`backroom worker -p 2 -t 16` pool, run with `dramatiq_worker_timeout=100` (BENCH_WORKER_TIMEOUT_MS):
Dramatiq's consumers move due delayed messages once per worker timeout, 1 s by default.

Each of two runs stores BENCH_REMINDERS (default 10,000) email reminders straight in the
tables (no message: only the minute sweep arms them), due evenly over BENCH_SPREAD_S
(default 120) seconds from about 70 s on, for 2,000 recipients whose preferences spread
over every IANA zone; every fourth recipient has quiet hours (local time of day) that
open and close during the run, so their sends are deferred to the end of them. Lateness of
a send = when the provider accepted it (its `sent` log entry) - its due time (the end of
the quiet hours for a deferred one). Missed: not sent 60 s after it was due. Doubled: a
send logged `sent` twice, or an address the fake Resend delivered to twice. A quiet
violation: a send accepted inside its recipient's quiet hours. The second run SIGKILLs one
worker process halfway (heartbeat timeout BENCH_HEARTBEAT_MS, default 2000); a send that
was inside the provider call then waits out the claim's lease (30 s) before its retry.
Ends with one line:
`bench: reminders n=.. p50_s=.. p99_s=.. missed=.. doubled=.. quiet_violations=.. killed_p99_s=..`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, UTC
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import redis  # noqa: E402

from bench._services import BIN, Stack, percentile, say, wait_until  # noqa: E402
from domain.reminders import Preferences, quiet_until  # noqa: E402
from fakes import Fakes  # noqa: E402

N = int(os.environ.get("BENCH_REMINDERS", "10000"))
RECIPIENTS = 2_000
SPREAD_S = float(os.environ.get("BENCH_SPREAD_S", "120"))
LEAD_S = 70.0  # the first send is due after the next minute's sweep has run
HEARTBEAT_MS = int(os.environ.get("BENCH_HEARTBEAT_MS", "2000"))
# Dramatiq's consumers look at their delayed messages once per worker timeout (default 1000 ms)
WORKER_TIMEOUT_MS = os.environ.get("BENCH_WORKER_TIMEOUT_MS", "100")
MISSED_AFTER_S = 60.0
SCRUB = ("WORKER_PROCESSES", "WORKER_THREADS", "REDIS_NAMESPACE", "REDIS_SENTINELS", "SENTRY_DSN", "NOTIFY_FALLBACK")


def preference_sets(start: datetime) -> dict[str, Preferences]:
    """2,000 recipients over every zone; each fourth has quiet hours opening and closing inside the run."""
    zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    prefs = {}
    for i in range(RECIPIENTS):
        tz = zones[i % len(zones)]
        if i % 4 == 0:
            opens = start + timedelta(seconds=LEAD_S + (i * 7919) % int(SPREAD_S))
            local = opens.astimezone(ZoneInfo(tz))
            close = (local + timedelta(seconds=20 + i % 40)).time().replace(microsecond=0)
            prefs[f"r{i}"] = Preferences(tz, quiet_start=local.time().replace(microsecond=0), quiet_end=close)
        else:
            prefs[f"r{i}"] = Preferences(tz)
    return prefs


async def store(dsn: str, run: str, prefs: dict[str, Preferences], start: datetime) -> None:
    """The run's subjects and their sends, due evenly over the spread (no messages: the sweep arms them)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO notification_preferences (recipient, time_zone, quiet_start, quiet_end)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (recipient) DO UPDATE SET time_zone = $2, quiet_start = $3, quiet_end = $4",
            [(r, p.time_zone, p.quiet_start, p.quiet_end) for r, p in prefs.items()],
        )
        names = list(prefs)
        subjects, sends = [], []
        for i in range(N):
            due = start + timedelta(seconds=LEAD_S + SPREAD_S * i / N)
            subject, recipient = f"b:{run}:{i}", names[i % RECIPIENTS]
            subjects.append(
                (
                    subject,
                    recipient,
                    json.dumps({"email": f"s{i}.{run}@bench.example"}),
                    due.date(),
                    due.time(),
                    "UTC",
                    "none",
                    [0],
                    ["email"],
                    "ops_message",
                    json.dumps({"title": f"reminder {i}", "text": "bench"}),
                )
            )
            sends.append((subject, recipient, "email", 0, due.date(), due))
        await conn.copy_records_to_table(
            "reminder_subjects",
            records=subjects,
            columns=[
                "subject",
                "recipient",
                "addresses",
                "occurs_on",
                "at",
                "time_zone",
                "recurrence",
                "offsets_minutes",
                "channels",
                "template",
                "data",
            ],
        )
        await conn.copy_records_to_table(
            "reminders",
            records=sends,
            columns=["subject", "recipient", "channel", "offset_minutes", "occurrence", "due_at"],
        )
    finally:
        await conn.close()


async def figures(dsn: str, run: str) -> list[asyncpg.Record]:
    """Per send: recipient, final due time, first `sent` log time and how many `sent` entries."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            """
            SELECT r.recipient, r.due_at, min(l.at) AS sent_at, count(l.id) AS sent,
                   EXISTS (SELECT 1 FROM reminder_log d WHERE d.reminder_id = r.id AND d.event = 'deferred') AS deferred
            FROM reminders r LEFT JOIN reminder_log l ON l.reminder_id = r.id AND l.event = 'sent'
            WHERE r.subject LIKE $1 GROUP BY r.id
            """,
            f"b:{run}:%",
        )
    finally:
        await conn.close()


def kill_one_worker(client: redis.Redis) -> int:
    """SIGKILL one live worker process (its supervisor starts a new one); returns its pid."""
    pids = sorted(
        int(client.hget(key, "pid")) for key in client.scan_iter("backroom:worker:*") if client.hget(key, "pid")
    )
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def one_run(run: str, stack: Stack, *, kill: bool) -> tuple[list[float], int, int, int]:
    """Store the run's sends, wait for them (killing a worker halfway if asked); (lateness, missed, doubled, quiet)."""
    start = datetime.now(UTC)
    prefs = preference_sets(start)
    asyncio.run(store(stack.database_url, run, prefs, start))
    say(f"  [{run}] {N} sends stored in {(datetime.now(UTC) - start).total_seconds():.1f}s")
    if kill:
        time.sleep(max(0.0, (start + timedelta(seconds=LEAD_S + SPREAD_S / 2) - datetime.now(UTC)).total_seconds()))
        client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        say(f"  [{run}] SIGKILLed worker pid {kill_one_worker(client)} halfway")
    end = start + timedelta(seconds=LEAD_S + SPREAD_S + MISSED_AFTER_S + 60)

    def all_sent() -> bool:
        return all(r["sent"] for r in asyncio.run(figures(stack.database_url, run)))

    try:
        wait_until(
            all_sent, timeout=max(5.0, (end - datetime.now(UTC)).total_seconds()), interval=2.0, what="every send"
        )
    except TimeoutError:
        say(f"  [{run}] not every send went out in time")
    rows = asyncio.run(figures(stack.database_url, run))
    late = [(r["sent_at"] - r["due_at"]).total_seconds() for r in rows if r["sent_at"] is not None]
    missed = sum(
        1 for r in rows if r["sent_at"] is None or (r["sent_at"] - r["due_at"]).total_seconds() > MISSED_AFTER_S
    )
    quiet = sum(1 for r in rows if r["sent_at"] is not None and quiet_until(r["sent_at"], prefs[r["recipient"]]))
    doubled = sum(1 for r in rows if r["sent"] > 1)
    deferred = [(r["sent_at"] - r["due_at"]).total_seconds() for r in rows if r["sent_at"] and r["deferred"]]
    say(
        f"  [{run}] sent={len(late)} p50={percentile(late, 50):.3f}s p99={percentile(late, 99):.3f}s "
        f"max={max(late, default=float('nan')):.3f}s missed={missed} doubled={doubled} quiet_violations={quiet}; "
        f"deferred by quiet hours: {len(deferred)}, their p99={percentile(deferred, 99):.3f}s"
    )
    return late, missed, doubled, quiet


def main() -> int:
    """Start everything, run twice (the second with a worker killed), print the figures."""
    for name in SCRUB:
        os.environ.pop(name, None)
    stack, fakes = Stack(), Fakes()
    try:
        stack.start_redis()
        stack.start_postgres()
        fakes.start()
        env = stack.env(
            **fakes.env(),
            WORKER_HEARTBEAT_TIMEOUT_MS=str(HEARTBEAT_MS),
            RESEND_RATE_PER_S="100000",
            dramatiq_worker_timeout=WORKER_TIMEOUT_MS,
            PUSHOVER_RATE_PER_S="2000",
            TELEGRAM_RATE_PER_S="2000",
            ADMIN_EMAIL="admin@example.com",
        )
        os.environ.update(env)
        stack.spawn("scheduler", [str(BIN / "backroom"), "scheduler"], env)
        stack.spawn("worker", [str(BIN / "backroom"), "worker", "-p", "2", "-t", "16"], env)
        client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        wait_until(lambda: len(list(client.scan_iter("backroom:worker:*"))) == 2, timeout=90, what="two workers")
        say(
            f"bench: {N} reminders due over {SPREAD_S:.0f}s per run, {RECIPIENTS} recipients "
            f"(every 4th with quiet hours), heartbeat timeout {HEARTBEAT_MS} ms"
        )
        late, missed, doubled, quiet = one_run("calm", stack, kill=False)
        k_late, k_missed, k_doubled, k_quiet = one_run("killed", stack, kill=True)
        delivered = Counter(to for m in fakes.resend.sent for to in m["to"])
        doubled += k_doubled + sum(1 for count in delivered.values() if count > 1)
        missed, quiet = missed + k_missed, quiet + k_quiet
        print(
            f"bench: reminders n={2 * N} p50_s={percentile(late, 50):.3f} p99_s={percentile(late, 99):.3f} "
            f"missed={missed} doubled={doubled} quiet_violations={quiet} "
            f"killed_p99_s={percentile(k_late, 99):.3f}",
            flush=True,
        )
        return 0 if missed == 0 and doubled == 0 and quiet == 0 else 1
    finally:
        fakes.stop()
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
