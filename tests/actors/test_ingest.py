"""Ingest on a real worker against the local marketplace: upsert, replays, rehost (local and S3), embed."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from dramatiq import Worker
from PIL import Image

from actors.embed import reset_clip_model
from actors.ingest import ingest_listings
from config.settings import get_settings
from domain.jobs import JobRecord, JobStatus
from fakes.marketplace import FakeListing, Marketplace
from media.store import LocalMediaStore, open_store
from tests.actors.helpers import wait_for_status
from tests.s3_support import CREDENTIALS, moto_server
from tests.waiting import eventually

GPS_IFD = 0x8825


@pytest.fixture(scope="module")
def market() -> Iterator[Marketplace]:
    """The local marketplace (real JPEGs with GPS in their EXIF)."""
    server = Marketplace(seed=11, per_source=12).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def setup(market: Marketplace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh local media store, the tiny model, no auto-approval, the marketplace reset."""
    market.reset()
    settings = get_settings()
    monkeypatch.setattr(settings, "media_dir", tmp_path / "media")
    monkeypatch.setattr(settings, "media_s3_bucket", None)
    monkeypatch.setattr(settings, "model_dir", None)
    monkeypatch.setattr(settings, "auto_approve_green", False)
    reset_clip_model()
    yield
    reset_clip_model()


def as_listing(market: Marketplace, fake: FakeListing, source: str, **changes: Any) -> dict[str, Any]:
    """What an edge adapter would deliver for this fake listing (under a per-test source name)."""
    host = market.hosts[fake.source]
    return {
        "source": source,
        "source_listing_id": str(fake.id),
        "url": market.url_of(fake),
        "title": fake.title,
        "brand": fake.brand,
        "price_cents": fake.price_cents,
        "currency": fake.currency,
        "size": fake.size,
        "condition": fake.site_condition(),
        "image_urls": [host.image_url(p) for p in fake.photos],
        "attributes": {"colour": fake.colour},
        **changes,
    }


async def run(actor, *args, status: JobStatus = JobStatus.SUCCEEDED, **kwargs) -> JobRecord:  # type: ignore[no-untyped-def]
    """Send and wait until the job reaches `status` (or dies), off the event loop."""
    message = actor.send(*args, **kwargs)
    record = await asyncio.to_thread(wait_for_status, message.message_id, status, JobStatus.DEAD, timeout=60)
    assert record.status == status, record
    return record


async def items(pool: asyncpg.Pool, source: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM items WHERE source = $1 ORDER BY id", source)


async def until(pool: asyncpg.Pool, source: str, check: Any, timeout: float = 60) -> list[asyncpg.Record]:
    """Poll this source's items until `check(rows)` holds."""

    async def rows_once_checked() -> list[asyncpg.Record] | None:
        rows = await items(pool, source)
        return rows if rows and check(rows) else None

    return await eventually(rows_once_checked, timeout, f"the items of {source} to be {check.__name__}")


def embedded(rows: list[asyncpg.Record]) -> bool:
    return all(r["embedded_at"] is not None for r in rows)


def source_name() -> str:
    return f"vinted-{uuid.uuid4().hex[:8]}"


def assert_clean_jpeg(data: bytes) -> None:
    """A JPEG with no EXIF at all, so certainly no GPS."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and not image.getexif().get_ifd(GPS_IFD) and not image.getexif()
    assert b"FakeCam" not in data


async def test_listings_become_items_with_clean_rehosted_images_and_embeddings(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool
) -> None:
    source = source_name()
    fakes = market.listings("vinted")[:3]
    record = await run(ingest_listings, source, [as_listing(market, f, source) for f in fakes], f"d-{source}")
    assert record.result is not None and len(record.result["created"]) == 3 and record.result["rehost"]
    rows = await until(pool, source, embedded)
    store = LocalMediaStore(get_settings().media_dir)
    for fake, row in zip(fakes, rows):
        assert row["status"] == "pending" and row["source_listing_id"] == str(fake.id)
        assert row["cost_cents"] == fake.price_cents and row["verdict"] in ("green", "orange")
        assert len(row["media_keys"]) == len(fake.photos) and row["rehost_error"] is None
        assert row["rehosted_urls"] == row["image_urls"] and row["embedding_model"] and row["embed_error"] is None
        for key in row["media_keys"]:
            assert key.endswith(".jpg")
            assert_clean_jpeg(store.get(key))
    fetched = {r.path for r in market.requests("vinted") if r.path.startswith("/images/")}
    assert fetched == {f"/images/{p}.jpg" for f in fakes for p in f.photos}


async def test_ingesting_twice_updates_one_row_and_a_replayed_delivery_is_a_no_op(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool
) -> None:
    source = source_name()
    fake = market.listings("vinted")[0]
    first = await run(ingest_listings, source, [as_listing(market, fake, source)], f"d1-{source}")
    [row] = await until(pool, source, embedded)
    market.clear_requests()
    # the same delivery again (the edge outbox redelivered it): nothing happens, even with other content
    replay = await run(ingest_listings, source, [as_listing(market, fake, source, title="changed")], f"d1-{source}")
    assert replay.result is not None and replay.result["replayed"] and replay.result["rehost"] == []
    # a new scrape of the same listing with a new price: the row is updated, images not fetched again
    second = await run(ingest_listings, source, [as_listing(market, fake, source, price_cents=100)], f"d2-{source}")
    assert first.result is not None and second.result is not None
    assert second.result["updated"] == first.result["created"] == [row["id"]] and second.result["created"] == []
    [after] = await items(pool, source)
    assert (after["id"], after["cost_cents"], after["title"]) == (row["id"], 100, fake.title)
    assert after["media_keys"] == row["media_keys"] and after["verdict"] == "orange"
    assert not [r for r in market.requests("vinted") if r.path.startswith("/images/")]


async def test_sold_items_are_not_resurrected_and_sold_listings_mark_items_sold(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool
) -> None:
    source = source_name()
    a, b = market.listings("vinted")[:2]
    await run(ingest_listings, source, [as_listing(market, a, source), as_listing(market, b, source)], f"d1-{source}")
    rows = await until(pool, source, embedded)
    await pool.execute("UPDATE items SET status = 'sold' WHERE id = $1", rows[0]["id"])
    result = (
        await run(
            ingest_listings,
            source,
            [as_listing(market, a, source, price_cents=1), as_listing(market, b, source, sold=True)],
            f"d2-{source}",
        )
    ).result
    assert result is not None and result["sold"] == [rows[1]["id"]]
    after = await items(pool, source)
    assert [r["status"] for r in after] == ["sold", "sold"] and after[0]["cost_cents"] == 1


async def test_invalid_and_foreign_listings_are_dropped_with_reasons(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool
) -> None:
    source = source_name()
    good, other = market.listings("vinted")[:2]
    bad = {**as_listing(market, other, source), "price_cents": -5, "currency": "euros"}
    foreign = as_listing(market, other, "grailed")
    result = (
        await run(ingest_listings, source, [as_listing(market, good, source), bad, foreign], f"d-{source}")
    ).result
    assert result is not None and len(result["created"]) == 1
    assert result["dropped"] == [
        "listing 1: 2 invalid field(s): price_cents, currency",
        f"listing 2: source 'grailed' is not {source!r}",
    ]
    assert result["edge_node"] is None  # not forwarded by the edge gateway


async def test_a_forwarded_delivery_names_the_node_that_sent_it(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool
) -> None:
    source = source_name()
    message = ingest_listings.send_with_options(
        args=(source, [as_listing(market, market.listings("vinted")[0], source)], f"d-{source}"), edge_node="pi-hall"
    )  # what broker.gateway sets on what it forwards
    record = await asyncio.to_thread(wait_for_status, message.message_id, JobStatus.SUCCEEDED, timeout=60)
    assert record.result is not None and record.result["edge_node"] == "pi-hall"


async def test_green_items_go_live_when_auto_approval_is_on(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "auto_approve_green", True)
    source = source_name()
    fake = market.listings("vinted")[0]
    cheap = as_listing(market, fake, source, source_listing_id="cheap", price_cents=20_000)  # margin >> 50 EUR
    pricey = as_listing(market, fake, source, source_listing_id="pricey", price_cents=100, image_urls=[])
    await run(ingest_listings, source, [cheap, pricey], f"d-{source}")
    rows = {r["source_listing_id"]: r for r in await items(pool, source)}
    assert (rows["cheap"]["verdict"], rows["cheap"]["status"]) == ("green", "available")
    assert (rows["pricey"]["verdict"], rows["pricey"]["status"]) == ("orange", "pending")


async def test_oversize_images_are_rejected_with_a_clear_error(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "rehost_max_bytes", 1_000)
    source = source_name()
    fake = next(f for f in market.listings("vinted") if len(f.photos) == 1)
    ingested = await run(ingest_listings, source, [as_listing(market, fake, source)], f"d-{source}")
    assert ingested.result is not None
    [job_id] = ingested.result["rehost_jobs"]
    record = await asyncio.to_thread(wait_for_status, job_id, JobStatus.DEAD, timeout=30)
    assert record.last_error is not None and "image 1: image too large" in record.last_error
    assert record.attempts == 1  # a rejected image is not retried
    [after] = await items(pool, source)
    assert after["media_keys"] == [] and "image too large" in after["rehost_error"]
    assert after["rehosted_urls"] == after["image_urls"]  # not tried again until the photos change


async def test_a_blocked_image_host_is_retried_not_given_up(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool
) -> None:
    source = source_name()
    fake = market.listings("vinted")[0]
    market.block("vinted")
    ingested = await run(ingest_listings, source, [as_listing(market, fake, source)], f"d-{source}")
    assert ingested.result is not None
    [job_id] = ingested.result["rehost_jobs"]
    record = await asyncio.to_thread(
        wait_for_status,
        job_id,
        JobStatus.RETRYING,
        JobStatus.DEAD,
        timeout=30,
        where=lambda r: r.last_error is not None,
    )
    assert record.status is JobStatus.RETRYING and "image host answered HTTP 403" in (record.last_error or "")
    market.block("vinted", on=False)
    await until(pool, source, embedded)


async def test_rehosting_into_s3_then_embedding_from_it(
    worker: Worker, market: Marketplace, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = source_name()
    fake = market.listings("vinted")[1]
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).create_bucket(Bucket="backroom-media")
        settings = get_settings()
        for name, value in (
            ("media_s3_bucket", "backroom-media"),
            ("media_s3_endpoint_url", endpoint),
            ("media_s3_region", "us-east-1"),
            ("media_s3_access_key_id", "testing"),
            ("media_s3_secret_access_key", "testing"),
            ("media_s3_prefix", "items/"),
        ):
            monkeypatch.setattr(settings, name, value)
        await run(ingest_listings, source, [as_listing(market, fake, source)], f"d-{source}")
        [row] = await until(pool, source, embedded)
        listed = boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS).list_objects_v2(Bucket="backroom-media")
        assert {o["Key"] for o in listed["Contents"]} >= {f"items/{k}" for k in row["media_keys"]}
        assert row["embed_error"] is None
        for key in row["media_keys"]:
            assert_clean_jpeg(open_store(settings).get(key))
    assert not (Path(settings.media_dir)).exists()  # nothing went to the local directory
