"""Model runs: one record per model call (tokens, latency, cost, outcome), and the daily cost cap."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, UTC
from typing import Literal

RunStatus = Literal["succeeded", "failed"]
LLM_ENRICH = "llm_enrich"  # kind of an LLM enrichment call
ZERO_SHOT = "zero_shot"  # kind of one zero-shot CLIP batch (local, costs nothing)


@dataclass(frozen=True)
class NewModelRun:
    """What is recorded about one call, before it has an id."""

    kind: str
    model: str
    status: RunStatus
    item_ids: tuple[int, ...] = ()
    provider: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    cost_usd: float = 0.0
    error: str | None = None
    request_id: str | None = None
    detail: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRun(NewModelRun):
    """A recorded run."""

    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class Prices:
    """USD per 1,000 prompt and completion tokens (the provider's price list, kept in settings)."""

    prompt_per_1k: float
    completion_per_1k: float


def cost_usd(prompt_tokens: int | None, completion_tokens: int | None, prices: Prices) -> float:
    """The cost of one call from its usage (missing usage counts as zero tokens)."""
    return round(
        (prompt_tokens or 0) / 1000 * prices.prompt_per_1k + (completion_tokens or 0) / 1000 * prices.completion_per_1k,
        8,
    )


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: the cost cap counts from here."""
    return datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)


def cap_reached(spent_today_usd: float, cap_usd: float | None) -> bool:
    """True when today's spend has reached the cap (None: no cap; 0: no paid calls at all)."""
    return cap_usd is not None and spent_today_usd >= cap_usd


def cap_alert_key(now: datetime) -> str:
    """The idempotency key of the cost-cap alert: one per UTC day."""
    return f"llm_cost_cap:{now.astimezone(UTC).date().isoformat()}"
