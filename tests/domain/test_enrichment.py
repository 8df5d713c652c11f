"""Enrichment rules: the eleven slots, vocabulary validation and versions, picks, fingerprints, LLM judging, costs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone, UTC

import pytest

from domain.enrichment import (
    DEFAULT_VOCABULARY,
    FIXED_SLOTS,
    Vocabulary,
    argmax,
    fingerprint,
    llm_fingerprint,
    parse_vocabulary,
    pick,
    softmax,
    top_tags,
)
from domain.enrichment_llm import ItemFacts, LlmEnrichment, judge, messages, response_format, response_schema
from domain.model_runs import Prices, cap_alert_key, cap_reached, cost_usd, day_start


def test_the_default_vocabulary_has_the_stylists_eleven_slots() -> None:
    slots = list(DEFAULT_VOCABULARY.slots)
    assert len(slots) == 11 and slots[:7] == list(FIXED_SLOTS)
    assert set(slots[7:]) == {"footwear", "headwear", "bag", "accessory"}
    prompts = DEFAULT_VOCABULARY.slot_prompts()
    assert "a photo of a hoodie." in prompts["mid_layer"]
    assert len(prompts["legwear"]) == len(DEFAULT_VOCABULARY.slots["legwear"]) * len(DEFAULT_VOCABULARY.slot_templates)
    assert "a photo of minimalist clothing." in DEFAULT_VOCABULARY.tag_prompts()["minimal"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"slots": {"base_layer": ["a tee"]}}, "11 slots"),
        ({"slots": {**{s: ["x"] for s in list(DEFAULT_VOCABULARY.slots)[1:]}, "extra": ["x"]}}, "missing base_layer"),
        ({"style_tags": {"Bad Label": ["x"]}}, "labels are"),
        ({"style_tags": {"ok": []}}, "at least one non-empty phrase"),
        ({"slot_templates": ["no placeholder"]}, "exactly one {}"),
        ({"occasions": ["work", "work"]}, "distinct"),
        ({"max_tags": 0}, "max_tags"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_vocabulary_is_refused_naming_the_problem(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match="invalid enrichment vocabulary") as error:
        parse_vocabulary(json.dumps(change))
    assert message in str(error.value)


def test_left_out_keys_keep_the_defaults_and_any_edit_is_a_new_version() -> None:
    same = parse_vocabulary(json.dumps({"max_tags": 3}))
    assert same == DEFAULT_VOCABULARY and same.version == DEFAULT_VOCABULARY.version
    edited = parse_vocabulary(json.dumps({"style_tags": {**DEFAULT_VOCABULARY.style_tags, "gothic": ["gothic"]}}))
    assert edited.version != DEFAULT_VOCABULARY.version
    phrase = parse_vocabulary(json.dumps({"occasions": ["work", "everyday"]}))
    assert phrase.version not in (DEFAULT_VOCABULARY.version, edited.version)


def test_argmax_picks_the_best_and_breaks_ties_by_order() -> None:
    assert argmax({"a": 0.1, "b": 0.3, "c": 0.2}) == "b"
    assert argmax({"a": 0.3, "b": 0.3}) == "a"
    with pytest.raises(ValueError):
        argmax({})


def test_softmax_is_stable_and_sums_to_one() -> None:
    shares = softmax({"a": 0.30, "b": 0.29, "c": -0.2}, 100.0)
    assert abs(sum(shares.values()) - 1) < 1e-9 and shares["a"] > shares["b"] > shares["c"]
    assert softmax({"a": 1000.0, "b": 999.0}, 100.0)["a"] > 0.99  # no overflow


def test_top_tags_keep_the_best_and_close_runners_up_only() -> None:
    vocabulary = Vocabulary(max_tags=3, min_tag_probability=0.1)
    scores = {"minimal": 0.310, "workwear": 0.305, "punk": 0.300, "y2k": 0.200}
    assert top_tags(scores, vocabulary) == ("minimal", "workwear", "punk")
    far = {"minimal": 0.31, "workwear": 0.25, "punk": 0.20}
    assert top_tags(far, vocabulary) == ("minimal",)  # the best is always kept
    assert top_tags(scores, Vocabulary(max_tags=1)) == ("minimal",)


def test_pick_records_every_score() -> None:
    chosen = pick({"legwear": 0.9, "waist": 0.2}, {"minimal": 0.3, "punk": 0.1}, DEFAULT_VOCABULARY)
    assert chosen.slot == "legwear" and chosen.slot_score == 0.9
    assert chosen.slot_scores == {"legwear": 0.9, "waist": 0.2} and chosen.tag_scores == {"minimal": 0.3, "punk": 0.1}
    assert chosen.tags == ("minimal",)


def test_the_fingerprint_changes_with_image_model_or_vocabulary_only() -> None:
    base = fingerprint(["aa"], "clip-1", "v1")
    assert base == fingerprint(["aa"], "clip-1", "v1")
    assert (
        len(
            {
                base,
                fingerprint(["ab"], "clip-1", "v1"),
                fingerprint(["aa"], "clip-2", "v1"),
                fingerprint(["aa"], "clip-1", "v2"),
                fingerprint(["aa", "bb"], "clip-1", "v1"),
            }
        )
        == 5
    )
    assert llm_fingerprint(base, "gpt", "p1") != llm_fingerprint(base, "gpt", "p2") != llm_fingerprint(base, "x", "p2")


FACTS = ItemFacts("Black hoodie", "Rick Owens", "M", "good", "mid_layer", ("minimal",))


def test_the_strict_schema_lists_the_vocabulary_and_requires_every_property() -> None:
    schema = response_schema(DEFAULT_VOCABULARY)
    assert schema["additionalProperties"] is False and sorted(schema["required"]) == sorted(schema["properties"])
    assert schema["properties"]["tags"]["items"]["enum"] == list(DEFAULT_VOCABULARY.style_tags)
    fmt = response_format(DEFAULT_VOCABULARY)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert response_format(DEFAULT_VOCABULARY, "json_object") == {"type": "json_object"}
    user = json.loads(messages(FACTS, DEFAULT_VOCABULARY)[1]["content"])
    assert user["title"] == "Black hoodie" and user["image_model_tags"] == ["minimal"]
    assert "JSON schema" in messages(FACTS, DEFAULT_VOCABULARY, "json_object")[0]["content"]


GOOD = json.dumps({"description": " A hoodie. ", "tags": ["minimal", "minimal"], "occasion_fit": ["everyday"]})


@pytest.mark.parametrize(
    ("content", "finish", "refusal", "expected"),
    [
        (GOOD[:20], "length", None, "cut off at the token limit"),
        (None, "stop", "no", "refused"),
        ("Sure! {description:", "stop", None, "malformed JSON"),
        (json.dumps({"description": "x", "tags": []}), "stop", None, "off-schema JSON"),
        (
            json.dumps({"description": "x", "tags": ["gothic"], "occasion_fit": []}),
            "stop",
            None,
            "unknown labels gothic",
        ),
        (GOOD, "content_filter", None, "unusable finish_reason"),
        ("", "stop", None, "empty content"),
    ],
)
def test_unusable_answers_say_why(content, finish, refusal, expected) -> None:  # type: ignore[no-untyped-def]
    verdict = judge(content, finish, refusal, DEFAULT_VOCABULARY)
    assert isinstance(verdict, str) and expected in verdict


def test_a_good_answer_is_cleaned() -> None:
    verdict = judge(GOOD, "stop", None, DEFAULT_VOCABULARY)
    assert verdict == LlmEnrichment(description="A hoodie.", tags=["minimal"], occasion_fit=["everyday"])


def test_cost_and_the_daily_cap() -> None:
    prices = Prices(prompt_per_1k=0.5, completion_per_1k=1.5)
    assert cost_usd(1000, 2000, prices) == 3.5 and cost_usd(None, None, prices) == 0
    assert not cap_reached(0.99, 1.0) and cap_reached(1.0, 1.0) and cap_reached(0.0, 0.0)
    assert not cap_reached(1e9, None)
    late = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # already 2 March in UTC
    assert day_start(late) == datetime(2026, 3, 2, tzinfo=UTC)
    assert cap_alert_key(late) == "llm_cost_cap:2026-03-02"
