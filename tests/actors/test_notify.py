"""notify with a real worker against the fake providers: once per key, honest retries, no double send."""

from __future__ import annotations

import secrets
import time

import pytest
import redis

import actors
from actors.notify import notify, update_opt_out
from db.notifications import select_notification
from domain.jobs import JobStatus
from providers.ratelimit import Limit, RateLimiter
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect, fake, fakes, restore_env, set_env  # noqa: F401
from tests.waiting import wait_until

CHANNELS = [("email", "buyer@example.com", "resend"), ("push", "admin", "pushover"), ("chat", "ops", "telegram")]
DATA = {"title": "Heads up", "text": "the scrape finished"}


def key() -> str:
    return f"test:{secrets.token_hex(6)}"


async def record(database_url: str, idempotency_key: str):  # type: ignore[no-untyped-def]
    conn = await connect(database_url)
    try:
        return await select_notification(conn, idempotency_key)
    finally:
        await conn.close()


@pytest.mark.parametrize(("channel", "recipient", "provider"), CHANNELS)
async def test_each_channel_sends_once_and_logs_the_provider_id(
    fake, worker, database_url, channel, recipient, provider
) -> None:
    k = key()
    message = notify.send(channel, recipient, "ops_message", DATA, k)
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert done.result["status"] == "sent" and done.result["provider"] == provider
    sent = getattr(fake, provider).sent
    assert len(sent) == 1
    logged = await record(database_url, k)
    assert logged.status == "sent" and logged.provider == provider
    assert logged.provider_message_id == done.result["provider_message_id"] and logged.sent_at is not None


@pytest.mark.parametrize(("channel", "recipient", "provider"), CHANNELS)
@pytest.mark.parametrize("status", [429, 503])
async def test_429_and_5xx_are_retried_and_delivered_exactly_once(
    fake, worker, database_url, channel, recipient, provider, status
) -> None:
    getattr(fake, provider).fail_next("send", status, retry_after=1)
    started = time.monotonic()
    message = notify.send(channel, recipient, "ops_message", DATA, key())
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED, timeout=30)
    assert done.attempts == 2 and len(getattr(fake, provider).sent) == 1
    assert getattr(fake, provider).calls["send"] == 2
    if status == 429:  # retry-after (1 s; Pushover: its quota reset) was honoured, not a blind backoff
        assert time.monotonic() - started >= 0.9


async def test_a_429_holds_back_every_worker_for_retry_after(fake, worker, redis_client) -> None:
    fake.telegram.fail_next("send", 429, retry_after=2)
    first = notify.send("chat", "ops", "ops_message", DATA, key())
    wait_until(lambda: redis_client.exists("backroom:ratelimit:telegram:blocked"), what="the 429's block")
    second = notify.send("chat", "ops", "ops_message", DATA, key())  # a different message, same provider
    wait_for_status(second.message_id, JobStatus.SUCCEEDED, timeout=30)
    wait_for_status(first.message_id, JobStatus.SUCCEEDED, timeout=30)
    # the second one waited for the block instead of calling Telegram during it
    assert fake.telegram.calls["send"] == 3 and len(fake.telegram.sent) == 2


@pytest.mark.parametrize(
    ("channel", "recipient", "provider", "status", "reason"),
    [
        ("email", "buyer@example.com", "resend", 422, "validation_error"),
        ("push", "someone-else", "pushover", 400, "user identifier is invalid"),
        ("chat", "-100999", "telegram", 403, "bot was blocked"),
    ],
)
async def test_a_permanent_4xx_fails_at_once_with_the_providers_reason(
    fake, worker, database_url, channel, recipient, provider, status, reason
) -> None:
    if provider == "resend":
        fake.resend.fail_next("send", 422)
    if provider == "telegram":
        fake.telegram.blocked.add("-100999")
    k = key()
    message = notify.send(channel, recipient, "ops_message", DATA, k)
    dead = wait_for_status(message.message_id, JobStatus.DEAD)
    assert dead.attempts == 1 and reason in (dead.last_error or "")
    assert (await record(database_url, k)).status == "failed"
    fake.telegram.blocked.discard("-100999")


async def test_the_same_key_never_sends_twice(fake, worker) -> None:
    k = key()
    messages = [notify.send("email", "buyer@example.com", "ops_message", DATA, k) for _ in range(5)]
    for message in messages:
        wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert len(fake.resend.sent) == 1


async def test_a_lost_answer_from_an_idempotent_provider_is_retried_with_the_same_key(fake, worker) -> None:
    fake.resend.hang_next("send", 2.5)  # longer than PROVIDER_TIMEOUT_S: the client gives up, Resend sends
    message = notify.send("email", "buyer@example.com", "ops_message", DATA, key())
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED, timeout=30)
    assert done.attempts >= 2
    wait_until(lambda: fake.resend.calls["send"] >= 2, what="the retry")
    assert len(fake.resend.sent) == 1  # Resend deduplicated the retry by Idempotency-Key


async def test_a_lost_answer_from_pushover_is_never_resent(fake, worker, database_url) -> None:
    fake.pushover.hang_next("send", 2.5)
    k = key()
    message = notify.send("push", "admin", "ops_message", DATA, k)
    dead = wait_for_status(message.message_id, JobStatus.DEAD, timeout=30)
    assert dead.attempts == 1 and "may have been sent" in (dead.last_error or "")
    assert (await record(database_url, k)).status == "unknown"
    wait_until(lambda: len(fake.pushover.sent) == 1, what="the late delivery")  # it did arrive, once
    again = notify.send("push", "admin", "ops_message", DATA, k)  # even asked again, it is not repeated
    wait_for_status(again.message_id, JobStatus.DEAD)
    assert fake.pushover.calls["send"] == 1


async def test_opted_out_recipients_are_skipped(fake, worker, database_url) -> None:
    recipient = f"{secrets.token_hex(4)}@example.com"
    wait_for_status(update_opt_out.send("email", recipient.upper()).message_id, JobStatus.SUCCEEDED)
    k = key()
    message = notify.send("email", recipient, "ops_message", DATA, k)
    done = wait_for_status(message.message_id, JobStatus.SUCCEEDED)
    assert done.result["status"] == "skipped" and fake.resend.sent == []
    assert (await record(database_url, k)).status == "skipped"


async def test_unknown_template_or_missing_field_fails_at_once(fake, worker) -> None:
    unknown = notify.send("email", "a@example.com", "no_such_template", {}, key())
    missing = notify.send("email", "a@example.com", "ops_message", {"title": "only"}, key())
    assert "unknown template" in wait_for_status(unknown.message_id, JobStatus.DEAD).last_error
    assert "needs field 'text'" in wait_for_status(missing.message_id, JobStatus.DEAD).last_error


@pytest.fixture()
def no_telegram(fakes, redis_client):  # type: ignore[no-untyped-def]
    """Settings without Telegram, for a worker started after this fixture."""
    saved = set_env({"TELEGRAM_BOT_TOKEN": ""})
    yield
    restore_env(saved)


async def test_an_unconfigured_provider_fails_the_job_at_once(no_telegram, fake, redis_client, database_url) -> None:
    from dramatiq import Worker

    worker = Worker(actors.broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        k = key()
        message = notify.send("chat", "ops", "ops_message", DATA, k)
        dead = wait_for_status(message.message_id, JobStatus.DEAD)
        assert dead.attempts == 1 and "provider not configured" in dead.last_error
        assert fake.telegram.calls["send"] == 0
        logged = await record(database_url, k)
        assert logged.status == "failed" and "provider not configured" in logged.error
    finally:
        worker.stop()


def test_the_rate_limit_is_shared_by_every_worker(redis_client: redis.Redis) -> None:
    limits = {"resend": Limit(5, burst=1)}
    workers = [RateLimiter(redis_client, "backroom", limits) for _ in range(3)]  # three processes' limiters
    granted, started = 0, time.monotonic()
    while time.monotonic() - started < 1.0:
        granted += sum(1 for limiter in workers if limiter.take("resend") == 0)
        time.sleep(0.01)  # paces the limiters' polling over the measured second
    assert 4 <= granted <= 7  # ~5 per second in total, not 5 per worker
    while (wait := workers[0].take("resend")) == 0:  # a token may have refilled since the last poll
        pass
    assert 0 < wait <= 400  # at most one token's time (200 ms) plus jitter
    workers[1].block("resend", 800)
    assert all(limiter.take("resend") >= 500 for limiter in workers)
