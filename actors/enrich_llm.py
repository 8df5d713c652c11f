"""The LLM stage of enrich_items: a description, tags and occasion fit per item, under a daily cost cap.

Every call is recorded in model_runs (tokens, latency, cost), whatever its outcome. A 429
or 5xx re-raises (Dramatiq retries the message after Retry-After; items already described
are skipped then). A cut-off, refused, malformed or off-schema answer is a failed run and
a failed attempt on the item: nothing of it is written, and it is not asked again for the
same inputs (so a model that cannot answer does not burn money in a loop). Once today's
runs reach LLM_DAILY_COST_CAP no call is made until midnight UTC; the admin is told once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any

import dramatiq

from actors.chain import enqueue
from actors.clients import call, get_providers
from actors.notify import notify
from config.settings import Settings, get_settings
from db.enrichments import EnrichTarget, select_enrich_targets, update_item_llm_enrichment, update_item_llm_failure
from db.model_runs import insert_model_run, select_cost_since
from db.notifications import select_notification
from db.pool import get_process_pool
from domain.enrichment import Vocabulary, fingerprint, llm_fingerprint
from domain.enrichment_llm import PROMPT_VERSION, ItemFacts, LlmEnrichment, judge, messages, response_format
from domain.model_runs import LLM_ENRICH, NewModelRun, Prices, cap_alert_key, cap_reached, cost_usd, day_start
from providers.llm import NAME, BadReply, ChatClient, Completion


@dataclass
class Budget:
    """Today's cost cap as one message sees it: once reached, the rest of the message skips the LLM."""

    cap_usd: float | None
    capped: bool = False

    async def exhausted(self) -> bool:
        """True when today's LLM runs reached the cap (the first time: alert the admin, once per day)."""
        if self.capped or self.cap_usd is None:
            return self.capped
        now = datetime.now(UTC)
        async with get_process_pool().acquire() as conn:
            spent = await select_cost_since(conn, LLM_ENRICH, day_start(now))
        if cap_reached(spent, self.cap_usd):
            self.capped = True
            await alert_cap_reached(now, spent, self.cap_usd)
        return self.capped


async def alert_cap_reached(now: datetime, spent: float, cap: float) -> None:
    """Tell the admin (OPS_ALERT_CHANNEL) that the LLM stopped for today: one notification per UTC day."""
    key = cap_alert_key(now)
    async with get_process_pool().acquire() as conn:
        if await select_notification(conn, key) is not None:
            return
    channel = get_settings().ops_alert_channel
    text = (
        f"LLM enrichment spent ${spent:.4f} of its ${cap:.2f} daily cap; no more LLM calls until midnight UTC "
        "(zero-shot enrichment goes on). Raise LLM_DAILY_COST_CAP to resume sooner."
    )
    await enqueue(
        notify,
        channel,
        "ops" if channel == "chat" else "admin",
        "ops_message",
        {"title": "LLM daily cost cap reached", "text": text},
        key,
        unique_key=key,
    )


async def llm_model_open() -> str | None:
    """The LLM model when the stage is configured and today's cap is not reached, else None."""
    settings = get_settings()
    if not settings.llm_base_url:
        return None
    return None if await Budget(settings.llm_daily_cost_cap).exhausted() else settings.llm_model


def chat_client(settings: Settings) -> ChatClient:
    """A client on this process's HTTP session (the session is the per-process resource)."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    return ChatClient(
        get_providers().session,
        settings.llm_base_url or "",
        key,
        settings.llm_model,
        max_tokens=settings.llm_max_tokens,
        timeout_s=settings.llm_timeout_s,
    )


async def enrich_with_llm(item_ids: list[int], vocabulary: Vocabulary, *, model_id: str, force: bool) -> dict[str, Any]:
    """Ask the LLM about items whose zero-shot result is current and has no attempt yet (all with `force`)."""
    settings = get_settings()
    async with get_process_pool().acquire() as conn:
        targets = await select_enrich_targets(conn, item_ids)
    current = [
        t
        for t in targets
        if t.embedding_model == model_id
        and t.image_hash
        and t.fingerprint == fingerprint([t.image_hash], model_id, vocabulary.version)
    ]
    prints = {t.id: llm_fingerprint(t.fingerprint or "", settings.llm_model, PROMPT_VERSION) for t in current}
    todo = [t for t in current if force or t.llm_fingerprint != prints[t.id]]
    if not todo:
        return {
            "llm_model": settings.llm_model,
            "llm_described": 0,
            "llm_failed": 0,
            "llm_capped": 0,
            "llm_skipped": len(prints),
        }
    stage = Stage(
        settings,
        chat_client(settings),
        vocabulary,
        Budget(settings.llm_daily_cost_cap),
        asyncio.Semaphore(settings.llm_concurrency),
    )
    outcomes = await asyncio.gather(*(stage.describe(t, prints[t.id]) for t in todo), return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:  # what succeeded is stored; a terminal error first, else a wait/failure that retries the message
        raise next((e for e in errors if not isinstance(e, dramatiq.Retry)), errors[0])
    counts = Counter(outcomes)
    return {
        "llm_model": settings.llm_model,
        "llm_described": counts["succeeded"],
        "llm_failed": counts["failed"],
        "llm_capped": counts["capped"],
        "llm_skipped": len(prints) - len(todo),
    }


@dataclass
class Stage:
    """One message's LLM calls: shared client, vocabulary, budget and concurrency."""

    settings: Settings
    client: ChatClient
    vocabulary: Vocabulary
    budget: Budget
    semaphore: asyncio.Semaphore

    async def describe(self, target: EnrichTarget, llm_print: str) -> str:
        """One item: 'succeeded', 'failed' (recorded, not retried) or 'capped'; 429/5xx/4xx raise after recording."""
        async with self.semaphore:
            if await self.budget.exhausted():
                return "capped"
            mode = self.settings.llm_response_format
            facts = ItemFacts(target.title, target.brand, target.size, target.condition, target.slot, target.tags)
            started = time.monotonic()
            try:
                completion = await call(
                    NAME,
                    lambda: self.client.complete(
                        messages(facts, self.vocabulary, mode), response_format(self.vocabulary, mode)
                    ),
                )
            except BadReply as error:
                await self.record(target, llm_print, None, str(error), started)
                return "failed"
            except Exception as error:  # 429, 5xx, timeouts, 4xx: the call is logged, the job decides
                await self.record(target, llm_print, None, str(error), started, item_failed=False)
                raise
            verdict = judge(completion.content, completion.finish_reason, completion.refusal, self.vocabulary)
            error_text = None if isinstance(verdict, LlmEnrichment) else verdict
            await self.record(target, llm_print, completion, error_text, started, answer=verdict)
            return "failed" if error_text else "succeeded"

    async def record(
        self,
        target: EnrichTarget,
        llm_print: str,
        completion: Completion | None,
        error: str | None,
        started: float,
        *,
        item_failed: bool = True,
        answer: Any = None,
    ) -> None:
        """Log the run (tokens, latency, cost) and, in the same transaction, the item's outcome."""
        s = self.settings
        prices = Prices(s.llm_prompt_price_per_1k, s.llm_completion_price_per_1k)
        tokens = (completion.prompt_tokens, completion.completion_tokens) if completion else (None, None)
        run = NewModelRun(
            kind=LLM_ENRICH,
            provider=NAME,
            model=s.llm_model,
            status="failed" if error else "succeeded",
            item_ids=(target.id,),
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_ms=int((time.monotonic() - started) * 1000),
            cost_usd=cost_usd(*tokens, prices),
            error=error,
            request_id=completion.request_id if completion else None,
            detail={
                "served_model": completion.model if completion else None,
                "prompt": PROMPT_VERSION,
                "finish_reason": completion.finish_reason if completion else None,
            },
        )
        basis = target.fingerprint or ""
        async with get_process_pool().acquire() as conn, conn.transaction():
            run_id = await insert_model_run(conn, run)
            if isinstance(answer, LlmEnrichment):
                await update_item_llm_enrichment(
                    conn,
                    target.id,
                    llm_model=s.llm_model,
                    basis=basis,
                    llm_fingerprint=llm_print,
                    answer=answer,
                    run_id=run_id,
                )
            elif item_failed:
                await update_item_llm_failure(
                    conn,
                    target.id,
                    llm_model=s.llm_model,
                    basis=basis,
                    llm_fingerprint=llm_print,
                    error=error or "failed",
                    run_id=run_id,
                )
