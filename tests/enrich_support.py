"""Fixtures and helpers for the enrichment tests: items with chosen vectors, label vectors, waiting on jobs.

Test modules import the fixtures by name (`from tests.enrich_support import tiny`); `pool` is the
suite's (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Iterator

import asyncpg
import numpy as np
import pytest

from actors.embed import reset_clip_model
from config.settings import get_settings
from db.enrichments import ItemEnrichment, select_item_enrichment
from domain.enrichment import Vocabulary
from domain.jobs import JobRecord, JobStatus
from ml.clip import ClipModel
from ml.manifest import TINY_MODEL_DIR, read_manifest
from ml.zeroshot import LabelMatrix, clear_cache, label_matrices
from tests.actors.helpers import wait_for_status

TINY_ID = read_manifest(TINY_MODEL_DIR).model_id


@pytest.fixture()
def tiny(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tiny model, the built-in vocabulary, no LLM; the process's model and label cache start empty."""
    settings = get_settings()
    monkeypatch.setattr(settings, "model_dir", None)
    monkeypatch.setattr(settings, "enrich_vocabulary_path", None)
    monkeypatch.setattr(settings, "llm_base_url", None)
    reset_clip_model()
    clear_cache()
    yield
    reset_clip_model()
    clear_cache()


def labels(vocabulary: Vocabulary) -> tuple[LabelMatrix, LabelMatrix]:
    """The slot and tag label vectors the actor will use (computed the same way, independently cached)."""
    model = ClipModel.load(TINY_MODEL_DIR)
    slots, tags = label_matrices(model, vocabulary.version, vocabulary.slot_prompts(), vocabulary.tag_prompts())
    clear_cache()  # the worker must build its own
    return slots, tags


def row(matrix: LabelMatrix, label: str) -> np.ndarray:
    """One label's unit vector."""
    return matrix.vectors[matrix.labels.index(label)]


async def insert_item(
    pool: asyncpg.Pool,
    vector: np.ndarray | None,
    *,
    model: str = TINY_ID,
    image_hash: str | None = None,
    slot: str | None = None,
    status: str = "available",
    title: str = "A piece",
    brand: str | None = "Acne Studios",
) -> int:
    """An item whose embedding is `vector` (as embed_items would have stored it)."""
    return await pool.fetchval(
        """INSERT INTO items (source, source_listing_id, title, brand, kind, status, media_keys, embedding,
                              embedding_model, embedding_hash, embedded_at, slot)
           VALUES ('test', $1, $2, $3, 'one_of_one', $4, '{k.jpg}', $5, $6, $7, now(), $8) RETURNING id""",
        secrets.token_hex(8),
        title,
        brand,
        status,
        None if vector is None else np.asarray(vector, dtype=np.float32),
        None if vector is None else model,
        image_hash or hashlib.sha256(secrets.token_bytes(8)).hexdigest(),
        slot,
    )


async def enrichment(pool: asyncpg.Pool, item_id: int) -> ItemEnrichment | None:
    """An item's stored enrichment."""
    async with pool.acquire() as conn:
        return await select_item_enrichment(conn, item_id)


async def run(actor, *args, status: JobStatus | None = None, **kwargs) -> JobRecord:  # type: ignore[no-untyped-def]
    """Send, and wait (off the event loop) until the job succeeded or died."""
    message = actor.send(*args, **kwargs)
    statuses = (status,) if status else (JobStatus.SUCCEEDED, JobStatus.DEAD)
    return await asyncio.to_thread(wait_for_status, message.message_id, *statuses, timeout=60)
