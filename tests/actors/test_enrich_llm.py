"""The LLM stage of enrich_items on a real worker against the fake OpenAI-compatible server.

429 (Retry-After honoured), 5xx, malformed JSON, a length cut-off, a refusal, every call in
model_runs with tokens, latency and cost, and the daily cost cap that stops calls and alerts once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, UTC

import aiohttp
import pytest
from dramatiq import Worker
from pydantic import SecretStr

from actors.enrich import enrich_items, sweep_enrichment
from config.settings import get_settings
from db.model_runs import select_model_runs
from domain.enrichment import DEFAULT_VOCABULARY
from domain.enrichment_llm import ItemFacts, messages, response_format
from domain.jobs import JobStatus
from domain.model_runs import LLM_ENRICH, cap_alert_key
from fakes.base import FakeRunner
from fakes.llm import FakeLlm
from providers.errors import Permanent, RateLimited
from providers.llm import BadReply, ChatClient
from tests.enrich_support import enrichment, insert_item, labels, row, run, tiny  # noqa: F401
from tests.orders_support import fake, fakes  # noqa: F401
from tests.waiting import wait_until

PROMPT_PRICE, COMPLETION_PRICE = 0.5, 1.5  # USD per 1k tokens: big enough to read costs at a glance


@pytest.fixture(scope="module")
def llm_server() -> Iterator[FakeLlm]:
    """The fake model server on 127.0.0.1."""
    server = FakeLlm()
    runner = FakeRunner(server).start()
    yield server
    runner.stop()


@pytest.fixture()
def llm(fake, tiny, llm_server: FakeLlm, monkeypatch: pytest.MonkeyPatch, pool) -> FakeLlm:  # type: ignore[no-untyped-def]
    """The LLM stage on, pointed at the fake (reset), no cap, one call at a time."""
    llm_server.reset()
    settings = get_settings()
    for name, value in {
        "llm_base_url": llm_server.base,
        "llm_api_key": SecretStr(llm_server.api_key),
        "llm_model": "gpt-4o-mini",
        "llm_prompt_price_per_1k": PROMPT_PRICE,
        "llm_completion_price_per_1k": COMPLETION_PRICE,
        "llm_daily_cost_cap": None,
        "llm_concurrency": 1,
        "llm_max_tokens": 300,
    }.items():
        monkeypatch.setattr(settings, name, value)
    return llm_server


async def items(pool, *slots: str) -> list[int]:  # type: ignore[no-untyped-def]
    matrix, _ = labels(DEFAULT_VOCABULARY)
    return [await insert_item(pool, row(matrix, slot), title=f"Piece {slot}") for slot in slots]


async def llm_runs(pool, item_id: int):  # type: ignore[no-untyped-def]
    async with pool.acquire() as conn:
        return await select_model_runs(conn, kind=LLM_ENRICH, item_id=item_id)


async def test_a_described_item_and_its_recorded_run(fake, llm, worker: Worker, pool) -> None:
    llm.set_usage(1200, 80)
    [item] = await items(pool, "mid_layer")
    record = await run(enrich_items, [item])
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 1
    assert record.result["llm_described"] == 1 and record.result["llm_failed"] == 0
    stored = await enrichment(pool, item)
    assert stored is not None and stored.llm_status == "succeeded" and stored.llm_model == "gpt-4o-mini"
    assert stored.description and stored.description.startswith("Piece mid_layer by Acne Studios")
    assert stored.llm_tags and set(stored.llm_tags) <= set(DEFAULT_VOCABULARY.style_tags)
    assert stored.occasion_fit and set(stored.occasion_fit) <= set(DEFAULT_VOCABULARY.occasions)

    [request] = llm.requests
    assert request["model"] == "gpt-4o-mini" and request["max_tokens"] == 300
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    [logged] = await llm_runs(pool, item)
    assert logged.status == "succeeded" and logged.provider == "llm" and stored.llm_run_id == logged.id
    assert (logged.prompt_tokens, logged.completion_tokens) == (1200, 80)
    assert logged.cost_usd == pytest.approx(1.2 * PROMPT_PRICE + 0.08 * COMPLETION_PRICE)
    assert logged.latency_ms is not None and logged.latency_ms >= 0 and logged.request_id.startswith("req_")

    again = await run(enrich_items, [item])  # unchanged: no second call
    assert again.result["llm_skipped"] == 1 and len(llm.requests) == 1


async def test_no_call_for_an_item_without_a_current_zero_shot_result(fake, llm, worker: Worker, pool) -> None:
    matrix, _ = labels(DEFAULT_VOCABULARY)
    stale = await insert_item(pool, row(matrix, "bag"), model="an-older-clip")  # waiting to be re-embedded
    record = await run(enrich_items, [stale])
    assert record.result["not_embedded"] == 1 and record.result["llm_described"] == 0
    assert llm.calls["chat"] == 0


async def test_a_429_waits_for_retry_after_then_succeeds(fake, llm, worker: Worker, pool) -> None:
    llm.fail_next("chat", 429, retry_after=1)
    [item] = await items(pool, "legwear")
    started = time.monotonic()
    record = await run(enrich_items, [item])
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 2
    assert time.monotonic() - started >= 0.9  # Retry-After was honoured, not a blind immediate retry
    assert llm.calls["chat"] == 2 and len(llm.requests) == 1
    failed, succeeded = await llm_runs(pool, item)
    assert failed.status == "failed" and "429" in (failed.error or "") and failed.cost_usd == 0
    assert succeeded.status == "succeeded"
    assert (await enrichment(pool, item)).llm_status == "succeeded"  # type: ignore[union-attr]


async def test_a_5xx_is_retried(fake, llm, worker: Worker, pool) -> None:
    llm.fail_next("chat", 503)
    [item] = await items(pool, "waist")
    record = await run(enrich_items, [item])
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 2
    assert [r.status for r in await llm_runs(pool, item)] == ["failed", "succeeded"]


@pytest.mark.parametrize(
    ("switch", "reason"),
    [("malformed_next", "malformed JSON"), ("cut_off_next", "finish_reason=length"), ("refuse_next", "refused")],
)
async def test_an_unusable_answer_is_a_failed_run_not_a_retry_loop(
    fake, llm, worker: Worker, pool, switch, reason
) -> None:
    [item] = await items(pool, "neck")
    getattr(llm, switch)()
    record = await run(enrich_items, [item])
    assert record.status is JobStatus.SUCCEEDED and record.attempts == 1  # no crash, no retry
    assert record.result["llm_failed"] == 1 and record.result["llm_described"] == 0
    stored = await enrichment(pool, item)
    assert stored is not None and stored.slot == "neck"  # the zero-shot half stands
    assert stored.llm_status == "failed" and reason in (stored.llm_error or "") and stored.description is None
    [logged] = await llm_runs(pool, item)
    assert logged.status == "failed" and reason in (logged.error or "") and logged.completion_tokens is not None
    if switch == "cut_off_next":  # the truncated answer was billed: its cost is logged
        assert logged.completion_tokens == 300 and logged.cost_usd > 0

    again = await run(enrich_items, [item])  # the same inputs are not asked again...
    assert again.result["llm_skipped"] == 1 and llm.calls["chat"] == 1
    forced = await run(enrich_items, [item], force=True)  # ...unless forced
    assert forced.result["llm_described"] == 1 and (await enrichment(pool, item)).description  # type: ignore[union-attr]


async def test_a_wrong_key_fails_the_job_at_once_and_leaves_items_to_retry(
    fake, llm, worker: Worker, pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "llm_api_key", SecretStr("sk-wrong"))
    [item] = await items(pool, "hands")
    record = await run(enrich_items, [item])
    assert record.status is JobStatus.DEAD and record.attempts == 1 and "401" in (record.last_error or "")
    [logged] = await llm_runs(pool, item)
    assert logged.status == "failed" and "401" in (logged.error or "")
    stored = await enrichment(pool, item)
    assert stored is not None and stored.slot == "hands" and stored.llm_status is None  # the sweep will retry it


async def test_a_cut_off_never_overwrites_an_earlier_answer(fake, llm, worker: Worker, pool) -> None:
    [item] = await items(pool, "bag")
    await run(enrich_items, [item])
    first = await enrichment(pool, item)
    llm.cut_off_next()
    await run(enrich_items, [item], force=True)
    after = await enrichment(pool, item)
    assert after is not None and first is not None
    assert after.description == first.description and after.llm_tags == first.llm_tags
    assert after.llm_status == "failed" and after.llm_enriched_at == first.llm_enriched_at


async def test_the_daily_cost_cap_stops_calls_and_alerts_the_admin_once(
    fake, llm, worker: Worker, pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await pool.execute("DELETE FROM model_runs WHERE kind = $1", LLM_ENRICH)  # today's spend starts at 0
    await pool.execute("DELETE FROM notifications WHERE idempotency_key LIKE 'llm_cost_cap:%'")
    llm.set_usage(1000, 1000)  # 0.5 + 1.5 = $2 per call
    monkeypatch.setattr(get_settings(), "llm_daily_cost_cap", 3.0)
    ids = await items(pool, "base_layer", "mid_layer", "outer_shell", "legwear")
    record = await run(enrich_items, ids)
    # $0 -> call, $2 -> call, $4 >= $3 -> stop: two calls, two items left for tomorrow
    assert record.result["llm_described"] == 2 and record.result["llm_capped"] == 2 and llm.calls["chat"] == 2
    wait_until(lambda: len(fake.pushover.sent) == 1, what="the cost-cap alert")
    assert "cost cap" in fake.pushover.sent[0]["title"]

    more = await items(pool, "footwear")
    second = await run(enrich_items, ids + more)
    assert second.result["llm_capped"] == 3 and llm.calls["chat"] == 2  # no call at all
    sweep = await run(sweep_enrichment)
    assert sweep.result["llm"] is False  # the sweep no longer fans out LLM work today
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE idempotency_key = $1", cap_alert_key(datetime.now(UTC))
        )
        == 1
    )
    assert len(fake.pushover.sent) == 1  # once per day, however many jobs hit the cap


async def test_the_client_reads_the_wire_shape_and_classifies_failures(llm_server: FakeLlm) -> None:
    llm_server.reset()
    facts = ItemFacts("Boots", None, "42", None, "footwear", ())
    async with aiohttp.ClientSession() as session:
        client = ChatClient(session, llm_server.base, llm_server.api_key, "gpt-4o-mini")
        call = lambda: client.complete(messages(facts, DEFAULT_VOCABULARY), response_format(DEFAULT_VOCABULARY))  # noqa: E731
        completion = await call()
        assert completion.finish_reason == "stop" and completion.prompt_tokens and completion.request_id
        llm_server.fail_next("chat", 429, retry_after=2)
        with pytest.raises(RateLimited) as limited:
            await call()
        assert limited.value.delay_ms == 2000
        llm_server.fail_next("chat", 200, body="<html>proxy error</html>")
        with pytest.raises(BadReply):
            await call()
        wrong = ChatClient(session, llm_server.base, "sk-wrong", "gpt-4o-mini")
        with pytest.raises(Permanent, match="401 Incorrect API key"):
            await wrong.complete(messages(facts, DEFAULT_VOCABULARY), response_format(DEFAULT_VOCABULARY))
