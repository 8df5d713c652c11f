"""Style seeds through the API: POST /v1/seeds -> add_seed rehosts the image, stores the seed, embeds it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.catalog import add_seed, add_seed_upload
from actors.embed import reset_clip_model
from config.settings import get_settings
from domain.jobs import JobStatus
from fakes.marketplace import Marketplace
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect
from tests.waiting import eventually


@pytest.fixture(scope="module")
def market() -> Iterator[Marketplace]:
    """The local marketplace, here only for its real JPEGs."""
    server = Marketplace(seed=5, per_source=2).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh local media store and the tiny model."""
    settings = get_settings()
    monkeypatch.setattr(settings, "media_dir", tmp_path / "media")
    monkeypatch.setattr(settings, "media_s3_bucket", None)
    monkeypatch.setattr(settings, "model_dir", None)
    reset_clip_model()
    yield
    reset_clip_model()


async def test_a_seed_from_an_image_url_is_rehosted_and_embedded(market, worker, database_url) -> None:
    fake = market.listings("vinted")[0]
    url = market.hosts[fake.source].image_url(fake.photos[0])
    label = f"quiet luxury {secrets.token_hex(3)}"
    record = wait_for_status(add_seed.send(label, url, "Muted tones").message_id, JobStatus.SUCCEEDED, timeout=60)
    seed_id = record.result["seed_id"]
    conn = await connect(database_url)
    try:
        await eventually(
            lambda: conn.fetchval("SELECT embedding IS NOT NULL FROM style_seeds WHERE id = $1", seed_id),
            timeout=60,
            what="the seed embedded",
        )
        again = wait_for_status(add_seed.send(label, url).message_id, JobStatus.SUCCEEDED, timeout=60)
        assert again.result["seed_id"] == seed_id and again.result["embed_job"] is None  # same image: no new vector
        assert await conn.fetchval("SELECT description FROM style_seeds WHERE id = $1", seed_id) == "Muted tones"
    finally:
        await conn.close()


async def test_an_uploaded_seed_is_rehosted_clean_and_embedded_once(market, worker, database_url) -> None:
    """What POST /v1/seeds/upload stages: re-encoded (a new content key, JPEG), the seed embedded once per image."""
    from media.store import open_store

    fake = market.listings("vinted")[1]
    raw = market.image_bytes(fake.photos[0])
    assert raw is not None
    store = open_store(get_settings())
    staged = store.put(raw, extension="raw")
    label = f"uploaded look {secrets.token_hex(3)}"
    record = wait_for_status(add_seed_upload.send(label, staged).message_id, JobStatus.SUCCEEDED, timeout=60)
    seed_id, key = record.result["seed_id"], record.result["media_key"]
    assert key.endswith(".jpg") and key != staged and store.get(key)[:2] == b"\xff\xd8"
    assert record.result["embed_job"] is not None
    conn = await connect(database_url)
    try:
        await eventually(
            lambda: conn.fetchval("SELECT embedding IS NOT NULL FROM style_seeds WHERE id = $1", seed_id),
            timeout=60,
            what="the seed embedded",
        )
        again = wait_for_status(add_seed_upload.send(label, staged).message_id, JobStatus.SUCCEEDED, timeout=60)
        assert again.result == {"seed_id": seed_id, "media_key": key, "embed_job": None}  # same image: no new vector
    finally:
        await conn.close()


def test_an_upload_gone_from_the_store_fails_the_job_without_retries(worker) -> None:
    record = wait_for_status(add_seed_upload.send("gone", "0" * 64 + ".raw").message_id, JobStatus.DEAD, timeout=60)
    assert "no longer stored" in (record.last_error or "") and record.attempts == 1
