"""Reminders with a real worker against the fake providers: schedules, moves, deletes, preferences."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta, UTC
from typing import Any

import asyncpg

import actors

from actors.notify import notify
from actors.reminders import (
    BATCH,
    MAX_DISPATCHES,
    NEAR_S,
    SLOT_MS,
    STALE_S,
    batches,
    delete_reminder_subject,
    send_due_reminders,
    send_reminder,
    update_preferences,
    upsert_reminder_policy,
    upsert_reminder_subject,
)
from db.notifications import insert_template
from db.reminders import Armed, LogLine, mark_armed, select_unarmed_reminders, update_reminder_due, upsert_preferences
from domain.jobs import JobStatus
from domain.reminders import Preferences
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect, fake, fakes  # noqa: F401
from tests.waiting import eventually, wait_until

DATA = {"title": "Ada's birthday", "text": "in a few days"}


def subject_id() -> str:
    return f"occasion:{secrets.token_hex(6)}"


def upsert(
    subject: str,
    when: datetime,
    *,
    recipient: str = "",
    recurrence: str = "yearly",
    offsets: tuple[int, ...] = (0,),
    email: str = "",
    template: str = "ops_message",
) -> Any:
    """Upsert a timed occasion at `when` (UTC) and wait for it to be stored."""
    email = email or f"{secrets.token_hex(4)}@example.com"
    message = upsert_reminder_subject.send(
        subject,
        recipient or email,
        {"email": email},
        when.date().isoformat(),
        "UTC",
        when.time().isoformat(),
        recurrence,
        list(offsets),
        ["email"],
        template,
        DATA,
    )
    return wait_for_status(message.message_id, JobStatus.SUCCEEDED)


async def rows(conn: asyncpg.Connection, subject: str) -> list[asyncpg.Record]:
    return await conn.fetch("SELECT * FROM reminders WHERE subject = $1 ORDER BY offset_minutes", subject)


async def events(conn: asyncpg.Connection, subject: str) -> list[tuple[str, str | None]]:
    found = await conn.fetch("SELECT event, reason FROM reminder_log WHERE subject = $1 ORDER BY id", subject)
    return [(r["event"], r["reason"]) for r in found]


def soon(seconds: float) -> datetime:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)


async def test_a_due_reminder_is_sent_once_and_a_yearly_one_rolls_forward(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        subject, when = subject_id(), soon(2)
        upsert(subject, when)
        wait_until(lambda: fake.resend.sent, timeout=30, what="the reminder")
        row = await eventually(
            lambda: conn.fetchrow(
                "SELECT * FROM reminders WHERE subject = $1 AND occurrence > $2", subject, when.date()
            ),
            what="roll forward",
        )
        assert row["status"] == "pending" and row["sent_count"] == 1 and row["version"] == 2
        assert row["occurrence"] == date(when.year + 1, when.month, when.day)
        assert [e for e, _ in await events(conn, subject)] == ["queued", "sending", "sent"]
        assert len(fake.resend.sent) == 1
        sent = await conn.fetchrow(
            "SELECT sent_at FROM notifications WHERE idempotency_key = $1",
            f"reminder:{row['id']}:{when.date().isoformat()}",
        )
        assert sent["sent_at"] >= when
        # the old version's message again (a duplicate, a sweep): nothing happens
        again = send_reminder.send(row["id"], 1)
        assert wait_for_status(again.message_id, JobStatus.SUCCEEDED).result == {"status": "superseded"}
        assert len(fake.resend.sent) == 1
    finally:
        await conn.close()


async def test_moving_an_occasion_reschedules_and_deleting_it_cancels(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        subject, when = subject_id(), soon(5 * 86400)
        upsert(subject, when, offsets=(0, 1440))
        before = await rows(conn, subject)
        assert [r["due_at"] for r in before] == [when, when - timedelta(days=1)]
        later = when + timedelta(days=2)
        upsert(subject, later, offsets=(0, 4320))  # moved two days on; the 1-day reminder became 3 days
        after = await rows(conn, subject)
        assert [(r["offset_minutes"], r["status"]) for r in after] == [
            (0, "pending"),
            (1440, "cancelled"),
            (4320, "pending"),
        ]
        assert after[0]["due_at"] == later and after[0]["version"] == before[0]["version"] + 1
        assert after[2]["due_at"] == later - timedelta(days=3)
        stale = send_reminder.send(before[0]["id"], before[0]["version"])  # the pre-move message
        assert wait_for_status(stale.message_id, JobStatus.SUCCEEDED).result == {"status": "superseded"}
        deleted = delete_reminder_subject.send(subject)
        assert wait_for_status(deleted.message_id, JobStatus.SUCCEEDED).result == 2
        assert {r["status"] for r in await rows(conn, subject)} == {"cancelled"}
        assert [e for e, _ in await events(conn, subject)] == [
            "queued",
            "queued",
            "cancelled",
            "queued",
            "queued",
            "cancelled",
            "cancelled",
        ]
        assert fake.resend.sent == []
    finally:
        await conn.close()


async def test_a_deleted_subject_due_now_is_never_sent(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        subject = subject_id()
        upsert(subject, soon(3))
        (row,) = await rows(conn, subject)
        wait_for_status(delete_reminder_subject.send(subject).message_id, JobStatus.SUCCEEDED)
        late = send_reminder.send(row["id"], row["version"])  # the armed message, after the delete
        assert wait_for_status(late.message_id, JobStatus.SUCCEEDED, timeout=30).result == {"status": "superseded"}
        assert fake.resend.sent == []
    finally:
        await conn.close()


async def test_the_sweep_sends_what_has_no_message(fake, worker, database_url, redis_client) -> None:
    conn = await connect(database_url)
    try:
        subject, when = subject_id(), soon(3600)
        upsert(subject, when)
        (row,) = await rows(conn, subject)
        # as if a dead worker dropped it: the send is overdue and no message exists for it
        await conn.execute("UPDATE reminders SET due_at = now() - interval '1 minute' WHERE id = $1", row["id"])
        sweep = send_due_reminders.send()
        assert wait_for_status(sweep.message_id, JobStatus.SUCCEEDED).result >= 1
        wait_until(lambda: fake.resend.sent, timeout=30, what="the swept reminder")
    finally:
        await conn.close()


async def test_quiet_hours_defer_to_their_end_and_the_cap_defers_to_next_midnight(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        quiet, capped = f"quiet-{secrets.token_hex(4)}", f"capped-{secrets.token_hex(4)}"
        now = datetime.now(UTC)
        end = (now + timedelta(seconds=4)).replace(microsecond=0)
        await upsert_preferences(
            conn, quiet, Preferences("UTC", quiet_start=(now - timedelta(hours=1)).time(), quiet_end=end.time())
        )
        await upsert_preferences(conn, capped, Preferences("Asia/Tokyo", daily_cap=1))
        first, second, hushed = subject_id(), subject_id(), subject_id()
        upsert(first, soon(1), recipient=capped, recurrence="none")
        upsert(second, soon(1), recipient=capped, recurrence="none")
        upsert(hushed, soon(1), recipient=quiet, recurrence="none")

        async def settled() -> list[asyncpg.Record] | None:
            found = await conn.fetch(
                "SELECT subject, event, reason FROM reminder_log WHERE recipient = ANY($1::text[]) ORDER BY id",
                [quiet, capped],
            )
            events = [(r["subject"], r["event"]) for r in found]
            sent = {subject for subject, event in events if event == "sent"}
            held = {subject for subject, event in events if event == "deferred"}
            return found if hushed in sent and len(sent & {first, second}) == 1 and held & {first, second} else None

        log = await eventually(settled, timeout=30, what="one capped send, the other deferred, and the quiet one")
        assert len(fake.resend.sent) == 2
        deferred = {r["subject"]: r["reason"] for r in log if r["event"] == "deferred"}
        assert deferred[hushed].startswith("quiet hours until")
        assert [s for s in (first, second) if s in deferred] and "daily cap 1" in deferred.get(
            first, deferred.get(second, "")
        )
        sent_at = await eventually(
            lambda: conn.fetchval(  # the provider answered; the record follows
                "SELECT sent_at FROM notifications n"
                " JOIN reminders r ON n.idempotency_key LIKE 'reminder:' || r.id || ':%' WHERE r.subject = $1",
                hushed,
            ),
            what="the quiet send's record",
        )
        assert sent_at >= end
        tokyo_midnight = datetime.combine(
            (now + timedelta(hours=9)).date() + timedelta(days=1), time(0), tzinfo=UTC
        ) - timedelta(hours=9)
        capped_due = await conn.fetchval(
            "SELECT due_at FROM reminders WHERE subject = ANY($1::text[]) AND status = 'pending'", [first, second]
        )
        assert capped_due == tokyo_midnight
    finally:
        await conn.close()


async def test_an_opted_out_recipient_is_skipped_and_logged(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        who = f"out-{secrets.token_hex(4)}"
        await upsert_preferences(conn, who, Preferences(opted_out=True))
        subject = subject_id()
        upsert(subject, soon(1), recipient=who)
        await eventually(
            lambda: conn.fetchval(
                "SELECT 1 FROM reminder_log WHERE subject = $1 AND event = 'skipped' AND reason = 'opted out'", subject
            ),
            timeout=30,
            what="the skip",
        )
        (row,) = await rows(conn, subject)
        assert row["status"] == "pending" and row["sent_count"] == 0 and row["occurrence"].year > date.today().year
        assert fake.resend.sent == []
    finally:
        await conn.close()


async def test_a_subject_copies_its_policy_and_preferences_are_stored(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        policy = f"policy-{secrets.token_hex(4)}"
        done = upsert_reminder_policy.send(policy, "birthdays", [20160, 4320, 1440], ["email"], "08:30")
        wait_for_status(done.message_id, JobStatus.SUCCEEDED)
        subject = subject_id()
        message = upsert_reminder_subject.send(
            subject,
            "p-1",
            {"email": "p@example.com"},
            "2099-07-01",
            "Asia/Tokyo",
            None,
            "yearly",
            [],
            [],
            "ops_message",
            DATA,
            policy_id=policy,
        )
        assert wait_for_status(message.message_id, JobStatus.SUCCEEDED).result == 3
        assert [(r["offset_minutes"], r["due_at"]) for r in await rows(conn, subject)] == [
            (1440, datetime(2099, 6, 29, 23, 30, tzinfo=UTC)),  # 08:30 JST on 30 June
            (4320, datetime(2099, 6, 27, 23, 30, tzinfo=UTC)),
            (20160, datetime(2099, 6, 16, 23, 30, tzinfo=UTC)),
        ]
        unknown = upsert_reminder_subject.send(
            subject_id(),
            "p-1",
            {"email": "p@example.com"},
            "2099-07-01",
            "UTC",
            None,
            "none",
            [],
            [],
            "ops_message",
            DATA,
            policy_id="no-such",
        )
        assert "no reminder policy" in wait_for_status(unknown.message_id, JobStatus.DEAD).last_error
        who = f"pref-{secrets.token_hex(4)}"
        stored = update_preferences.send(who, "Europe/Paris", ["push"], "22:00", "07:00", 5, False)
        wait_for_status(stored.message_id, JobStatus.SUCCEEDED)
        row = await conn.fetchrow("SELECT * FROM notification_preferences WHERE recipient = $1", who)
        assert (row["time_zone"], row["channels_off"], row["quiet_start"], row["daily_cap"]) == (
            "Europe/Paris",
            ["push"],
            time(22),
            5,
        )
        # a subject naming no policy and no offsets takes its recipient's default policy
        wait_for_status(update_preferences.send(who, default_policy_id=policy).message_id, JobStatus.SUCCEEDED)
        plain = subject_id()
        message = upsert_reminder_subject.send(
            plain, who, {"email": "p@example.com"}, "2099-07-01", "UTC", None, "none", [], [], "ops_message", DATA
        )
        assert wait_for_status(message.message_id, JobStatus.SUCCEEDED).result == 3
        assert [r["offset_minutes"] for r in await rows(conn, plain)] == [1440, 4320, 20160]
    finally:
        await conn.close()


async def _sent_lines(conn: asyncpg.Connection, subjects: list[str], n: int) -> list[asyncpg.Record] | None:
    found = await conn.fetch(
        "SELECT subject, template, template_version FROM reminder_log"
        " WHERE event = 'sent' AND subject = ANY($1::text[])",
        subjects,
    )
    return found if len(found) >= n else None


async def test_a_template_edit_takes_effect_for_the_next_send_and_the_log_records_the_version(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        name = f"birthday_{secrets.token_hex(3)}"
        async with conn.transaction():
            await insert_template(conn, name, "*", "en", "For $title", "v1: $text on $occurrence", by="test")
        first = subject_id()
        upsert(first, soon(1), recurrence="none", template=name)
        wait_until(lambda: len(fake.resend.sent) == 1, timeout=30, what="the first send")
        async with conn.transaction():
            await insert_template(conn, name, "*", "en", "For $title", "v2: $text ($days_before days)", by="test")
            await insert_template(conn, name, "push", "en", "not for email", "push only", by="test")
        second = subject_id()
        upsert(second, soon(1), recurrence="none", template=name)
        wait_until(lambda: len(fake.resend.sent) == 2, timeout=30, what="the second send")
        texts = sorted(m["text"] for m in fake.resend.sent)
        assert texts[0].startswith("v1: in a few days on 20") and texts[1] == "v2: in a few days (0 days)"
        # the send is logged after the provider accepted it
        logged = await eventually(lambda: _sent_lines(conn, [first, second], 2), timeout=30, what="both sends logged")
        assert {r["subject"]: (r["template"], r["template_version"]) for r in logged} == {
            first: (name, 1),
            second: (name, 2),
        }
    finally:
        await conn.close()


async def test_a_send_that_keeps_failing_is_given_up_instead_of_swept_forever(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        subject, when = subject_id(), soon(3600)
        upsert(subject, when)
        (row,) = await rows(conn, subject)
        await conn.execute("UPDATE reminders SET due_at = now() - interval '1 minute' WHERE id = $1", row["id"])
        key = f"reminder:{row['id']}:{when.date().isoformat()}"
        await conn.executemany(
            "INSERT INTO reminder_log (reminder_id, subject, recipient, channel, occurrence, event,"
            " idempotency_key) VALUES ($1, $2, 'r', 'email', $3, 'sending', $4)",
            [(row["id"], subject, when.date(), key)] * MAX_DISPATCHES,
        )
        message = send_reminder.send(row["id"], row["version"])
        assert wait_for_status(message.message_id, JobStatus.SUCCEEDED).result == {"status": "superseded"}
        assert (await events(conn, subject))[-1] == ("failed", f"gave up after {MAX_DISPATCHES} attempts")
        (after,) = await rows(conn, subject)
        assert after["occurrence"].year == when.year + 1 and after["sent_count"] == 0
        assert fake.resend.calls["send"] == 0
    finally:
        await conn.close()


async def test_moves_applied_out_of_order_end_at_the_newest_and_an_older_delete_is_ignored(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        subject, email = subject_id(), f"{secrets.token_hex(4)}@example.com"

        def move(day: str, revision: int) -> Any:
            message = upsert_reminder_subject.send(
                subject,
                email,
                {"email": email},
                day,
                "UTC",
                None,
                "none",
                [0],
                ["email"],
                "ops_message",
                DATA,
                revision=revision,
            )
            return wait_for_status(message.message_id, JobStatus.SUCCEEDED).result

        assert move("2099-05-02", 2_000) == 1  # the newer move ran first
        assert move("2099-05-01", 1_000) == 0  # the older one, late: ignored
        assert [r["occurrence"] for r in await rows(conn, subject)] == [date(2099, 5, 2)]
        stale = delete_reminder_subject.send(subject, revision=1_500)
        assert wait_for_status(stale.message_id, JobStatus.SUCCEEDED).result == 0
        assert [r["status"] for r in await rows(conn, subject)] == ["pending"]
        fresh = delete_reminder_subject.send(subject, revision=3_000)
        assert wait_for_status(fresh.message_id, JobStatus.SUCCEEDED).result == 1
        assert move("2099-05-03", 2_500) == 0  # an upsert older than the delete does not bring it back
        assert [r["status"] for r in await rows(conn, subject)] == ["cancelled"]
    finally:
        await conn.close()


async def test_a_retry_after_a_template_edit_sends_the_version_its_first_attempt_used(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        name = f"pinned_{secrets.token_hex(3)}"
        async with conn.transaction():
            await insert_template(conn, name, "email", "en", "s", "first version", by="test")
        fake.resend.fail_next("send", 429, retry_after=2)  # the retry comes 2 s later, after the edit
        message = notify.send("email", "pin@example.com", name, {}, f"test:{secrets.token_hex(6)}")
        wait_until(lambda: fake.resend.calls["send"] >= 1, what="the first attempt")
        async with conn.transaction():
            await insert_template(conn, name, "email", "en", "s", "second version", by="test")
        done = wait_for_status(message.message_id, JobStatus.SUCCEEDED, timeout=30)
        assert done.result["template_version"] == 1 and [m["text"] for m in fake.resend.sent] == ["first version"]
    finally:
        await conn.close()


def test_sends_due_in_one_slot_share_a_message_of_at_most_batch_sends() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    at = [now + timedelta(milliseconds=ms) for ms in (10, 20, SLOT_MS + 5)] + [now + timedelta(seconds=5)] * (BATCH + 1)
    soon = [Armed(i, 1, due) for i, due in enumerate(at)]
    found = batches(list(reversed(soon)), now)
    assert [len(sends) for _, sends in found] == [2, 1, BATCH, 1]
    assert found[0] == (20, [[0, 1], [1, 1]])  # sent when the slot's last send is due
    assert found[1] == (SLOT_MS + 5, [[2, 1]])
    assert {delay for delay, _ in found[2:]} == {5000}
    assert batches([Armed(9, 3, now - timedelta(seconds=1))], now) == [(0, [[9, 3]])]  # overdue: at once


async def test_the_sweep_arms_a_send_once_and_again_when_it_is_stale(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        subject = subject_id()
        upsert(subject, soon(3600))
        (row,) = await rows(conn, subject)

        async def unarmed() -> list[int]:
            return [a.id for a in await select_unarmed_reminders(conn, NEAR_S, 1000, STALE_S)]

        assert row["id"] not in await unarmed()  # not due soon
        await conn.execute("UPDATE reminders SET due_at = now() + interval '1 minute' WHERE id = $1", row["id"])
        assert row["id"] in await unarmed()
        await mark_armed(conn, [Armed(row["id"], row["version"] + 1, row["due_at"])])  # another version's message
        assert row["id"] in await unarmed()
        await mark_armed(conn, [Armed(row["id"], row["version"], row["due_at"])])
        assert row["id"] not in await unarmed()
        stale = timedelta(seconds=STALE_S + 5)
        await conn.execute("UPDATE reminders SET due_at = now() - $2::interval WHERE id = $1", row["id"], stale)
        assert row["id"] in await unarmed()  # overdue: its message may have died with a worker
        # marked here without a message: close it, so a later test's sweep does not send it
        await conn.execute("UPDATE reminders SET status = 'cancelled' WHERE id = $1", row["id"])
    finally:
        await conn.close()


def _own_jobs(ids: list[int]) -> list[Any]:
    """The send_reminder jobs of these sends."""
    index = actors.broker.client.zrange(actors.broker.jobs.keys.job_index, 0, -1)
    found = (actors.broker.jobs.get(job_id.decode()) for job_id in index)
    return [r for r in found if r is not None and r.actor == "send_reminder" and r.args and r.args[0] in ids]


async def test_a_send_that_fails_in_its_slot_is_handed_to_its_own_job_and_goes_out_once(
    fake, worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        subjects = [subject_id(), subject_id()]
        for subject in subjects:
            upsert(subject, soon(3600), recurrence="none")
        ids = [(await rows(conn, subject))[0]["id"] for subject in subjects]
        await conn.execute("UPDATE reminders SET due_at = now() WHERE id = ANY($1::bigint[])", ids)
        fake.resend.fail_next("send", 500)  # one of the slot's two sends meets a 5xx
        sweep = send_due_reminders.send()
        assert wait_for_status(sweep.message_id, JobStatus.SUCCEEDED).result >= 2
        sent = await eventually(lambda: _sent_lines(conn, subjects, 2), timeout=60, what="both sends logged")
        assert sorted(r["subject"] for r in sent) == sorted(subjects)  # each logged sent once
        wait_until(
            lambda: [r for r in _own_jobs(ids) if r.status is JobStatus.SUCCEEDED], timeout=30, what="its own job"
        )
        assert len(_own_jobs(ids)) == 1  # only the failed one was handed over
    finally:
        await conn.close()


async def test_an_outcome_only_found_is_logged_by_the_attempt_that_moves_the_send(fake, worker, database_url) -> None:
    # two messages of one version can both find the notification sent (the first attempt's roll
    # not yet done): only the one whose update moves the send logs it
    conn = await connect(database_url)
    try:
        subject = subject_id()
        upsert(subject, soon(3600))
        (row,) = await rows(conn, subject)
        line = LogLine("sent", None, "ops_message", None, "k")
        when = row["due_at"] + timedelta(days=365)
        for version in (row["version"], row["version"]):  # the second comes after the first moved it
            await update_reminder_due(
                conn, row["id"], version, occurrence=when.date(), due_at=when, sent=True, log=line, only_if_moved=True
            )
        assert [e for e, _ in await events(conn, subject)].count("sent") == 1
        await update_reminder_due(conn, row["id"], row["version"], occurrence=None, due_at=when, sent=True, log=line)
        assert [e for e, _ in await events(conn, subject)].count("sent") == 2  # a send that went out: logged anyway
        await conn.execute("UPDATE reminders SET status = 'cancelled' WHERE id = $1", row["id"])
    finally:
        await conn.close()
