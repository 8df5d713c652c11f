"""Storefront events with a real worker: outbox, relay, signed deliveries, order per resource, 410, the sweep."""

from __future__ import annotations

from actors.events import sweep_events
from actors.orders import handle_stripe_event
from db.events import relay_events
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status
from tests.events_support import (  # noqa: F401
    add_endpoint,
    fast_retries,
    item_events,
    node_verify,
    npm_verifier,
    storefronts,
)
from tests.orders_support import connect, fake, fakes, insert_item  # noqa: F401
from tests.waiting import eventually, wait_until

SOURCE_URL = "https://www.vinted.fr/items/987654-private-source"


async def test_a_stripe_purchase_of_a_1_of_1_ends_in_an_item_sold_that_node_verifies(
    fake, storefronts, npm_verifier, worker, database_url
) -> None:
    front = storefronts[0]
    conn = await connect(database_url)
    try:
        await add_endpoint(conn, front, "item.sold", "order.status_changed")
        item = await insert_item(conn, "one_of_one", source_url=SOURCE_URL, title="Margiela tabi", price_cents=42000)
        event = fake.stripe.checkout_completed(items=str(item), amount_total=42000)
        wait_for_status(handle_stripe_event.send(event["id"]).message_id, JobStatus.SUCCEEDED)
        sold = wait_until(lambda: [e for e in item_events(front, item) if e["type"] == "item.sold"], what="item.sold")
        assert len(sold) == 1 and sold[0]["data"]["changed"] == {"status": "sold"}
        received = next(r for r in front.received if r.body["type"] == "item.sold")
        assert received.verified and received.headers["webhook-id"].startswith("evt_")
        assert node_verify(npm_verifier, front.secret, received) == received.body
        assert "vinted" not in received.raw.decode()  # never a source URL
        tampered = type(received)(received.headers, received.raw.replace(b"sold", b"sole"), {}, False, 0.0)
        try:
            node_verify(npm_verifier, front.secret, tampered)
        except Exception as error:  # noqa: BLE001  (CalledProcessError: Node refused it, as it must)
            assert "CalledProcessError" in type(error).__name__
        else:
            raise AssertionError("Node accepted a tampered body")
    finally:
        await conn.close()


async def test_an_endpoint_down_for_a_while_gets_each_event_once_in_order(
    storefronts, fast_retries, worker, database_url
) -> None:
    front = storefronts[0]
    conn = await connect(database_url)
    try:
        await add_endpoint(conn, front)
        front.fail_next("events", 503, times=6)
        item = await insert_item(conn, "stable", stock=10)
        for stock in (9, 8, 7, 6, 5):
            await conn.execute("UPDATE items SET stock = $2 WHERE id = $1", item, stock)
        await conn.execute("UPDATE items SET title = 'Renamed' WHERE id = $1", item)
        got = wait_until(
            lambda: len(item_events(front, item)) >= 7 and item_events(front, item), timeout=60, what="all seven events"
        )
        assert [e["data"]["seq"] for e in got] == list(range(1, 8))  # in order, each once
        assert [e["type"] for e in got] == ["item.available"] + ["item.stock_changed"] * 5 + ["item.updated"]
        assert [e["data"]["changed"].get("stock") for e in got[1:6]] == [9, 8, 7, 6, 5]
        assert front.calls["events"] >= 7 + 6
        log = await conn.fetch("SELECT status_code FROM delivery_attempts ORDER BY id")
        assert [r["status_code"] for r in log].count(503) == 6
        assert await conn.fetchval("SELECT failing_since FROM storefront_endpoints") is None
    finally:
        await conn.close()


async def test_410_disables_the_endpoint_and_nothing_more_is_sent(
    fake, storefronts, fast_retries, worker, database_url
) -> None:
    front = storefronts[0]
    conn = await connect(database_url)
    try:
        endpoint = await add_endpoint(conn, front)
        front.fail_next("events", 410)
        item = await insert_item(conn, "stable", stock=3)
        row = await eventually(
            lambda: conn.fetchrow(
                "SELECT enabled, disabled_reason FROM storefront_endpoints WHERE id = $1 AND NOT enabled", endpoint.id
            ),
            what="the endpoint disabled",
        )
        assert "410" in row["disabled_reason"]
        wait_until(lambda: any("disabled" in p["title"] for p in fake.pushover.sent), what="the admin alerted")
        await conn.execute("UPDATE items SET stock = 2 WHERE id = $1", item)
        await eventually(
            lambda: conn.fetchval(
                "SELECT bool_and(relayed_at IS NOT NULL) FROM storefront_events WHERE resource_id = $1", str(item)
            ),
            what="the second event relayed",
        )
        assert await conn.fetchval("SELECT count(*) FROM event_deliveries") == 1  # none for a disabled endpoint
        wait_for_status(sweep_events.send(0).message_id, JobStatus.SUCCEEDED)
        assert front.calls["events"] == 1 and front.events() == []
    finally:
        await conn.close()


async def test_an_endpoint_failing_for_a_day_is_disabled_with_an_alert(
    fake, storefronts, fast_retries, worker, database_url
) -> None:
    front = storefronts[0]
    conn = await connect(database_url)
    try:
        endpoint = await add_endpoint(conn, front)
        await conn.execute("UPDATE storefront_endpoints SET failing_since = now() - interval '25 hours'")
        front.fail_next("events", 500)
        await insert_item(conn, "stable", stock=3)
        await eventually(
            lambda: conn.fetchval("SELECT NOT enabled FROM storefront_endpoints WHERE id = $1", endpoint.id),
            what="disabled",
        )
        wait_until(lambda: any("disabled" in p["title"] for p in fake.pushover.sent), what="the admin alerted")
        assert front.calls["events"] == 1
    finally:
        await conn.close()


async def test_a_relay_that_died_after_its_commit_loses_nothing(storefronts, redis_client, database_url) -> None:
    """Events committed with no relay running, and deliveries committed whose messages were never sent."""
    import actors
    from dramatiq import Worker

    front = storefronts[0]
    conn = await connect(database_url)
    try:
        await add_endpoint(conn, front)
        first = await insert_item(conn, "stable", stock=5)
        async with conn.transaction():  # a relay's transaction, then its process gone before any send
            count, deliveries = await relay_events(conn, limit=10_000)
        assert deliveries and count >= 1
        second = await insert_item(conn, "stable", stock=5)  # committed while no worker listens
        worker = Worker(actors.broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            wait_for_status(sweep_events.send(0).message_id, JobStatus.SUCCEEDED)
            wait_until(lambda: item_events(front, first) and item_events(front, second), what="both delivered")
        finally:
            worker.stop()
        assert len(item_events(front, first)) == 1 and len(item_events(front, second)) == 1
    finally:
        await conn.close()


async def test_deliveries_refuse_private_addresses_unless_allowed(storefronts, worker, database_url) -> None:
    from tests.orders_support import restore_env, set_env

    saved = set_env({"EVENTS_ALLOW_ADDRESSES": "public", "EVENTS_MIN_BACKOFF_MS": "60000"})
    conn = await connect(database_url)
    try:
        await add_endpoint(conn, storefronts[0])
        await insert_item(conn, "stable", stock=1)
        error = await eventually(
            lambda: conn.fetchval("SELECT error FROM delivery_attempts LIMIT 1"), what="a refused attempt"
        )
        assert "may not reach" in error and storefronts[0].calls["events"] == 0
    finally:
        restore_env(saved)
        await conn.close()
