"""Embedding actors on the `ml` queue: CLIP image vectors for items and style seeds.

The ONNX model is a per-process resource, opened on first use by the first embed message
(never at import, never per message); decoding and inference run off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import asyncpg
import dramatiq

from config.settings import get_settings
from db.embeddings import Embeddable, EmbedTarget, select_embed_targets, select_ids_to_embed, update_embedding
from db.pool import get_process_pool
from media.store import MediaNotFound, MediaStore, open_store
from ml.clip import ClipModel, model_id
from ml.manifest import TINY_MODEL_DIR, ModelDirError, read_manifest

_lock = threading.Lock()
_model: ClipModel | None = None


def clip_model() -> ClipModel:
    """This process's CLIP model (MODEL_DIR, default the tiny test model), opened once."""
    global _model
    with _lock:
        if _model is None:
            settings = get_settings()
            _model = ClipModel.load(
                settings.model_dir or TINY_MODEL_DIR, precision=settings.model_precision, threads=settings.ml_threads
            )
        return _model


def reset_clip_model() -> None:
    """Forget the process's model (tests and a MODEL_DIR change)."""
    global _model
    with _lock:
        _model = None


def current_model_id() -> str:
    """The id the configured model writes beside its vectors (reads only the manifest)."""
    settings = get_settings()
    return model_id(read_manifest(settings.model_dir or TINY_MODEL_DIR), settings.model_precision)


def read_images(store: MediaStore, targets: Sequence[EmbedTarget]) -> tuple[dict[int, bytes], dict[int, str]]:
    """Each target's image bytes by id, and why the others have none."""
    images: dict[int, bytes] = {}
    errors: dict[int, str] = {}
    for target in targets:
        if not target.media_key:
            errors[target.id] = "no image: the row has no media key"
            continue
        try:
            images[target.id] = store.get(target.media_key)
        except MediaNotFound as error:
            errors[target.id] = f"media not found: {error.args[0]}"
    return images, errors


def embed_images(model: ClipModel, images: dict[int, bytes]) -> tuple[dict[int, Any], dict[int, str]]:
    """Vectors by id for the usable images, and the reason for each broken one."""
    ids = list(images)
    result = model.embed_images([images[i] for i in ids])
    return ({ids[i]: v for i, v in result.vectors.items()}, {ids[i]: e for i, e in result.errors.items()})


async def embed_rows(table: Embeddable, ids: Sequence[int], *, force: bool) -> dict[str, Any]:
    """Embed the images of these rows of `table`; unchanged ones are skipped, unusable ones marked with the reason."""
    model = await asyncio.to_thread(clip_model)
    pool = get_process_pool()
    async with pool.acquire() as conn:
        targets = await select_embed_targets(conn, table, ids)
    images, errors = await asyncio.to_thread(read_images, open_store(get_settings()), targets)
    hashes = await asyncio.to_thread(lambda: {i: hashlib.sha256(data).hexdigest() for i, data in images.items()})
    current = {t.id for t in targets if not force and t.id in hashes and t.is_current(model.model_id, hashes[t.id])}
    todo = {i: data for i, data in images.items() if i not in current}
    vectors, broken = await asyncio.to_thread(embed_images, model, todo)
    errors.update(broken)
    async with pool.acquire() as conn, conn.transaction():
        for row_id, vector in vectors.items():
            await update_embedding(
                conn, table, row_id, model=model.model_id, content_hash=hashes[row_id], vector=vector
            )
        for row_id, reason in errors.items():
            await update_embedding(
                conn, table, row_id, model=model.model_id, content_hash=hashes.get(row_id), error=reason
            )
    return {
        "model": model.model_id,
        "embedded": len(vectors),
        "skipped": len(current),
        "failed": len(errors),
        "missing": len(ids) - len(targets),
    }


@dramatiq.actor(
    queue_name="ml", max_retries=3, min_backoff=2_000, max_backoff=60_000, time_limit=900_000, throws=(ModelDirError,)
)
async def embed_items(item_ids: list[int], force: bool = False) -> dict:
    """Embed these items' first images; skip unchanged ones unless `force`; mark broken ones."""
    return await embed_rows("items", item_ids, force=force)


@dramatiq.actor(
    queue_name="ml", max_retries=3, min_backoff=2_000, max_backoff=60_000, time_limit=900_000, throws=(ModelDirError,)
)
async def embed_seeds(seed_ids: list[int] | None = None, force: bool = False) -> dict:
    """Embed these style seeds (default: those missing a vector of the current model; all with `force`)."""
    if seed_ids is None:
        async with get_process_pool().acquire() as conn:
            seed_ids = await select_ids_to_embed(conn, "style_seeds", model=current_model_id(), force=force)
    return await embed_rows("style_seeds", seed_ids, force=force)


async def plan_item_batches(conn: asyncpg.Connection, *, model: str, force: bool, size: int) -> list[list[int]]:
    """The items a sync must embed, cut into batches of `size` ids."""
    batches: list[list[int]] = []
    after = 0
    while ids := await select_ids_to_embed(conn, "items", model=model, force=force, after_id=after, limit=10_000):
        batches.extend(ids[i : i + size] for i in range(0, len(ids), size))
        after = ids[-1]
    return batches


def send_batches(batches: Sequence[list[int]], *, force: bool) -> list[str]:
    """Enqueue one embed_items message per batch; returns their job ids."""
    return [embed_items.send(batch, force=force).message_id for batch in batches]


@dramatiq.actor(
    queue_name="ml", max_retries=3, min_backoff=2_000, max_backoff=60_000, time_limit=300_000, throws=(ModelDirError,)
)
async def sync_embeddings(force: bool = False) -> dict:
    """Fan out embed_items for items missing a current-model vector (every item with `force`), and embed_seeds."""
    async with get_process_pool().acquire() as conn:
        batches = await plan_item_batches(
            conn, model=current_model_id(), force=force, size=get_settings().embed_batch_size
        )
    await asyncio.to_thread(send_batches, batches, force=force)
    await asyncio.to_thread(embed_seeds.send, force=force)
    return {"items": sum(len(b) for b in batches), "batches": len(batches)}
