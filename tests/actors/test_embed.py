"""The embed actors on a real worker: vectors, skip-unchanged, force, model change, broken images, sync."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from dramatiq import Worker

import actors
from actors.embed import embed_items, embed_seeds, reset_clip_model, sync_embeddings
from config.settings import get_settings
from domain.jobs import JobRecord, JobStatus
from media.store import LocalMediaStore
from ml.clip import ClipModel
from ml.manifest import TINY_MODEL_DIR, read_manifest
from tests.actors.helpers import wait_for_status

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-clip" / "images"
TINY_ID = read_manifest(TINY_MODEL_DIR).model_id


@pytest.fixture()
def media(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalMediaStore:
    """A fresh media store that the worker (same process) reads."""
    store = LocalMediaStore(tmp_path / "media")
    monkeypatch.setattr(get_settings(), "media_dir", store.root)
    return store


@pytest.fixture()
def model_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts on the tiny model and leaves the process's model closed."""
    monkeypatch.setattr(get_settings(), "model_dir", None)
    reset_clip_model()
    yield
    reset_clip_model()


def put(media: LocalMediaStore, name: str) -> str:
    """Store a fixture image; returns its key."""
    return media.put((FIXTURES / name).read_bytes(), extension=name.rsplit(".", 1)[-1])


async def insert_item(pool: asyncpg.Pool, media_keys: list[str], *, status: str = "available") -> int:
    """A new item with these media keys (unique per call)."""
    return await pool.fetchval(
        """INSERT INTO items (source, source_listing_id, title, kind, status, media_keys)
           VALUES ('test', $1, 'an item', 'one_of_one', $2, $3) RETURNING id""",
        uuid.uuid4().hex,
        status,
        media_keys,
    )


async def run(actor, *args, **kwargs) -> JobRecord:  # type: ignore[no-untyped-def]
    """Send and wait for success off the event loop."""
    message = actor.send(*args, **kwargs)
    return await asyncio.to_thread(wait_for_status, message.message_id, JobStatus.SUCCEEDED, JobStatus.DEAD, timeout=60)


async def state(pool: asyncpg.Pool, item_id: int) -> asyncpg.Record:
    """The embedding columns of one item."""
    return await pool.fetchrow(
        "SELECT embedding, embedding_model, embedding_hash, embedded_at, embed_error FROM items WHERE id = $1", item_id
    )


async def test_embed_writes_unit_vectors_with_model_and_hash(worker: Worker, media, model_dir, pool) -> None:
    names = ["photo.jpg", "rgba.png", "wide.webp"]
    ids = [await insert_item(pool, [put(media, n)]) for n in names]
    record = await run(embed_items, ids)
    assert record.status is JobStatus.SUCCEEDED
    assert record.result == {"model": TINY_ID, "embedded": 3, "skipped": 0, "failed": 0, "missing": 0}
    reference = ClipModel.load(TINY_MODEL_DIR).embed_images([(FIXTURES / n).read_bytes() for n in names])
    for index, (item_id, name) in enumerate(zip(ids, names)):
        row = await state(pool, item_id)
        vector = row["embedding"].to_numpy()
        assert abs(np.linalg.norm(vector) - 1) < 1e-5
        assert float(vector @ reference.vectors[index]) > 0.9999
        assert row["embedding_model"] == TINY_ID and row["embed_error"] is None
        assert row["embedding_hash"] == hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()


async def test_unchanged_images_are_skipped_and_force_reembeds(worker: Worker, media, model_dir, pool) -> None:
    ids = [await insert_item(pool, [put(media, "photo.jpg")]), await insert_item(pool, [put(media, "gray.png")])]
    await run(embed_items, ids)
    before = [(await state(pool, i))["embedded_at"] for i in ids]
    again = await run(embed_items, ids)
    assert again.result["skipped"] == 2 and again.result["embedded"] == 0
    assert [(await state(pool, i))["embedded_at"] for i in ids] == before
    forced = await run(embed_items, ids, force=True)
    assert forced.result["embedded"] == 2 and forced.result["skipped"] == 0
    after = [(await state(pool, i))["embedded_at"] for i in ids]
    assert all(a > b for a, b in zip(after, before))


async def test_a_changed_image_is_reembedded(worker: Worker, media, model_dir, pool) -> None:
    item_id = await insert_item(pool, [put(media, "photo.jpg")])
    await run(embed_items, [item_id])
    first = await state(pool, item_id)
    await pool.execute("UPDATE items SET media_keys = $2 WHERE id = $1", item_id, [put(media, "palette.png")])
    record = await run(embed_items, [item_id])
    second = await state(pool, item_id)
    assert record.result["embedded"] == 1
    assert second["embedding_hash"] != first["embedding_hash"]
    assert float(second["embedding"].to_numpy() @ first["embedding"].to_numpy()) < 0.99


async def test_broken_images_mark_their_item_not_the_batch(worker: Worker, media, model_dir, pool) -> None:
    good = await insert_item(pool, [put(media, "photo.jpg")])
    broken = await insert_item(pool, [put(media, "broken.jpg")])
    missing = await insert_item(pool, ["f" * 64 + ".jpg"])
    bare = await insert_item(pool, [])
    record = await run(embed_items, [good, broken, missing, bare, 987654321])
    assert record.status is JobStatus.SUCCEEDED
    assert record.result == {"model": TINY_ID, "embedded": 1, "skipped": 0, "failed": 3, "missing": 1}
    assert (await state(pool, good))["embedding"] is not None
    reasons = {i: (await state(pool, i))["embed_error"] for i in (broken, missing, bare)}
    assert "broken image" in reasons[broken]
    assert "media not found" in reasons[missing]
    assert "no image" in reasons[bare]
    assert [(await state(pool, i))["embedding"] for i in reasons] == [None, None, None]
    # an unchanged refused image is not decoded again (only `force` retries it)
    again = await run(embed_items, [broken])
    assert again.result["skipped"] == 1


async def test_sync_embeds_what_is_missing_then_a_model_change_reembeds(
    worker: Worker, media, model_dir, pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = await insert_item(pool, [put(media, "photo.jpg")])
    await run(embed_items, [done])
    waiting = [await insert_item(pool, [put(media, "gray.jpg")]), await insert_item(pool, [put(media, "tiny.png")])]
    seed = await pool.fetchval(
        "INSERT INTO style_seeds (label, media_key) VALUES ($1, $2) RETURNING id",
        f"seed-{uuid.uuid4().hex}",
        put(media, "wide.webp"),
    )
    stamp = (await state(pool, done))["embedded_at"]
    record = await run(sync_embeddings)
    assert record.result["items"] >= 2
    await asyncio.to_thread(_drain, worker)
    assert [(await state(pool, i))["embedding_model"] for i in waiting] == [TINY_ID, TINY_ID]
    assert (await state(pool, done))["embedded_at"] == stamp  # not part of the sync
    assert await pool.fetchval("SELECT embedding_model FROM style_seeds WHERE id = $1", seed) == TINY_ID

    other = Path(shutil.copytree(TINY_MODEL_DIR, tmp_path / "other"))
    manifest = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps({**manifest, "model_id": "other-model/v2"}))
    monkeypatch.setattr(get_settings(), "model_dir", other)
    reset_clip_model()
    await run(sync_embeddings)
    await asyncio.to_thread(_drain, worker)
    assert {(await state(pool, i))["embedding_model"] for i in [done, *waiting]} == {"other-model/v2"}
    assert await pool.fetchval("SELECT embedding_model FROM style_seeds WHERE id = $1", seed) == "other-model/v2"


async def test_embed_seeds_by_id(worker: Worker, media, model_dir, pool) -> None:
    seed = await pool.fetchval(
        "INSERT INTO style_seeds (label, media_key) VALUES ($1, $2) RETURNING id",
        f"seed-{uuid.uuid4().hex}",
        put(media, "rgba.png"),
    )
    record = await run(embed_seeds, [seed])
    assert record.result["embedded"] == 1
    row = await pool.fetchrow("SELECT embedding, embedded_at, embed_error FROM style_seeds WHERE id = $1", seed)
    assert row["embedding"] is not None and row["embedded_at"] is not None and row["embed_error"] is None


async def test_a_bad_model_dir_is_a_terminal_error(
    worker: Worker, media, model_dir, pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "model_dir", tmp_path / "no-model-here")
    item_id = await insert_item(pool, [put(media, "photo.jpg")])
    record = await run(embed_items, [item_id])
    assert record.status is JobStatus.DEAD and record.attempts == 1
    assert "ModelDirError" in (record.last_error or "") and "does not exist" in (record.last_error or "")


def _drain(worker: Worker) -> None:
    """Wait until the ml queue is empty and the worker idle (sync fans out further messages)."""
    actors.broker.join("ml", timeout=60_000)
    worker.join()


async def test_cli_embed_sync_enqueues_and_follows(worker: Worker, media, model_dir, pool) -> None:
    from typer.testing import CliRunner

    from cli.embed import embed_app

    ids = [await insert_item(pool, [put(media, name)]) for name in ("photo.jpg", "gray.png", "wide.webp")]
    result = await asyncio.to_thread(CliRunner().invoke, embed_app, ["sync"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert f"enqueued for {TINY_ID}" in result.output and "embedded" in result.output
    assert [(await state(pool, i))["embedding_model"] for i in ids] == [TINY_ID] * 3
    nothing = await asyncio.to_thread(CliRunner().invoke, embed_app, ["sync", "--no-wait"])
    assert nothing.exit_code == 0 and "0 item(s) in 0 batch(es)" in nothing.output
