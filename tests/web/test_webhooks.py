"""Webhooks (Stripe, Printify), the order admin endpoints and POST /v1/jobs/notify."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis
import redis.asyncio
from dramatiq import Worker

import actors
from cli.stack import free_port
from tests.actors.helpers import wait_for_quiet
from tests.orders_support import (  # noqa: F401
    connect,
    fake,
    fakes,
    insert_item,
    order_of,
    restore_env,
    set_env,
)
from tests.waiting import eventually
from tests.web.conftest import bearer

QUEUE = actors.broker.jobs.keys.queue("orders")


async def post_stripe(client, body: bytes, signature: str | None):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await client.post("/v1/webhooks/stripe", data=body, headers=headers)


@pytest.fixture()
def running_worker(redis_client):  # type: ignore[no-untyped-def]
    worker = Worker(actors.broker, worker_threads=4, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


async def test_a_signed_event_is_enqueued_and_answered_200(fake, client, redis_client: redis.Redis) -> None:
    body, signature = fake.stripe.signed(fake.stripe.checkout_completed(items="1"))
    response = await post_stripe(client, body, signature)
    assert response.status_code == 200
    assert (await response.get_json())["received"] is True
    assert redis_client.llen(QUEUE) == 1


@pytest.mark.parametrize("tamper", ["body", "secret", "stale", "future", "missing"])
async def test_a_bad_signature_is_400_and_nothing_is_enqueued(
    fake, client, redis_client: redis.Redis, tamper: str
) -> None:
    event = fake.stripe.checkout_completed(items="1")
    skew = {"stale": -301, "future": 301}.get(tamper)
    body, signature = fake.stripe.signed(event, timestamp=int(time.time()) + skew if skew else None)
    if tamper == "body":
        body = body.replace(b'"paid"', b'"PAID"')
    if tamper == "secret":
        from providers.payments import sign_payload

        signature = sign_payload(body, "whsec_someone_else")
    response = await post_stripe(client, body, None if tamper == "missing" else signature)
    assert response.status_code == 400
    assert redis_client.dbsize() == 0


async def test_ten_deliveries_of_one_event_make_one_order(fake, client, running_worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "stable", stock=3)
        event = fake.stripe.checkout_completed(items=str(item))
        body, signature = fake.stripe.signed(event)
        answers = await asyncio.gather(*(post_stripe(client, body, signature) for _ in range(10)))
        assert [a.status_code for a in answers] == [200] * 10
        session = event["data"]["object"]["id"]
        await eventually(lambda: order_of(conn, session), what="the order")
        await eventually(
            lambda: conn.fetchval(
                "SELECT processed_at IS NOT NULL FROM webhook_events WHERE event_id = $1", event["id"]
            ),
            what="processing",
        )
        for _ in range(10):  # Stripe retries after the first has been handled
            assert (await post_stripe(client, body, signature)).status_code == 200
        await asyncio.to_thread(wait_for_quiet)  # any job the retries enqueued has run
        assert await conn.fetchval("SELECT count(*) FROM orders WHERE stripe_session_id = $1", session) == 1
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", item) == 2
    finally:
        await conn.close()


async def test_redis_down_is_503_so_stripe_delivers_again(fake, app, client, redis_client, monkeypatch) -> None:
    body, signature = fake.stripe.signed(fake.stripe.checkout_completed(items="1"))
    dead_url = f"redis://127.0.0.1:{free_port()}/0"
    dead = redis.ConnectionPool.from_url(dead_url, socket_connect_timeout=0.2)
    monkeypatch.setattr(actors.broker.client, "connection_pool", dead)
    async_dead = redis.asyncio.ConnectionPool.from_url(dead_url, socket_connect_timeout=0.2)
    monkeypatch.setattr(app.app.config["REDIS"], "connection_pool", async_dead)
    response = await post_stripe(client, body, signature)
    monkeypatch.undo()
    assert response.status_code == 503
    assert redis_client.dbsize() == 0


async def test_stripe_webhooks_unconfigured_answer_503(fakes, client, redis_client) -> None:
    saved = set_env({"STRIPE_WEBHOOK_SECRET": ""})
    try:
        response = await post_stripe(client, b"{}", "t=1,v1=00")
    finally:
        restore_env(saved)
    assert response.status_code == 503 and redis_client.dbsize() == 0


async def test_printify_webhook_is_hmac_verified(fake, client, redis_client: redis.Redis) -> None:
    fake.printify.orders["abc"] = {"id": "abc", "status": "in-production", "shipments": [], "external_id": "1"}
    body, signature = fake.printify.webhook("abc")
    bad = await client.post("/v1/webhooks/printify", data=body, headers={"X-Pfy-Signature": "sha256=" + "0" * 64})
    assert bad.status_code == 400 and redis_client.dbsize() == 0
    good = await client.post("/v1/webhooks/printify", data=body, headers={"X-Pfy-Signature": signature})
    assert good.status_code == 200 and redis_client.llen(QUEUE) == 1
    again = await client.post("/v1/webhooks/printify", data=body, headers={"X-Pfy-Signature": signature})
    assert again.status_code == 200 and redis_client.llen(QUEUE) == 1  # same event id: deduplicated
    other, other_sig = fake.printify.webhook("abc", topic="product:deleted")
    ignored = await client.post("/v1/webhooks/printify", data=other, headers={"X-Pfy-Signature": other_sig})
    assert (await ignored.get_json())["ignored"] == "product:deleted" and redis_client.llen(QUEUE) == 1


async def test_order_endpoints_need_admin_and_check_the_status(
    fake, client, tokens, running_worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(
            conn, "one_of_one", source_url="https://www.grailed.com/listings/1-private", price_cents=7000
        )
        event = fake.stripe.checkout_completed(items=str(item), amount_total=7000)
        body, signature = fake.stripe.signed(event)
        assert (await post_stripe(client, body, signature)).status_code == 200
        order = await eventually(lambda: order_of(conn, event["data"]["object"]["id"]), what="the order")
        url = f"/v1/orders/{order['id']}"
        assert (await client.post(f"{url}/cancel", headers=bearer(tokens["jobs"]))).status_code == 403
        view = await (await client.get(url, headers=bearer(tokens["reader"]))).get_json()
        assert view["status"] == "on_hold" and view["lines"][0]["kind"] == "one_of_one"
        assert "private" not in json.dumps(view)
        early = await client.post(f"{url}/dispatch", json={"carrier": "dhl"}, headers=bearer(tokens["admin"]))
        assert early.status_code == 409
        cancelled = await client.post(f"{url}/cancel", headers=bearer(tokens["admin"]))
        assert cancelled.status_code == 202 and (await cancelled.get_json())["status_url"]
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", order["id"]), what="the refund"
        )
        assert await conn.fetchval("SELECT status FROM items WHERE id = $1", item) == "available"
        assert (await client.post("/v1/orders/999999999/cancel", headers=bearer(tokens["admin"]))).status_code == 404
        bad = await client.post(f"{url}/dispatch", json={"tracking_url": "ftp://x"}, headers=bearer(tokens["admin"]))
        assert bad.status_code == 422
    finally:
        await conn.close()


async def test_an_order_under_review_is_shown_and_can_be_cancelled(
    fake, client, tokens, running_worker, database_url
) -> None:
    conn = await connect(database_url)
    try:
        item = await insert_item(conn, "one_of_one", price_cents=62200)
        event = fake.stripe.checkout_completed(items=str(item), amount_total=5000)
        body, signature = fake.stripe.signed(event)
        assert (await post_stripe(client, body, signature)).status_code == 200
        order = await eventually(lambda: order_of(conn, event["data"]["object"]["id"]), what="the order")
        view = await (await client.get(f"/v1/orders/{order['id']}", headers=bearer(tokens["reader"]))).get_json()
        assert view["status"] == "needs_review" and "622.00" in view["review_reason"]
        cancelled = await client.post(f"/v1/orders/{order['id']}/cancel", headers=bearer(tokens["admin"]))
        assert cancelled.status_code == 202
        await eventually(
            lambda: conn.fetchval("SELECT stripe_refund_id FROM orders WHERE id = $1", order["id"]), what="the refund"
        )
    finally:
        await conn.close()


async def test_notify_enqueues_for_a_configured_provider(fake, client, tokens, redis_client) -> None:
    body = {
        "channel": "chat",
        "recipient": "ops",
        "template": "ops_message",
        "data": {"title": "t", "text": "x"},
        "idempotency_key": "ops:1",
    }
    response = await client.post("/v1/jobs/notify", json=body, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    assert redis_client.llen(actors.broker.jobs.keys.queue("notify")) == 1


async def test_notify_validates_the_template_before_enqueueing(fake, client, tokens, redis_client) -> None:
    unknown = {
        "channel": "email",
        "recipient": "a@example.com",
        "template": "nope",
        "data": {},
        "idempotency_key": "k1",
    }
    missing = {**unknown, "template": "ops_message", "data": {"title": "only"}}
    for body, field in ((unknown, "template"), (missing, "data")):
        response = await client.post("/v1/jobs/notify", json=body, headers=bearer(tokens["jobs"]))
        assert response.status_code == 422 and field in (await response.get_json())["errors"]
    assert redis_client.dbsize() == 0


async def test_notify_to_an_unconfigured_provider_is_503(fakes, client, tokens, redis_client) -> None:
    saved = set_env({"PUSHOVER_TOKEN": ""})
    try:
        body = {
            "channel": "push",
            "recipient": "admin",
            "template": "ops_message",
            "data": {"title": "t", "text": "x"},
            "idempotency_key": "p:1",
        }
        response = await client.post("/v1/jobs/notify", json=body, headers=bearer(tokens["jobs"]))
        fallback = set_env({"NOTIFY_FALLBACK": "console"})
        try:
            console = await client.post("/v1/jobs/notify", json=body, headers=bearer(tokens["jobs"]))
        finally:
            restore_env(fallback)
    finally:
        restore_env(saved)
    assert response.status_code == 503 and "provider not configured" in (await response.get_json())["detail"]
    assert console.status_code == 202
