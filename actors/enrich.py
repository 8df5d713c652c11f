"""Enrichment actors on the `ml` queue: the stylist slot and style tags of items, zero-shot from CLIP.

An item's image vector (items.embedding, made by embed_items) is compared with the text
vectors of the vocabulary's prompts; the best slot and tags are stored with every score.
The fingerprint (image hash, model, vocabulary version) makes a rerun a no-op until one
of them changes. When LLM_BASE_URL is set, an LLM adds a description (actors.enrich_llm).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import dramatiq
import numpy as np

from actors.embed import clip_model, current_model_id
from actors.enrich_llm import enrich_with_llm, llm_model_open
from broker.waits import retry_policy
from config.settings import get_settings
from db.enrichments import EnrichTarget, select_enrich_targets, select_item_ids_to_enrich, upsert_item_enrichment
from db.model_runs import insert_model_run
from db.pool import get_process_pool
from domain.enrichment import DEFAULT_VOCABULARY, Pick, Vocabulary, fingerprint, parse_vocabulary, pick
from domain.model_runs import ZERO_SHOT, NewModelRun
from ml.clip import ClipModel
from ml.manifest import ModelDirError
from ml.zeroshot import label_matrices
from providers.errors import NotConfigured, Permanent


class VocabularyError(Exception):
    """ENRICH_VOCABULARY_PATH names a missing or invalid file: no enrichment until it is fixed."""


_vocabulary_lock = threading.Lock()
_vocabulary: tuple[tuple[str, int, int], Vocabulary] | None = None


def load_vocabulary() -> Vocabulary:
    """The configured vocabulary, re-read when its file changes (so an admin's edit needs no restart)."""
    global _vocabulary
    path: Path | None = get_settings().enrich_vocabulary_path
    if path is None:
        return DEFAULT_VOCABULARY
    try:
        stat = path.stat()
    except OSError as error:
        raise VocabularyError(f"ENRICH_VOCABULARY_PATH {path}: {error.strerror or error}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _vocabulary_lock:
        if _vocabulary is not None and _vocabulary[0] == key:
            return _vocabulary[1]
    try:
        vocabulary = parse_vocabulary(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise VocabularyError(f"ENRICH_VOCABULARY_PATH {path}: {error}") from None
    with _vocabulary_lock:
        _vocabulary = (key, vocabulary)
    return vocabulary


def score(model: ClipModel, vocabulary: Vocabulary, vectors: Sequence[np.ndarray]) -> list[Pick]:
    """Pick each image vector's slot and tags (label vectors cached per model and vocabulary)."""
    slots, tags = label_matrices(model, vocabulary.version, vocabulary.slot_prompts(), vocabulary.tag_prompts())
    images = np.stack(list(vectors))
    return [pick(s, t, vocabulary) for s, t in zip(slots.scores(images), tags.scores(images))]


async def enrich_zero_shot(item_ids: Sequence[int], vocabulary: Vocabulary, *, force: bool) -> dict[str, Any]:
    """Store slot and tags for items whose fingerprint changed (all with `force`); count the rest."""
    model = await asyncio.to_thread(clip_model)
    pool = get_process_pool()
    async with pool.acquire() as conn:
        targets = await select_enrich_targets(conn, item_ids)
    ready = [t for t in targets if t.vector is not None and t.embedding_model == model.model_id and t.image_hash]
    prints = {t.id: fingerprint([t.image_hash or ""], model.model_id, vocabulary.version) for t in ready}
    todo: list[EnrichTarget] = [t for t in ready if force or t.fingerprint != prints[t.id]]
    started = time.monotonic()
    picks = (
        await asyncio.to_thread(score, model, vocabulary, [t.vector for t in todo if t.vector is not None])
        if todo
        else []
    )
    latency_ms = int((time.monotonic() - started) * 1000)
    async with pool.acquire() as conn, conn.transaction():
        for target, chosen in zip(todo, picks):
            await upsert_item_enrichment(
                conn,
                target.id,
                pick=chosen,
                model=model.model_id,
                vocabulary_version=vocabulary.version,
                image_hash=target.image_hash or "",
                fingerprint=prints[target.id],
            )
        if todo:
            await insert_model_run(
                conn,
                NewModelRun(
                    kind=ZERO_SHOT,
                    provider="local",
                    model=model.model_id,
                    status="succeeded",
                    item_ids=tuple(t.id for t in todo),
                    latency_ms=latency_ms,
                    detail={"vocabulary": vocabulary.version},
                ),
            )
    return {
        "model": model.model_id,
        "vocabulary": vocabulary.version,
        "enriched": len(todo),
        "skipped": len(ready) - len(todo),
        "not_embedded": len(targets) - len(ready),
        "missing": len(set(item_ids)) - len(targets),
    }


@dramatiq.actor(
    queue_name="ml",
    retry_when=retry_policy(max_failures=3, max_waits=50),
    min_backoff=2_000,
    max_backoff=300_000,
    time_limit=900_000,
    throws=(ModelDirError, VocabularyError, NotConfigured, Permanent),
)
async def enrich_items(item_ids: list[int], force: bool = False) -> dict:
    """Zero-shot slot and style tags for these items (then the LLM, when configured); unchanged ones skipped."""
    vocabulary = await asyncio.to_thread(load_vocabulary)
    result = await enrich_zero_shot(item_ids, vocabulary, force=force)
    if get_settings().llm_base_url:
        result |= await enrich_with_llm(item_ids, vocabulary, model_id=result["model"], force=force)
    return result


async def plan_enrich_batches(
    conn: asyncpg.Connection, *, model: str, vocabulary_version: str, llm_model: str | None, size: int
) -> list[list[int]]:
    """The items a sweep must enrich, cut into batches of `size` ids."""
    batches: list[list[int]] = []
    after = 0
    while ids := await select_item_ids_to_enrich(
        conn, model=model, vocabulary_version=vocabulary_version, llm_model=llm_model, after_id=after, limit=10_000
    ):
        batches.extend(ids[i : i + size] for i in range(0, len(ids), size))
        after = ids[-1]
    return batches


def send_enrich_batches(batches: Sequence[list[int]]) -> list[str]:
    """One enrich_items message per batch; an identical batch still queued or running is not sent twice."""
    return [
        str(
            enrich_items.send_with_options(
                args=(batch,), unique_key="enrich_items:" + hashlib.sha256(repr(batch).encode()).hexdigest()[:24]
            ).message_id
        )
        for batch in batches
    ]


@dramatiq.actor(
    queue_name="ml",
    max_retries=3,
    min_backoff=2_000,
    max_backoff=60_000,
    time_limit=300_000,
    throws=(ModelDirError, VocabularyError),
)
async def sweep_enrichment() -> dict:
    """Fan out enrich_items for embedded items whose enrichment is missing or stale (LLM too, under the cap)."""
    vocabulary = await asyncio.to_thread(load_vocabulary)
    model = await asyncio.to_thread(current_model_id)
    llm_model = await llm_model_open()
    async with get_process_pool().acquire() as conn:
        batches = await plan_enrich_batches(
            conn,
            model=model,
            vocabulary_version=vocabulary.version,
            llm_model=llm_model,
            size=get_settings().enrich_batch_size,
        )
    await asyncio.to_thread(send_enrich_batches, batches)
    return {"items": sum(len(b) for b in batches), "batches": len(batches), "llm": llm_model is not None}
