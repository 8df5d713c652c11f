"""Enrichment: the stylist's eleven slots, the style vocabulary, prompt ensembles, picks and fingerprints.

Zero-shot CLIP compares an item's image vector with the text vectors of prompts; the maths
lives in `ml.zeroshot`, the choices here work on plain `{label: score}` mappings. A
vocabulary is data (a JSON file an admin may edit, see ENRICH_VOCABULARY_PATH); its
version is the hash of its content, so any edit re-enriches every item once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The seven fixed slots of the seeds' 11-slot stylist canvas; the other four are "flexible"
# and named by the vocabulary (by default: footwear, headwear, bag, accessory).
FIXED_SLOTS = ("base_layer", "mid_layer", "outer_shell", "neck", "hands", "waist", "legwear")
SLOT_COUNT = 11
LABEL = r"^[a-z0-9_-]{1,50}$"  # the same shape web/search.py accepts for ?slot=

DEFAULT_SLOTS: dict[str, list[str]] = {
    "base_layer": ["a t-shirt", "a tank top", "a long sleeve shirt", "a button-up shirt", "a polo shirt"],
    "mid_layer": ["a hoodie", "a knit sweater", "a cardigan", "a sweatshirt", "a fleece"],
    "outer_shell": ["a jacket", "a coat", "a parka", "a leather jacket", "a blazer"],
    "neck": ["a scarf", "a neck chain", "a necklace", "a bandana"],
    "hands": ["gloves", "a ring", "a bracelet", "a wristwatch"],
    "waist": ["a belt", "a leather belt", "a belt buckle"],
    "legwear": ["trousers", "jeans", "shorts", "cargo pants", "a skirt"],
    "footwear": ["sneakers", "boots", "shoes", "sandals", "loafers"],
    "headwear": ["a cap", "a beanie", "a hat", "a bucket hat"],
    "bag": ["a bag", "a backpack", "a tote bag", "a messenger bag"],
    "accessory": ["sunglasses", "a wallet", "earrings", "a keychain"],
}
DEFAULT_STYLE_TAGS: dict[str, list[str]] = {
    "minimal": ["minimalist", "clean simple"],
    "streetwear": ["streetwear", "urban street style"],
    "workwear": ["workwear", "rugged utility"],
    "vintage": ["vintage", "retro"],
    "techwear": ["techwear", "technical functional"],
    "outdoor": ["outdoor hiking", "gorpcore"],
    "tailored": ["tailored", "formal menswear"],
    "preppy": ["preppy", "ivy league"],
    "avant-garde": ["avant-garde", "deconstructed designer"],
    "punk": ["punk", "grunge"],
    "military": ["military", "army surplus"],
    "sporty": ["sporty", "athletic"],
    "western": ["western", "cowboy"],
    "y2k": ["y2k", "early 2000s"],
    "luxury": ["luxury designer", "high fashion"],
    "bohemian": ["bohemian", "boho"],
}
DEFAULT_OCCASIONS = ["everyday", "work", "weekend", "evening", "date", "travel", "outdoor", "formal", "festival"]
SLOT_TEMPLATES = ["a photo of {}.", "a product photo of {}.", "a flat lay photo of {}, clothing."]
TAG_TEMPLATES = ["a photo of {} clothing.", "a {} outfit.", "{} fashion."]


class Vocabulary(BaseModel):
    """What enrichment can say: slot and style-tag phrases, prompt templates, occasions, pick rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slots: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_SLOTS.items()})
    style_tags: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_STYLE_TAGS.items()}
    )
    occasions: list[str] = Field(default_factory=lambda: list(DEFAULT_OCCASIONS))
    slot_templates: list[str] = Field(default_factory=lambda: list(SLOT_TEMPLATES), min_length=1)
    tag_templates: list[str] = Field(default_factory=lambda: list(TAG_TEMPLATES), min_length=1)
    max_tags: int = Field(3, ge=1, le=10)
    min_tag_probability: float = Field(0.1, ge=0, le=1, description="Tags after the best need this softmax share.")
    logit_scale: float = Field(100.0, gt=0, description="CLIP's temperature for the softmax over labels.")

    @field_validator("slots", "style_tags")
    @classmethod
    def _labels(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for label, phrases in value.items():
            if not _is_label(label) or not phrases or not all(p.strip() for p in phrases):
                raise ValueError(f"{label!r}: labels are [a-z0-9_-]{{1,50}} with at least one non-empty phrase")
        return value

    @field_validator("occasions")
    @classmethod
    def _occasions(cls, value: list[str]) -> list[str]:
        if not value or not all(_is_label(o) for o in value) or len(set(value)) != len(value):
            raise ValueError("occasions are distinct [a-z0-9_-]{1,50} labels, at least one")
        return value

    @field_validator("slot_templates", "tag_templates")
    @classmethod
    def _templates(cls, value: list[str]) -> list[str]:
        if not all(t.count("{}") == 1 for t in value):
            raise ValueError("each template holds exactly one {} (where the phrase goes)")
        return value

    @model_validator(mode="after")
    def _eleven_slots(self) -> Vocabulary:
        missing = [s for s in FIXED_SLOTS if s not in self.slots]
        if missing or len(self.slots) != SLOT_COUNT:
            raise ValueError(
                f"the stylist has {SLOT_COUNT} slots: {', '.join(FIXED_SLOTS)} and four flexible ones"
                + (f" (missing {', '.join(missing)})" if missing else f" (got {len(self.slots)})")
            )
        if not self.style_tags:
            raise ValueError("at least one style tag")
        return self

    @property
    def version(self) -> str:
        """A digest of the content: any edit (even reordering) is a new version."""
        canonical = json.dumps(self.model_dump(), sort_keys=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def slot_prompts(self) -> dict[str, list[str]]:
        """Each slot's prompt ensemble (every template with every phrase)."""
        return _prompts(self.slots, self.slot_templates)

    def tag_prompts(self) -> dict[str, list[str]]:
        """Each style tag's prompt ensemble."""
        return _prompts(self.style_tags, self.tag_templates)


DEFAULT_VOCABULARY = Vocabulary()


def parse_vocabulary(text: str) -> Vocabulary:
    """A vocabulary from JSON text; keys left out keep their defaults. Raises ValueError naming the problem."""
    try:
        return Vocabulary.model_validate_json(text)
    except ValueError as error:
        raise ValueError(f"invalid enrichment vocabulary: {error}") from None


def _is_label(value: str) -> bool:
    return 1 <= len(value) <= 50 and all(c.isdigit() or ("a" <= c <= "z") or c in "_-" for c in value)


def _prompts(phrases: Mapping[str, Sequence[str]], templates: Sequence[str]) -> dict[str, list[str]]:
    return {label: [t.format(p.strip()) for p in items for t in templates] for label, items in phrases.items()}


@dataclass(frozen=True)
class Pick:
    """The chosen slot and tags of one item, with every label's score (cosine similarity)."""

    slot: str
    slot_score: float
    slot_scores: dict[str, float]
    tags: tuple[str, ...]
    tag_scores: dict[str, float]


def argmax(scores: Mapping[str, float]) -> str:
    """The best-scoring label; ties go to the label listed first (deterministic)."""
    if not scores:
        raise ValueError("no scores to choose from")
    best = next(iter(scores))
    for label, score in scores.items():
        if score > scores[best]:
            best = label
    return best


def softmax(scores: Mapping[str, float], scale: float) -> dict[str, float]:
    """CLIP's label probabilities: softmax of `scale` x cosine (numerically stable)."""
    top = max(scores.values())
    weights = {label: math.exp(scale * (s - top)) for label, s in scores.items()}
    total = sum(weights.values())
    return {label: w / total for label, w in weights.items()}


def top_tags(scores: Mapping[str, float], vocabulary: Vocabulary) -> tuple[str, ...]:
    """The best tag, then up to max_tags - 1 more whose softmax share reaches min_tag_probability."""
    shares = softmax(scores, vocabulary.logit_scale)
    ranked = sorted(scores, key=lambda label: -scores[label])  # stable: ties keep the vocabulary's order
    return tuple(
        ranked[:1] + [t for t in ranked[1 : vocabulary.max_tags] if shares[t] >= vocabulary.min_tag_probability]
    )


def pick(slot_scores: Mapping[str, float], tag_scores: Mapping[str, float], vocabulary: Vocabulary) -> Pick:
    """Choose the slot (argmax) and the tags of one item from its similarity scores."""
    slot = argmax(slot_scores)
    return Pick(
        slot=slot,
        slot_score=float(slot_scores[slot]),
        slot_scores={k: float(v) for k, v in slot_scores.items()},
        tags=top_tags(tag_scores, vocabulary),
        tag_scores={k: float(v) for k, v in tag_scores.items()},
    )


def fingerprint(image_hashes: Sequence[str], model_id: str, vocabulary_version: str) -> str:
    """What an enrichment was made from: the image(s), the CLIP model and the vocabulary."""
    return _digest("enrich/1", *image_hashes, f"model={model_id}", f"vocabulary={vocabulary_version}")


def llm_fingerprint(basis: str, llm_model: str, prompt_version: str) -> str:
    """What an LLM enrichment was made from: the zero-shot fingerprint, the LLM and the prompt."""
    return _digest("enrich-llm/1", basis, f"llm={llm_model}", f"prompt={prompt_version}")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
