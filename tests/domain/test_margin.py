"""Margin scoring: resale estimate per brand, fees and shipping, and the green/orange threshold."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.margin import MarginPolicy, MarginScore, brand_key, score_listing

POLICY = MarginPolicy(
    default_multiplier=2.0,
    brand_multipliers={"Rick Owens": 3.0, "zara": 1.1},
    fee_percent=10.0,
    shipping_cents=1_000,
    green_margin_cents=5_000,
)


@pytest.mark.parametrize(
    ("price", "brand", "expected"),
    [
        # resale 20000, fees 2000, shipping 1000: margin 7000 -> green
        (10_000, None, MarginScore(20_000, 7_000, "green")),
        # brand lookup is case- and space-insensitive
        (10_000, "  RICK   owens ", MarginScore(30_000, 16_000, "green")),
        # a low multiplier brand loses money
        (10_000, "Zara", MarginScore(11_000, -1_100, "orange")),
        # unknown brand: the default multiplier
        (10_000, "Acne Studios", MarginScore(20_000, 7_000, "green")),
        # above the threshold: resale 16000, fees 1600, margin 16000-8000-1600-1000 = 5400 -> green
        (8_000, None, MarginScore(16_000, 5_400, "green")),
        # resale 15000, fees 1500, margin 15000-7500-1500-1000 = 5000 -> exactly the threshold is green
        (7_500, None, MarginScore(15_000, 5_000, "green")),
        # resale 14998, fees 1500, margin 14998-7499-1500-1000 = 4999 -> orange
        (7_499, None, MarginScore(14_998, 4_999, "orange")),
        (0, None, MarginScore(0, -1_000, "orange")),
        # no price: nothing to estimate, a human decides
        (None, "Rick Owens", MarginScore(None, None, "orange")),
    ],
)
def test_scores(price: int | None, brand: str | None, expected: MarginScore) -> None:
    assert score_listing(POLICY, price, brand) == expected


@pytest.mark.parametrize(("threshold", "verdict"), [(-10_000, "green"), (7_000, "green"), (7_001, "orange")])
def test_the_threshold_is_configurable(threshold: int, verdict: str) -> None:
    policy = POLICY.model_copy(update={"green_margin_cents": threshold})
    assert score_listing(policy, 10_000, None).verdict == verdict


@pytest.mark.parametrize(("fee_percent", "shipping", "margin"), [(0.0, 0, 10_000), (50.0, 0, 0), (0.0, 2_500, 7_500)])
def test_fees_and_shipping_come_off_the_margin(fee_percent: float, shipping: int, margin: int) -> None:
    policy = MarginPolicy(default_multiplier=2.0, fee_percent=fee_percent, shipping_cents=shipping)
    assert score_listing(policy, 10_000, "x").margin_cents == margin


@pytest.mark.parametrize(
    "bad",
    [
        {"default_multiplier": 0},
        {"fee_percent": 100},
        {"shipping_cents": -1},
        {"brand_multipliers": {"x": -1.0}},
    ],
)
def test_bad_policies_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        MarginPolicy(**bad)


@pytest.mark.parametrize(("raw", "key"), [("Rick Owens", "rick owens"), (" COMME  des ", "comme des"), (None, "")])
def test_brand_key(raw: str | None, key: str) -> None:
    assert brand_key(raw) == key
