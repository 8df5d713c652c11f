"""Style seeds through the API: POST /v1/seeds -> add_seed rehosts the image, stores the seed, embeds it."""
from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.catalog import add_seed
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
        await eventually(lambda: conn.fetchval("SELECT embedding IS NOT NULL FROM style_seeds WHERE id = $1", seed_id),
                         timeout=60, what="the seed embedded")
        again = wait_for_status(add_seed.send(label, url).message_id, JobStatus.SUCCEEDED, timeout=60)
        assert again.result["seed_id"] == seed_id and again.result["embed_job"] is None  # same image: no new vector
        assert await conn.fetchval("SELECT description FROM style_seeds WHERE id = $1", seed_id) == "Muted tones"
    finally:
        await conn.close()
