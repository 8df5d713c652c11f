"""Reminder subjects, their scheduled sends, recipients' preferences and the log of every send."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from domain.reminders import Occasion, Policy, Preferences, Subject, plan


@dataclass(frozen=True)
class Armed:
    """A pending send as the caller enqueues it: id, version and due time."""

    id: int
    version: int
    due_at: datetime


@dataclass(frozen=True)
class Reminder:
    """A scheduled send with what dispatch needs from its subject."""

    id: int
    subject: str
    recipient: str
    channel: str
    offset_minutes: int
    occurrence: date
    due_at: datetime
    version: int
    status: str
    address: str
    template: str
    data: dict[str, Any]
    occasion: Occasion
    send_at: Any


async def upsert_subject(
    conn: asyncpg.Connection, subject: Subject, now: datetime, revision: int = 0
) -> list[Armed] | None:
    """Store `subject` and make its pending sends match it (run in a transaction); the pending ones.

    None when a newer `revision` (upsert or delete) is already stored: nothing changes.
    """
    occ = subject.occasion
    stored = await conn.fetchval(
        """
        INSERT INTO reminder_subjects (subject, recipient, addresses, occurs_on, at, time_zone, recurrence,
                                       offsets_minutes, channels, send_at, template, data, revision)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (subject) DO UPDATE SET recipient = $2, addresses = $3, occurs_on = $4, at = $5,
            time_zone = $6, recurrence = $7, offsets_minutes = $8, channels = $9, send_at = $10, template = $11,
            data = $12, revision = $13, deleted = false
            WHERE reminder_subjects.revision <= $13
        RETURNING true
        """,
        subject.subject,
        subject.recipient,
        json.dumps(subject.addresses),
        occ.occurs_on,
        occ.at,
        occ.time_zone,
        occ.recurrence,
        list(subject.offsets_minutes),
        list(subject.channels),
        subject.send_at,
        subject.template,
        json.dumps(subject.data, default=str),
        revision,
    )
    if not stored:
        return None
    existing = {
        (r["channel"], r["offset_minutes"]): r
        for r in await conn.fetch(
            "SELECT id, channel, offset_minutes, occurrence, due_at, version, status FROM reminders"
            " WHERE subject = $1 FOR UPDATE",
            subject.subject,
        )
    }
    wanted = plan(subject, now)
    armed: list[Armed] = []
    for (channel, offset), row in existing.items():
        if (channel, offset) not in wanted or wanted[(channel, offset)] is None:
            await _cancel(conn, row["id"], "subject changed" if row["status"] == "pending" else None)
    for (channel, offset), nxt in wanted.items():
        if nxt is not None:
            armed.append(await _arm(conn, subject, channel, offset, nxt, existing.get((channel, offset))))
    return [a for a in armed if a.version > 0]


async def _arm(
    conn: asyncpg.Connection,
    subject: Subject,
    channel: str,
    offset: int,
    nxt: tuple[date, datetime],
    row: asyncpg.Record | None,
) -> Armed:
    occurrence, due = nxt
    if row is not None and row["status"] == "pending" and (row["occurrence"], row["due_at"]) == (occurrence, due):
        return Armed(row["id"], row["version"], row["due_at"])  # unchanged: its message stays valid
    if row is not None and row["status"] == "done" and row["occurrence"] == occurrence:
        return Armed(row["id"], 0, due)  # this occurrence was already sent: not again
    rec = await conn.fetchrow(
        """
        INSERT INTO reminders (subject, recipient, channel, offset_minutes, occurrence, due_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (subject, channel, offset_minutes) DO UPDATE SET recipient = $2, occurrence = $5, due_at = $6,
            version = reminders.version + 1, status = 'pending'
        RETURNING id, version, due_at
        """,
        subject.subject,
        subject.recipient,
        channel,
        offset,
        occurrence,
        due,
    )
    await insert_log(conn, rec["id"], "queued", reason=f"due {due.isoformat()}")
    return Armed(rec["id"], rec["version"], rec["due_at"])


async def _cancel(conn: asyncpg.Connection, reminder_id: int, reason: str | None) -> None:
    await conn.execute(
        "UPDATE reminders SET status = 'cancelled', version = version + 1 WHERE id = $1 AND status <> 'cancelled'",
        reminder_id,
    )
    if reason:
        await insert_log(conn, reminder_id, "cancelled", reason=reason)


async def delete_subject(conn: asyncpg.Connection, subject: str, revision: int = 0) -> int:
    """Delete `subject` (a tombstone) and cancel its pending sends (run in a transaction); how many were cancelled.

    A newer stored `revision` wins: the delete then changes nothing.
    """
    deleted = await conn.fetchval(
        "UPDATE reminder_subjects SET deleted = true, revision = $2"
        " WHERE subject = $1 AND revision <= $2 RETURNING true",
        subject,
        revision,
    )
    if not deleted:
        return 0
    ids = await conn.fetch("SELECT id FROM reminders WHERE subject = $1 AND status = 'pending' FOR UPDATE", subject)
    for row in ids:
        await _cancel(conn, row["id"], "subject deleted")
    return len(ids)


async def take_reminder(conn: asyncpg.Connection, reminder_id: int) -> tuple[Reminder, Preferences, int] | None:
    """Lock one scheduled send until commit: the send with its subject's message, its recipient's
    preferences, and how many times its current occurrence was handed to a provider (one read)."""
    row = await conn.fetchrow(
        f"""
        SELECT r.id, r.subject, r.recipient, r.channel, r.offset_minutes, r.occurrence, r.due_at, r.version,
               r.status, s.addresses ->> r.channel AS address, s.template, s.data, s.occurs_on, s.at, s.time_zone,
               s.recurrence, s.send_at, p.recipient IS NOT NULL AS has_preferences, {_PREFERENCES_AS_P},
               (SELECT count(*) FROM reminder_log l WHERE l.reminder_id = r.id AND l.occurrence = r.occurrence
                  AND l.event = 'sending') AS attempts
        FROM reminders r JOIN reminder_subjects s USING (subject)
             LEFT JOIN notification_preferences p ON p.recipient = r.recipient
        WHERE r.id = $1 FOR UPDATE OF r
        """,
        reminder_id,
    )
    if row is None:
        return None
    occasion = Occasion(row["occurs_on"], row["time_zone"], row["at"], row["recurrence"])
    reminder = Reminder(
        **{k: row[k] for k in _REMINDER_FIELDS}, data=json.loads(row["data"]), occasion=occasion, send_at=row["send_at"]
    )
    prefs = _preferences(row, prefix="p_") if row["has_preferences"] else Preferences()
    return reminder, prefs, row["attempts"]


_REMINDER_FIELDS = (
    "id",
    "subject",
    "recipient",
    "channel",
    "offset_minutes",
    "occurrence",
    "due_at",
    "version",
    "status",
    "address",
    "template",
)
_PREFERENCE_FIELDS = (
    "time_zone",
    "channels_off",
    "quiet_start",
    "quiet_end",
    "daily_cap",
    "opted_out",
    "locale",
    "default_policy_id",
)
_PREFERENCES_AS_P = ", ".join(f"p.{f} AS p_{f}" for f in _PREFERENCE_FIELDS)


def _preferences(row: asyncpg.Record, prefix: str = "") -> Preferences:
    values = {f: row[prefix + f] for f in _PREFERENCE_FIELDS}
    return Preferences(**{**values, "channels_off": frozenset(values["channels_off"])})


async def select_unarmed_reminders(
    conn: asyncpg.Connection, horizon_s: float, limit: int, stale_s: float
) -> list[Armed]:
    """Pending sends due within `horizon_s` that need a message (overdue ones first).

    A send needs one when no message was marked sent for its version (`mark_armed`), or when it is
    overdue by more than `stale_s` (whatever its message became: a dead worker's, a retry
    waiting out a limit).
    """
    rows = await conn.fetch(
        """
        SELECT id, version, due_at FROM reminders WHERE status = 'pending'
          AND due_at <= now() + make_interval(secs => $1)
          AND (armed_version IS DISTINCT FROM version OR due_at < now() - make_interval(secs => $3))
        ORDER BY due_at LIMIT $2
        """,
        horizon_s,
        limit,
        stale_s,
    )
    return [Armed(r["id"], r["version"], r["due_at"]) for r in rows]


async def mark_armed(conn: asyncpg.Connection, armed: list[Armed]) -> None:
    """Record that these versions' messages were sent (called after sending: a crash in between arms twice)."""
    await conn.execute(
        "UPDATE reminders r SET armed_version = a.version FROM unnest($1::bigint[], $2::int[]) AS a(id, version)"
        " WHERE r.id = a.id AND r.version = a.version",
        [a.id for a in armed],
        [a.version for a in armed],
    )


@dataclass(frozen=True)
class LogLine:
    """One event of a send, for the log (its subject, recipient, channel and occurrence come from the send)."""

    event: str
    reason: str | None = None
    template: str | None = None
    template_version: int | None = None
    key: str | None = None

    def values(self) -> tuple[Any, ...]:
        return self.event, self.reason and self.reason[:500], self.template, self.template_version, self.key


# the log line takes $2..$6 after the send's id ($1); it copies the send's row as it was before any update
_LOG = """
    INSERT INTO reminder_log (reminder_id, subject, recipient, channel, occurrence, event, reason, template,
                              template_version, idempotency_key)
    SELECT id, subject, recipient, channel, occurrence, $2, $3, $4, $5, $6 FROM reminders WHERE id = $1
"""
_MOVE = """
    UPDATE reminders SET version = version + 1, occurrence = COALESCE(${o}, occurrence),
        due_at = COALESCE(${d}, due_at), status = CASE WHEN ${d}::timestamptz IS NULL THEN 'done' ELSE status END,
        sent_count = sent_count + ${s}::int
    WHERE id = $1 AND version = ${v} RETURNING id, version, due_at, status
"""


async def update_reminder_due(
    conn: asyncpg.Connection,
    reminder_id: int,
    version: int,
    *,
    occurrence: date | None,
    due_at: datetime | None,
    sent: bool,
    log: LogLine | None = None,
    only_if_moved: bool = False,
) -> Armed | None:
    """Move a send on from `version`: to a new due time (deferred, next occurrence) or done; None if gone.

    `log` is written in the same statement, even when the send moved on meanwhile (a send that
    went out while its subject moved is still logged), or `only_if_moved` by this update (a
    duplicate attempt that only found the notification done logs nothing twice).
    """
    args: tuple[Any, ...]
    if log is None:
        sql, args = _MOVE.format(v=2, o=3, d=4, s=5), (reminder_id, version)
    elif only_if_moved:  # the log line's SELECT sees the send as it was, and only when the update applied
        move = _MOVE.format(v=7, o=8, d=9, s=10)
        sql = f"WITH moved AS ({move}), logged AS ({_LOG} AND EXISTS (SELECT 1 FROM moved)) SELECT * FROM moved"
        args = (reminder_id, *log.values(), version)
    else:
        sql = f"WITH logged AS ({_LOG}) {_MOVE.format(v=7, o=8, d=9, s=10)}"
        args = (reminder_id, *log.values(), version)
    row = await conn.fetchrow(sql, *args, occurrence, due_at, int(sent))
    return None if row is None or row["status"] != "pending" else Armed(row["id"], row["version"], row["due_at"])


async def insert_log(
    conn: asyncpg.Connection,
    reminder_id: int,
    event: str,
    *,
    reason: str | None = None,
    template: str | None = None,
    template_version: int | None = None,
    key: str | None = None,
) -> None:
    """Log one event of a send (its subject, recipient, channel and occurrence are copied from it)."""
    await conn.execute(_LOG, reminder_id, *LogLine(event, reason, template, template_version, key).values())


async def count_dispatched(
    conn: asyncpg.Connection, recipient: str, start: datetime, end: datetime, *, except_key: str = ""
) -> int:
    """Sends handed to a provider for `recipient` in [start, end), other than `except_key` (a retry counts once)."""
    return await conn.fetchval(
        "SELECT count(DISTINCT idempotency_key) FROM reminder_log WHERE recipient = $1 AND event = 'sending'"
        " AND at >= $2 AND at < $3 AND idempotency_key <> $4",
        recipient,
        start,
        end,
        except_key,
    )


async def lock_recipient(conn: asyncpg.Connection, recipient: str) -> None:
    """Serialise cap checks for one recipient until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('reminders:' || $1))", recipient)


async def upsert_policy(conn: asyncpg.Connection, policy: Policy) -> None:
    """Create or replace a reminder policy."""
    await conn.execute(
        """
        INSERT INTO reminder_policies (id, owner, name, offsets_minutes, channels, send_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (id) DO UPDATE SET owner = $2, name = $3, offsets_minutes = $4, channels = $5, send_at = $6
        """,
        policy.id,
        policy.owner,
        policy.name,
        list(policy.offsets_minutes),
        list(policy.channels),
        policy.send_at,
    )


async def select_policy(conn: asyncpg.Connection, policy_id: str) -> Policy | None:
    """One reminder policy, or None."""
    row = await conn.fetchrow(
        "SELECT id, owner, name, offsets_minutes, channels, send_at FROM reminder_policies WHERE id = $1", policy_id
    )
    return (
        None
        if row is None
        else Policy(
            row["id"], row["owner"], row["name"], tuple(row["offsets_minutes"]), tuple(row["channels"]), row["send_at"]
        )
    )


async def delete_policy(conn: asyncpg.Connection, policy_id: str) -> bool:
    """Delete a policy (subjects keep the offsets they copied); True when it existed."""
    return await conn.fetchval("DELETE FROM reminder_policies WHERE id = $1 RETURNING true", policy_id) or False


async def select_preferences(conn: asyncpg.Connection, recipient: str) -> Preferences:
    """`recipient`'s preferences (the defaults when none are stored)."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(_PREFERENCE_FIELDS)} FROM notification_preferences WHERE recipient = $1", recipient
    )
    return Preferences() if row is None else _preferences(row)


async def upsert_preferences(conn: asyncpg.Connection, recipient: str, prefs: Preferences) -> None:
    """Replace `recipient`'s preferences."""
    await conn.execute(
        """
        INSERT INTO notification_preferences (recipient, time_zone, channels_off, quiet_start, quiet_end,
                                              daily_cap, opted_out, locale, default_policy_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (recipient) DO UPDATE SET time_zone = $2, channels_off = $3, quiet_start = $4, quiet_end = $5,
            daily_cap = $6, opted_out = $7, locale = $8, default_policy_id = $9
        """,
        recipient,
        prefs.time_zone,
        sorted(prefs.channels_off),
        prefs.quiet_start,
        prefs.quiet_end,
        prefs.daily_cap,
        prefs.opted_out,
        prefs.locale,
        prefs.default_policy_id,
    )


class LogEntry(BaseModel):
    """What happened to a send, and why."""

    # served as it is by web/; event: queued, deferred, sending, sent, failed, skipped or cancelled
    model_config = ConfigDict(frozen=True)

    id: int
    reminder_id: int
    subject: str
    recipient: str
    channel: str
    occurrence: date
    event: str
    reason: str | None
    template: str | None
    template_version: int | None
    at: datetime


async def select_log(
    conn: asyncpg.Connection,
    *,
    recipient: str | None = None,
    subject: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[LogEntry]:
    """The newest log entries of a recipient or a subject (or all), older than `before_id` when given."""
    rows = await conn.fetch(
        """
        SELECT id, reminder_id, subject, recipient, channel, occurrence, event, reason, template, template_version, at
        FROM reminder_log WHERE ($1::text IS NULL OR recipient = $1) AND ($2::text IS NULL OR subject = $2)
          AND ($3::bigint IS NULL OR id < $3)
        ORDER BY id DESC LIMIT $4
        """,
        recipient,
        subject,
        before_id,
        limit,
    )
    return [LogEntry(**dict(r)) for r in rows]


class Scheduled(BaseModel):
    """One scheduled send of a subject."""

    model_config = ConfigDict(frozen=True)

    id: int
    channel: str
    offset_minutes: int
    occurrence: date
    due_at: datetime
    status: str
    sent_count: int


async def select_subject_reminders(conn: asyncpg.Connection, subject: str) -> list[Scheduled]:
    """A subject's sends (pending, done and cancelled), by due time."""
    rows = await conn.fetch(
        "SELECT id, channel, offset_minutes, occurrence, due_at, status, sent_count"
        " FROM reminders WHERE subject = $1 ORDER BY due_at, channel",
        subject,
    )
    return [Scheduled(**dict(r)) for r in rows]
