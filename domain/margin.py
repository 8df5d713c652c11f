"""Margin scoring: what a listing would earn us resold, and the green/orange verdict for review.

All money is in minor units of the listing's currency (the fees and shipping in the policy are
read in that same currency: one operational currency is assumed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Verdict = Literal["green", "orange"]


def brand_key(brand: str | None) -> str:
    """The form brands are compared in: case- and space-insensitive."""
    return " ".join((brand or "").lower().split())


class MarginPolicy(BaseModel):
    """How a resale price is estimated and what margin counts as green."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default_multiplier: float = Field(2.0, gt=0, le=100)
    brand_multipliers: dict[str, float] = Field(default_factory=dict)
    fee_percent: float = Field(12.0, ge=0, lt=100)
    shipping_cents: int = Field(1_500, ge=0)
    green_margin_cents: int = Field(5_000)

    @field_validator("brand_multipliers")
    @classmethod
    def _normalised(cls, value: dict[str, float]) -> dict[str, float]:
        if any(m <= 0 or m > 100 for m in value.values()):
            raise ValueError("every brand multiplier must be in (0, 100]")
        return {brand_key(name): m for name, m in value.items()}

    def multiplier(self, brand: str | None) -> float:
        """The resale multiplier for this brand (the default for unknown or missing brands)."""
        return self.brand_multipliers.get(brand_key(brand), self.default_multiplier)


@dataclass(frozen=True)
class MarginScore:
    """A listing's estimated resale price and margin (None when it has no price) and its verdict."""

    resale_cents: int | None
    margin_cents: int | None
    verdict: Verdict


def score_listing(policy: MarginPolicy, price_cents: int | None, brand: str | None) -> MarginScore:
    """Estimate resale and margin: resale - price - fees on the resale - shipping; green at the threshold."""
    if price_cents is None:
        return MarginScore(resale_cents=None, margin_cents=None, verdict="orange")
    resale = round(price_cents * policy.multiplier(brand))
    fees = round(resale * policy.fee_percent / 100)
    margin = resale - price_cents - fees - policy.shipping_cents
    return MarginScore(
        resale_cents=resale, margin_cents=margin, verdict="green" if margin >= policy.green_margin_cents else "orange"
    )
