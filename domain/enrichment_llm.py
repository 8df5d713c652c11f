"""The LLM half of enrichment: the prompt, the strict JSON schema, and judging what came back.

The schema's tag and occasion lists come from the vocabulary, so a model that honours
strict structured outputs can only answer words we know; servers that do not are checked
here anyway. A reply is usable only when it finished (`stop`), was not refused, parses,
and matches the schema; anything else is a failed run and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.enrichment import Vocabulary

SCHEMA_NAME = "listing_enrichment"
SYSTEM_PROMPT = (
    "You describe second-hand fashion listings for a curated archive shop. Given a listing's facts "
    "and the tags an image model suggested, write a short, factual product description (at most three "
    "sentences, no prices, no marketplace names, no invented measurements), choose the style tags that "
    "fit from the allowed list, and the occasions the piece suits from the allowed list. Answer in JSON."
)
PROMPT_VERSION = hashlib.sha256(f"{SCHEMA_NAME}/1\n{SYSTEM_PROMPT}".encode()).hexdigest()[:12]
MAX_DESCRIPTION = 1000


class LlmEnrichment(BaseModel):
    """A usable answer: a description, style tags and occasion fit (all from the vocabulary)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    tags: list[str] = Field(max_length=10)
    occasion_fit: list[str] = Field(max_length=10)


@dataclass(frozen=True)
class ItemFacts:
    """What the model is told about one item (public facts only: never source URLs)."""

    title: str
    brand: str | None
    size: str | None
    condition: str | None
    slot: str | None
    tags: tuple[str, ...]


def response_schema(vocabulary: Vocabulary) -> dict[str, Any]:
    """The strict JSON schema (every property required, no extra ones) for `response_format`."""

    def enum_list(values: list[str]) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "enum": values}}

    return {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "tags": enum_list(list(vocabulary.style_tags)),
            "occasion_fit": enum_list(list(vocabulary.occasions)),
        },
        "required": ["description", "tags", "occasion_fit"],
        "additionalProperties": False,
    }


def response_format(vocabulary: Vocabulary, mode: str = "json_schema") -> dict[str, Any]:
    """`response_format` for the request: strict json_schema, or json_object for servers without it."""
    if mode == "json_object":
        return {"type": "json_object"}
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": response_schema(vocabulary), "strict": True},
    }


def messages(facts: ItemFacts, vocabulary: Vocabulary, mode: str = "json_schema") -> list[dict[str, str]]:
    """The chat messages for one item."""
    system = SYSTEM_PROMPT
    if mode == "json_object":  # without a schema the model must be told the shape in words
        system += " The JSON object must match this JSON schema: " + json.dumps(response_schema(vocabulary))
    user = {
        "title": facts.title,
        "brand": facts.brand,
        "size": facts.size,
        "condition": facts.condition,
        "stylist_slot": facts.slot,
        "image_model_tags": list(facts.tags),
        "allowed_tags": list(vocabulary.style_tags),
        "allowed_occasions": vocabulary.occasions,
    }
    return [{"role": "system", "content": system}, {"role": "user", "content": json.dumps(user, ensure_ascii=False)}]


def judge(
    content: str | None, finish_reason: str | None, refusal: str | None, vocabulary: Vocabulary
) -> LlmEnrichment | str:
    """The usable answer, or why there is none (a cut-off, a refusal, malformed or off-schema JSON)."""
    if finish_reason == "length":
        return "cut off at the token limit (finish_reason=length): nothing written"
    if refusal:
        return f"the model refused: {refusal[:200]}"
    if finish_reason not in ("stop", None):
        return f"unusable finish_reason {finish_reason!r}"
    if not content:
        return "empty content"
    try:
        answer = LlmEnrichment.model_validate_json(content)
    except ValidationError as error:
        kind = "malformed JSON" if any(e["type"] == "json_invalid" for e in error.errors()) else "off-schema JSON"
        return f"{kind}: {error.errors()[0]['msg'][:200]}"
    unknown = sorted({*answer.tags} - set(vocabulary.style_tags)) + sorted(
        {*answer.occasion_fit} - set(vocabulary.occasions)
    )
    if unknown:
        return f"off-schema JSON: unknown labels {', '.join(unknown)[:200]}"
    return LlmEnrichment(
        description=answer.description.strip(),
        tags=list(dict.fromkeys(answer.tags)),
        occasion_fit=list(dict.fromkeys(answer.occasion_fit)),
    )
