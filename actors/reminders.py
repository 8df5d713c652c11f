"""Reminders on schedules: subjects upsert their sends, due sends go out once through `deliver`.

The order hold's pattern: a send due within `NEAR_S` gets a delayed message when it is
armed, and the minute sweep (`send_due_reminders`) arms every send due within `NEAR_S` that
it has not armed yet (`armed_version`, marked after its messages are sent) or that is
`STALE_S` overdue, so far-future sends and anything a dead worker dropped still go out.
Sends due in the same `SLOT_MS` share one `send_reminders` message (at most `BATCH`) and go
out side by side; a send that does not settle there (a wait, a provider or database error)
is handed to its own `send_reminder` job, with its retries and dead letters.
A message names each send's version: moving, deferring or rolling a send forward bumps it,
so an older message does nothing. The notification's idempotency key (send + occurrence)
makes a retry, a duplicate message or a worker killed mid-send deliver at most once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from datetime import datetime, time, UTC
from time import time_ns
from typing import Any

import dramatiq

from actors.notify import MaybeSent, NoAddress, Outgoing, after_claim, claim_send, prepare, record_sent, transmit
from broker.waits import Wait, retry_policy
from db.notifications import Claim
from db.pool import get_process_pool
from db.reminders import (
    Armed,
    Reminder,
    LogLine,
    count_dispatched,
    delete_policy,
    delete_subject,
    insert_log,
    lock_recipient,
    mark_armed,
    select_unarmed_reminders,
    select_policy,
    select_preferences,
    take_reminder,
    update_reminder_due,
    upsert_policy,
    upsert_preferences,
    upsert_subject,
)
from domain.notifications import TemplateError
from domain.reminders import (
    Decision,
    Occasion,
    Policy,
    Preferences,
    Recurrence,
    ReminderError,
    Subject,
    following,
    judge,
    local_day_bounds,
    message_data,
)
from providers.errors import NotConfigured, Permanent

log = logging.getLogger(__name__)

NEAR_S = 120.0  # armed at once when due this soon; the minute sweep looks this far ahead
SWEEP_LIMIT = 50_000
STALE_S = 10.0  # the sweep arms a send again when it is this overdue (its message died with a worker, or waits)
SLOT_MS = 250  # sends due within one slot share a message, sent when the slot's last one is due
BATCH = 100
# a job has its own budget (6 failures, 100 waits); this stops the sweep re-arming a dead-lettered send forever
MAX_DISPATCHES = 250
TERMINAL = (NotConfigured, Permanent, MaybeSent, TemplateError, NoAddress)


@dramatiq.actor(queue_name="notify", max_retries=5, max_backoff=60_000, time_limit=30_000, throws=(ReminderError,))
async def upsert_reminder_subject(
    subject: str,
    recipient: str,
    addresses: dict[str, str],
    occurs_on: str,
    time_zone: str,
    at: str | None,
    recurrence: Recurrence,
    offsets_minutes: list[int],
    channels: list[str],
    template: str,
    data: dict[str, Any] | None = None,
    send_at: str = "09:00",
    policy_id: str | None = None,
    revision: int | None = None,
) -> int:
    """Create or move a subject: its pending sends are upserted or cancelled in one transaction."""
    occasion = Occasion(
        datetime.fromisoformat(occurs_on).date(), time_zone, time.fromisoformat(at) if at else None, recurrence
    )
    async with get_process_pool().acquire() as conn, conn.transaction():
        policy = await _policy(conn, recipient, policy_id, offsets_minutes)
        offsets, chans, at_time = (
            (policy.offsets_minutes, policy.channels, policy.send_at)
            if policy
            else (tuple(offsets_minutes), tuple(channels), time.fromisoformat(send_at))
        )
        spec = Subject(subject, recipient, addresses, occasion, offsets, chans, template, data or {}, at_time)
        armed = await upsert_subject(conn, spec, datetime.now(UTC), revision or now_us())
    if armed is None:
        return 0  # a newer upsert or delete of this subject already ran
    await arm_soon(armed)
    return len(armed)


async def _policy(conn: Any, recipient: str, policy_id: str | None, offsets: list[int]) -> Policy | None:
    """The policy a subject uses: the one it names, else (without offsets) its recipient's default; None: its own."""
    if not policy_id and not offsets:
        policy_id = (await select_preferences(conn, recipient)).default_policy_id
        if policy_id is None:
            raise ReminderError("no offsets, no policy_id and no default policy for the recipient")
    policy = await select_policy(conn, policy_id) if policy_id else None
    if policy_id and policy is None:
        raise ReminderError(f"no reminder policy {policy_id!r}")
    return policy


@dramatiq.actor(queue_name="notify", max_retries=5, max_backoff=60_000, time_limit=30_000)
async def upsert_reminder_policy(
    policy_id: str,
    name: str,
    offsets_minutes: list[int],
    channels: list[str],
    send_at: str = "09:00",
    owner: str | None = None,
) -> None:
    """Create or replace a reminder policy (subjects copy it when they are upserted)."""
    policy = Policy(policy_id, owner, name, tuple(offsets_minutes), tuple(channels), time.fromisoformat(send_at))
    async with get_process_pool().acquire() as conn:
        await upsert_policy(conn, policy)


@dramatiq.actor(queue_name="notify", max_retries=5, max_backoff=60_000, time_limit=30_000)
async def delete_reminder_policy(policy_id: str) -> bool:
    """Delete a reminder policy; True when it existed."""
    async with get_process_pool().acquire() as conn:
        return await delete_policy(conn, policy_id)


@dramatiq.actor(queue_name="notify", max_retries=5, max_backoff=60_000, time_limit=30_000)
async def update_preferences(
    recipient: str,
    time_zone: str = "UTC",
    channels_off: list[str] | None = None,
    quiet_start: str | None = None,
    quiet_end: str | None = None,
    daily_cap: int | None = None,
    opted_out: bool = False,
    locale: str = "en",
    default_policy_id: str | None = None,
) -> None:
    """Replace a recipient's preferences; the next dispatch of each of their sends applies them."""
    prefs = Preferences(
        time_zone,
        frozenset(channels_off or ()),
        _time(quiet_start),
        _time(quiet_end),
        daily_cap,
        opted_out,
        locale,
        default_policy_id,
    )
    async with get_process_pool().acquire() as conn:
        await upsert_preferences(conn, recipient, prefs)


def _time(value: str | None) -> time | None:
    return time.fromisoformat(value) if value else None


@dramatiq.actor(queue_name="notify", max_retries=5, max_backoff=60_000, time_limit=30_000)
async def delete_reminder_subject(subject: str, revision: int | None = None) -> int:
    """Delete a subject and cancel its pending sends (unless a newer upsert ran); how many were cancelled."""
    async with get_process_pool().acquire() as conn, conn.transaction():
        return await delete_subject(conn, subject, revision or now_us())


def now_us() -> int:
    """A revision: when the caller asked, in µs (web passes the request's time)."""
    return time_ns() // 1000


@dramatiq.actor(
    queue_name="notify",
    retry_when=retry_policy(max_failures=6, max_waits=100),
    min_backoff=2_000,
    max_backoff=300_000,
    time_limit=60_000,
    throws=TERMINAL,
)
async def send_reminder(reminder_id: int, version: int) -> dict[str, Any]:
    """Send one due reminder once, as its recipient's preferences allow (else skip or defer it)."""
    return await _send_one(reminder_id, version)


@dramatiq.actor(queue_name="notify", max_retries=5, min_backoff=1_000, max_backoff=60_000, time_limit=300_000)
async def send_reminders(sends: list[list[int]]) -> dict[str, int]:
    """Send a slot's due reminders ([id, version] each) side by side, each as `send_reminder` would.

    One that does not settle here (a wait, a provider or database error) is handed to its own
    `send_reminder` job; one that fails for good is logged failed, as that job would log it.
    """
    outcomes = await asyncio.gather(*(_settle(reminder_id, version) for reminder_id, version in sends))
    handed = [(send, delay) for send, (outcome, delay) in zip(sends, outcomes) if outcome == "handed"]
    if handed:
        await asyncio.to_thread(_hand_over, handed)
    return dict(Counter(outcome for outcome, _ in outcomes))


async def _settle(reminder_id: int, version: int) -> tuple[str, int | None]:
    """One send of a batch: its outcome, and the delay before its own job when it is handed over."""
    try:
        return str((await _send_one(reminder_id, version))["status"]), None
    except TERMINAL as error:
        log.warning("reminder %s failed for good: %s", reminder_id, error)
        return "failed", None
    except dramatiq.Retry as error:  # a Wait or a Failure: its own job tries again after the delay asked
        return "handed", error.delay
    except Exception as error:  # its own job retries it, with backoff and a dead letter at the end
        log.warning("reminder %s handed to its own job: %s", reminder_id, error)
        return "handed", None


def _hand_over(handed: list[tuple[list[int], int | None]]) -> None:
    for (reminder_id, version), delay in handed:
        send_reminder.send_with_options(
            args=(reminder_id, version), delay=delay, unique_key=f"send_reminder:{reminder_id}:{version}"
        )


async def _send_one(reminder_id: int, version: int) -> dict[str, Any]:
    async with get_process_pool().acquire() as conn:
        taken = await _take(conn, reminder_id, version)
    if taken is None:
        return {"status": "superseded"}
    reminder, out, claimed = taken
    try:
        result = after_claim(out, claimed) or await transmit(out)
    except TERMINAL as error:
        await _after(reminder, LogLine("failed", str(error), reminder.template, key=out.key))
        raise
    sent = result["status"] == "sent"
    line = LogLine(
        "sent" if sent else "skipped", result.get("reason"), reminder.template, result.get("template_version"), out.key
    )
    await _after(reminder, line, out if sent and not result.get("deduplicated") else None, result)
    return {**result, "reminder_id": reminder_id}


async def _take(conn: Any, reminder_id: int, version: int) -> tuple[Reminder, Outgoing, Claim | None] | None:
    """Lock the send, apply preferences and claim the notification in one transaction; None: not sent now."""
    armed: Armed | None = None
    failure: Exception | None = None
    async with conn.transaction():
        found = await take_reminder(conn, reminder_id)
        if found is None or found[0].version != version or found[0].status != "pending":
            return None
        reminder, prefs, attempts = found
        now = datetime.now(UTC)
        if reminder.due_at > now:  # a delayed message a little early (clock skew): wait for the due time
            raise Wait("the reminder is not due yet", int((reminder.due_at - now).total_seconds() * 1000) + 1)
        key = f"reminder:{reminder.id}:{reminder.occurrence.isoformat()}"
        decision = judge(reminder.channel, now, prefs, await _sent_today(conn, reminder.recipient, prefs, now, key))
        if decision.verdict == "send" and attempts >= MAX_DISPATCHES:
            decision = Decision("fail", f"gave up after {MAX_DISPATCHES} attempts")
        if decision.verdict == "send":
            data = message_data(reminder.data, reminder.occurrence, reminder.offset_minutes)
            try:  # a template or address that cannot go out fails this occurrence (recorded on the notification)
                out = await prepare(
                    conn, reminder.channel, reminder.address, reminder.template, data, key, prefs.locale
                )
            except TERMINAL as error:
                failure = error
                armed = await _roll(conn, reminder, LogLine("failed", str(error), reminder.template, key=key))
            else:
                await insert_log(conn, reminder.id, "sending", template=reminder.template, key=key)
                return reminder, out, await claim_send(conn, out)
        else:
            armed = await _not_now(conn, reminder, decision)
    await arm_soon([armed] if armed else [])
    if failure is not None:
        raise failure
    return None


async def _sent_today(conn: Any, recipient: str, prefs: Preferences, now: datetime, key: str) -> int:
    """Sends made today in the recipient's zone, counted under a per-recipient lock (0: no cap to check)."""
    if prefs.daily_cap is None:
        return 0
    await lock_recipient(conn, recipient)
    start, end = local_day_bounds(now, prefs.time_zone)
    return await count_dispatched(conn, recipient, start, end, except_key=key)


async def _not_now(conn: Any, reminder: Reminder, decision: Decision) -> Armed | None:
    """Defer the send to `decision.until`, or skip (fail) this occurrence and roll forward."""
    if decision.verdict == "defer":
        line = LogLine("deferred", f"{decision.reason} until {decision.until}")
        return await update_reminder_due(
            conn,
            reminder.id,
            reminder.version,
            occurrence=None,
            due_at=decision.until,
            sent=False,
            log=line,
        )
    return await _roll(conn, reminder, LogLine("skipped" if decision.verdict == "skip" else "failed", decision.reason))


async def _roll(conn: Any, reminder: Reminder, line: LogLine, *, only_if_moved: bool = False) -> Armed | None:
    """Log `line` and move the send to its next occurrence (or close it), in one statement."""
    nxt = following(reminder.occasion, reminder.occurrence, reminder.offset_minutes, reminder.send_at)
    return await update_reminder_due(
        conn,
        reminder.id,
        reminder.version,
        occurrence=nxt and nxt[0],
        due_at=nxt and nxt[1],
        sent=line.event == "sent",
        log=line,
        only_if_moved=only_if_moved,
    )


async def _after(
    reminder: Reminder, line: LogLine, out: Outgoing | None = None, result: dict[str, Any] | None = None
) -> None:
    """Log the outcome, roll the send forward and record the provider's acceptance of `out` (when given), at once.

    One transaction, taking the send's row before the notification's as `_take` does: another
    attempt sees the notification sent only with the send moved on, so it logs nothing twice.
    Only a send this attempt handed over is logged whatever else moved the send meanwhile (a
    subject moved during the call); any other outcome is logged by the attempt that moves it.
    """
    async with get_process_pool().acquire() as conn, conn.transaction():
        armed = await _roll(conn, reminder, line, only_if_moved=out is None)
        if out is not None and result is not None:
            await record_sent(conn, out, result)
    await arm_soon([armed] if armed else [])


async def arm_soon(armed: list[Armed]) -> int:
    """Send the delayed messages of the sends due within NEAR_S (after the caller's commit); how many sends."""
    now = datetime.now(UTC)
    soon = [a for a in armed if (a.due_at - now).total_seconds() <= NEAR_S]
    if soon:
        await asyncio.to_thread(_send_all, soon, now)
    return len(soon)


def _send_all(soon: list[Armed], now: datetime) -> None:
    for delay, sends in batches(soon, now):
        send_reminders.send_with_options(args=(sends,), delay=delay or None)


def batches(soon: list[Armed], now: datetime) -> list[tuple[int, list[list[int]]]]:
    """(delay in ms, [[id, version], ...]) per message: the sends due in one slot, at most BATCH a message,
    each message sent when its last send is due."""
    slots: dict[int, list[Armed]] = defaultdict(list)
    for a in sorted(soon, key=lambda a: a.due_at):
        slots[int(a.due_at.timestamp() * 1000) // SLOT_MS].append(a)
    found = []
    for slot in sorted(slots):
        group = slots[slot]
        for i in range(0, len(group), BATCH):
            chunk = group[i : i + BATCH]
            delay = max(0, int((chunk[-1].due_at - now).total_seconds() * 1000))
            found.append((delay, [[a.id, a.version] for a in chunk]))
    return found


@dramatiq.actor(queue_name="notify", max_retries=3, max_backoff=60_000, time_limit=120_000)
async def send_due_reminders() -> int:
    """The sweep: arm every send due within NEAR_S (or overdue) that has no live message; how many."""
    async with get_process_pool().acquire() as conn:
        due = await select_unarmed_reminders(conn, NEAR_S, SWEEP_LIMIT, STALE_S)
        armed = await arm_soon(due)
        await mark_armed(conn, due)
    return armed
