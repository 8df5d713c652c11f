"""enrich_items and sweep_enrichment on a real worker: argmax with recorded scores, skips, reruns, the sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dramatiq import Worker

from actors.enrich import enrich_items, sweep_enrichment
from config.settings import get_settings
from domain.enrichment import DEFAULT_VOCABULARY, parse_vocabulary
from domain.jobs import JobStatus
from ml.zeroshot import cached_keys
from tests.enrich_support import TINY_ID, enrichment, insert_item, labels, row, run, tiny  # noqa: F401
from tests.waiting import eventually


async def test_the_argmax_slot_and_tag_win_and_every_score_is_recorded(worker: Worker, tiny, pool) -> None:
    slots, tags = labels(DEFAULT_VOCABULARY)
    trousers = await insert_item(pool, row(slots, "legwear"))
    workwear = await insert_item(pool, row(tags, "workwear"))
    record = await run(enrich_items, [trousers, workwear])
    assert record.status is JobStatus.SUCCEEDED
    assert record.result == {
        "model": TINY_ID,
        "vocabulary": DEFAULT_VOCABULARY.version,
        "enriched": 2,
        "skipped": 0,
        "not_embedded": 0,
        "missing": 0,
    }

    first = await enrichment(pool, trousers)
    assert first is not None and first.slot == "legwear" and first.model == TINY_ID
    expected = dict(zip(slots.labels, slots.vectors @ row(slots, "legwear")))
    assert set(first.slot_scores) == set(DEFAULT_VOCABULARY.slots) and len(first.slot_scores) == 11
    assert all(abs(first.slot_scores[k] - float(v)) < 1e-4 for k, v in expected.items())
    assert abs(first.slot_score - 1.0) < 1e-4 and first.slot_score == max(first.slot_scores.values())
    assert await pool.fetchval("SELECT slot FROM items WHERE id = $1", trousers) == "legwear"  # the stylist sees it

    second = await enrichment(pool, workwear)
    assert second is not None and second.tags[0] == "workwear"
    assert set(second.tag_scores) == set(DEFAULT_VOCABULARY.style_tags)
    assert second.tag_scores["workwear"] == max(second.tag_scores.values())
    assert all(
        abs(second.tag_scores[k] - float(v)) < 1e-4 for k, v in zip(tags.labels, tags.vectors @ row(tags, "workwear"))
    )
    run_row = await pool.fetchrow(
        "SELECT * FROM model_runs WHERE kind = 'zero_shot' AND item_ids @> $1::bigint[]", [trousers, workwear]
    )
    assert run_row["model"] == TINY_ID and run_row["status"] == "succeeded" and float(run_row["cost_usd"]) == 0


async def test_unchanged_items_are_skipped_force_and_a_new_image_rerun(worker: Worker, tiny, pool) -> None:
    slots, _ = labels(DEFAULT_VOCABULARY)
    ids = [await insert_item(pool, row(slots, "footwear")), await insert_item(pool, row(slots, "bag"))]
    await run(enrich_items, ids)
    before = [(await enrichment(pool, i)).enriched_at for i in ids]  # type: ignore[union-attr]
    again = await run(enrich_items, ids)
    assert again.result["enriched"] == 0 and again.result["skipped"] == 2
    assert [(await enrichment(pool, i)).enriched_at for i in ids] == before  # type: ignore[union-attr]

    # embed_items stored a new image (another hash, another vector): only that item is redone
    await pool.execute(
        "UPDATE items SET embedding = $2, embedding_hash = 'f00d' WHERE id = $1",
        ids[0],
        np.asarray(row(slots, "headwear"), dtype=np.float32),
    )
    changed = await run(enrich_items, ids)
    assert changed.result["enriched"] == 1 and changed.result["skipped"] == 1
    redone = await enrichment(pool, ids[0])
    assert redone is not None and redone.slot == "headwear" and redone.image_hash == "f00d"
    assert await pool.fetchval("SELECT slot FROM items WHERE id = $1", ids[0]) == "headwear"  # followed our pick

    forced = await run(enrich_items, ids, force=True)
    assert forced.result["enriched"] == 2


async def test_a_vocabulary_edit_reruns_every_item_once(
    worker: Worker, tiny, pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps({"max_tags": 2}))
    monkeypatch.setattr(get_settings(), "enrich_vocabulary_path", path)
    first_vocabulary = parse_vocabulary(path.read_text())
    slots, _ = labels(first_vocabulary)
    item = await insert_item(pool, row(slots, "neck"))
    assert (await run(enrich_items, [item])).result["enriched"] == 1
    assert (await run(enrich_items, [item])).result["skipped"] == 1

    edited = {"max_tags": 2, "style_tags": {**DEFAULT_VOCABULARY.style_tags, "gothic": ["gothic", "dark romantic"]}}
    path.write_text(json.dumps(edited))  # picked up without a restart
    record = await run(enrich_items, [item])
    new_version = parse_vocabulary(path.read_text()).version
    assert record.result["enriched"] == 1 and record.result["vocabulary"] == new_version
    stored = await enrichment(pool, item)
    assert stored is not None and stored.vocabulary_version == new_version and "gothic" in stored.tag_scores
    assert {version for _, version in cached_keys()} >= {first_vocabulary.version, new_version}
    assert (await run(enrich_items, [item])).result["skipped"] == 1


async def test_a_broken_vocabulary_file_fails_at_once_naming_the_setting(
    worker: Worker, tiny, pool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps({"slots": {"base_layer": ["a tee"]}}))
    monkeypatch.setattr(get_settings(), "enrich_vocabulary_path", path)
    item = await insert_item(pool, np.eye(512, dtype=np.float32)[0])
    dead = await run(enrich_items, [item])
    assert dead.status is JobStatus.DEAD and dead.attempts == 1
    assert "ENRICH_VOCABULARY_PATH" in (dead.last_error or "") and "11 slots" in (dead.last_error or "")
    assert await enrichment(pool, item) is None


async def test_items_without_a_current_vector_are_counted_not_guessed(worker: Worker, tiny, pool) -> None:
    slots, _ = labels(DEFAULT_VOCABULARY)
    unembedded = await insert_item(pool, None)
    other_model = await insert_item(pool, row(slots, "waist"), model="some-other-clip")
    record = await run(enrich_items, [unembedded, other_model, 987654321])
    assert record.result["enriched"] == 0 and record.result["not_embedded"] == 2 and record.result["missing"] == 1
    assert await enrichment(pool, unembedded) is None and await enrichment(pool, other_model) is None


async def test_a_slot_set_by_someone_else_is_kept(worker: Worker, tiny, pool) -> None:
    slots, _ = labels(DEFAULT_VOCABULARY)
    item = await insert_item(pool, row(slots, "legwear"), slot="footwear")
    await run(enrich_items, [item])
    assert (await enrichment(pool, item)).slot == "legwear"  # type: ignore[union-attr]
    assert await pool.fetchval("SELECT slot FROM items WHERE id = $1", item) == "footwear"


async def test_the_sweep_fans_out_only_items_needing_enrichment(worker: Worker, tiny, pool) -> None:
    slots, _ = labels(DEFAULT_VOCABULARY)
    done = await insert_item(pool, row(slots, "hands"))
    await run(enrich_items, [done])
    before = (await enrichment(pool, done)).enriched_at  # type: ignore[union-attr]
    fresh = [await insert_item(pool, row(slots, "outer_shell")), await insert_item(pool, row(slots, "base_layer"))]
    rejected = await insert_item(pool, row(slots, "bag"), status="rejected")
    unembedded = await insert_item(pool, None)

    first = await run(sweep_enrichment)
    assert first.status is JobStatus.SUCCEEDED and first.result["items"] >= 2 and first.result["llm"] is False
    stored = await eventually(lambda: _all_enriched(pool, fresh), what="the fanned-out batches")
    assert [e.slot for e in stored] == ["outer_shell", "base_layer"]
    assert (await enrichment(pool, done)).enriched_at == before  # type: ignore[union-attr]
    assert await enrichment(pool, rejected) is None and await enrichment(pool, unembedded) is None

    async def nothing_left() -> bool:  # batches of items from other tests may still be running
        return (await run(sweep_enrichment)).result["items"] == 0

    await eventually(nothing_left, what="a sweep with nothing to do")


async def _all_enriched(pool, ids):  # type: ignore[no-untyped-def]
    found = [await enrichment(pool, i) for i in ids]
    return found if all(found) else None
