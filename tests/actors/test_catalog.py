"""Catalog in with a real worker: Payload product events replayed and out of order, brands, next steps."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, UTC
from typing import Any

import actors
from actors.catalog import mirror_brand, mirror_product
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def product_event(
    product_id: str, *, minutes: int, title: str, image: str = "https://cms.example.com/a.jpg", stock: int | None = 10
) -> dict[str, Any]:
    """A product.changed as Payload sends it (Gifter seed, section 4), as of T0 + minutes."""
    return {
        "event": "product.changed",
        "payloadProductId": product_id,
        "brand": {
            "payloadBrandId": f"b-{product_id}",
            "name": "Brand Name",
            "status": "approved",
            "country": "GB",
            "baseCurrency": "GBP",
        },
        "product": {
            "title": title,
            "slug": "product",
            "status": "published",
            "visibleToGifter": True,
            "shortDescription": "Short",
            "description": "Long",
            "primaryImageUrl": image,
            "galleryImageUrls": [],
            "defaultPrice": 12900,
            "defaultCurrency": "GBP",
            "giftTags": ["For the ritualist"],
            "occasionFit": ["birthday"],
            "styleTags": ["minimal"],
        },
        "variants": [
            {
                "payloadVariantId": f"v-{product_id}",
                "sku": "SKU-1",
                "optionValues": [{"option": "Size", "value": "M"}],
                "price": 12900,
                "currency": "GBP",
                "stock": stock,
                "stripePriceId": "price_1",
            }
        ],
        "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
    }


def run(actor, event_id: str, payload: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    record = wait_for_status(actor.send(event_id, payload).message_id, JobStatus.SUCCEEDED)
    return record.result  # type: ignore[return-value]


async def test_a_product_replayed_ten_times_out_of_order_is_one_item_with_the_newest_content(
    worker, database_url
) -> None:
    pid = f"p-{datetime.now().timestamp()}"
    versions = [product_event(pid, minutes=m, title=f"Title v{m}") for m in (1, 2, 3, 4)]
    order = [
        (f"{pid}:e4", versions[3]),
        (f"{pid}:e1", versions[0]),
        (f"{pid}:e3", versions[2]),
        (f"{pid}:e2", versions[1]),
    ] + [(f"{pid}:e4", versions[3])] * 6
    results = [run(mirror_product, event_id, payload) for event_id, payload in order]
    assert sum(1 for r in results if r.get("items")) == 1  # only the newest applied
    assert sum(1 for r in results if r.get("stale")) == 3 and sum(1 for r in results if r.get("replayed")) == 6
    assert sum(len(r.get("rehost", [])) for r in results) == 1  # one image job (then one embedding)
    conn = await connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, title, kind, stock, status, brand, price_cents, source_url FROM items"
            " WHERE source = 'payload' AND attributes ->> 'payload_product_id' = $1",
            pid,
        )
        assert len(rows) == 1
        item = rows[0]
        assert (item["title"], item["kind"], item["stock"], item["status"]) == (
            "Title v4 - M",
            "stable",
            10,
            "available",
        )
        assert (item["brand"], item["price_cents"], item["source_url"]) == ("Brand Name", 12900, None)
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM webhook_events WHERE provider = 'payload' AND event_id LIKE $1", f"{pid}:%"
            )
            == 4
        )
        # the next update with only a new title: enrichment, no new image work; then one out of stock
        retitled = product_event(pid, minutes=5, title="Title v5")
        result = run(mirror_product, f"{pid}:e5", retitled)
        assert result["rehost"] == [] and len(result["enrich"]) == 1
        restocked = copy.deepcopy(retitled) | {"ts": (T0 + timedelta(minutes=6)).isoformat()}
        restocked["variants"][0]["stock"] = 3
        assert run(mirror_product, f"{pid}:e6", restocked) | {} == {
            "event_id": f"{pid}:e6",
            "items": [item["id"]],
            "rehost": [],
            "enrich": [],
        }
        assert await conn.fetchval("SELECT stock FROM items WHERE id = $1", item["id"]) == 3
        kinds = [
            r["event_type"]
            for r in await conn.fetch(
                "SELECT event_type FROM storefront_events WHERE resource = 'item' AND resource_id = $1 ORDER BY seq",
                str(item["id"]),
            )
        ]
        assert kinds == ["item.available", "item.updated", "item.stock_changed"]
    finally:
        await conn.close()


async def test_a_brand_rename_reaches_its_items_and_an_older_one_does_not(worker, database_url) -> None:
    pid = f"pb-{datetime.now().timestamp()}"
    run(mirror_product, f"{pid}:p", product_event(pid, minutes=1, title="Mug", stock=None))
    brand = {"payloadBrandId": f"b-{pid}", "name": "Renamed"}
    assert (
        run(
            mirror_brand,
            f"{pid}:b2",
            {"event": "brand.changed", "brand": brand, "ts": (T0 + timedelta(minutes=9)).isoformat()},
        )["applied"]
        is True
    )
    old = {"event": "brand.changed", "brand": brand | {"name": "Old"}, "ts": T0.isoformat()}
    assert run(mirror_brand, f"{pid}:b1", old)["applied"] is False
    conn = await connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT brand, kind, stock FROM items WHERE source = 'payload'"
            " AND attributes ->> 'payload_product_id' = $1",
            pid,
        )
        assert (row["brand"], row["kind"], row["stock"]) == ("Renamed", "print_on_demand", None)
        assert (
            json.loads(await conn.fetchval("SELECT data FROM catalog_brands WHERE payload_brand_id = $1", f"b-{pid}"))[
                "name"
            ]
            == "Renamed"
        )
    finally:
        await conn.close()
    assert actors  # the broker the worker runs on


async def test_a_cms_order_status_is_mirrored_in_order_and_becomes_a_storefront_event(worker, database_url) -> None:
    from actors.catalog import mirror_order_status

    oid = f"o-{datetime.now().timestamp()}"

    def status(minutes: int, value: str) -> dict[str, Any]:
        return {
            "event": "order.status_changed",
            "payloadOrderId": oid,
            "status": value,
            "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
        }

    assert run(mirror_order_status, f"{oid}:2", status(2, "shipped"))["applied"] is True
    assert run(mirror_order_status, f"{oid}:1", status(1, "paid"))["applied"] is False  # older: ignored
    assert run(mirror_order_status, f"{oid}:2", status(2, "shipped"))["replayed"] is True
    conn = await connect(database_url)
    try:
        assert await conn.fetchval("SELECT status FROM catalog_orders WHERE payload_order_id = $1", oid) == "shipped"
        events = await conn.fetch(
            "SELECT event_type, data FROM storefront_events WHERE resource = 'payload_order' AND resource_id = $1", oid
        )
        assert [e["event_type"] for e in events] == ["order.status_changed"]
        assert json.loads(events[0]["data"])["changed"] == {"status": "shipped"}
    finally:
        await conn.close()


async def test_a_next_step_committed_with_no_worker_running_is_sent_by_the_sweep(redis_client, database_url) -> None:
    """The outbox row of a step commits with the change; a dead relay's step goes out with the next sweep."""
    from dramatiq import Worker

    from actors.events import sweep_events
    from db.outbox import insert_job

    conn = await connect(database_url)
    try:
        async with conn.transaction():
            job = await insert_job(conn, "ping", ["from the outbox"])
        assert await conn.fetchval("SELECT sent_at FROM job_outbox WHERE id = $1", job) is None
        worker = Worker(actors.broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            wait_for_status(sweep_events.send(0).message_id, JobStatus.SUCCEEDED)
            from tests.waiting import eventually

            await eventually(lambda: conn.fetchval("SELECT sent_at FROM job_outbox WHERE id = $1", job), what="sent")
            keys = actors.broker.jobs.keys
            pings = [k for k in redis_client.scan_iter(keys.job("*")) if redis_client.hget(k, "actor") == b"ping"]
            assert len(pings) == 1
            wait_for_status(pings[0].decode().rsplit(":", 1)[1], JobStatus.SUCCEEDED)
        finally:
            worker.stop()
    finally:
        await conn.close()


async def test_a_product_replayed_ten_times_out_of_order_is_rehosted_and_embedded_once(
    worker, database_url, redis_client, tmp_path, monkeypatch
) -> None:
    """The issue's "one embedding": the newest version's image is fetched, rehosted and embedded by one job each."""
    from actors.embed import reset_clip_model
    from config.settings import get_settings
    from fakes.marketplace import Marketplace
    from tests.waiting import eventually

    settings = get_settings()
    monkeypatch.setattr(settings, "media_dir", tmp_path / "media")
    monkeypatch.setattr(settings, "media_s3_bucket", None)
    monkeypatch.setattr(settings, "model_dir", None)  # the tiny model
    reset_clip_model()
    market = Marketplace(seed=7, per_source=2).start()
    conn = await connect(database_url)
    try:
        fake = market.listings("vinted")[0]
        image = market.hosts[fake.source].image_url(fake.photos[0])
        pid = f"pe-{datetime.now().timestamp()}"
        versions = {m: product_event(pid, minutes=m, title=f"Title v{m}", image=image) for m in (1, 2, 3, 4)}
        for m in (4, 1, 3, 2, 4, 4, 4, 4, 4, 4):
            run(mirror_product, f"{pid}:e{m}", versions[m])
        item_id = await conn.fetchval(
            "SELECT id FROM items WHERE source = 'payload' AND attributes ->> 'payload_product_id' = $1", pid
        )
        await eventually(
            lambda: conn.fetchval("SELECT embedding IS NOT NULL FROM items WHERE id = $1", item_id),
            timeout=60,
            what="the item embedded",
        )
        assert await conn.fetchval("SELECT title FROM items WHERE id = $1", item_id) == "Title v4 - M"
        assert _jobs_of(redis_client, "rehost_images", item_id) == 1
        assert _jobs_of(redis_client, "embed_items", item_id) == 1
    finally:
        await conn.close()
        market.stop()
        reset_clip_model()


def _jobs_of(redis_client, actor: str, item_id: int) -> int:  # type: ignore[no-untyped-def]
    """How many job records of `actor` name `item_id` as (or in) their first argument."""
    count = 0
    for key in redis_client.scan_iter(actors.broker.jobs.keys.job("*")):
        record = redis_client.hgetall(key)
        if record.get(b"actor") != actor.encode():
            continue
        first = (json.loads(record[b"args"]).get("args") or [None])[0]
        count += first == item_id or (isinstance(first, list) and item_id in first)
    return count
