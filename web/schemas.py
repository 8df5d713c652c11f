"""Request and response bodies of the API (pydantic; the OpenAPI document is built from them)."""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from domain.notifications import TEMPLATES, required_fields
from web.errors import Problem  # noqa: F401  (the error body; handlers document it from here)



def _integral(value: Any) -> Any:
    """A JSON number with no fraction (7.0) is an integer in JSON Schema; strict pydantic would refuse it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# bodies are validated strictly (no "5" or false for a number); 7.0 is still the integer 7
Int = Annotated[int, BeforeValidator(_integral)]
MAX_ID = 2**63 - 1  # a bigint column holds 1..2^63-1; a larger id names nothing
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral)]
# Postgres refuses NUL in text and jsonb: free-form text that may reach it is refused at the door
TEXT = r"^[^\x00]*$"
NAME = r"^[a-z0-9_-]+$"
UNIQUE_KEY_MAX = 200
NOTIFY_DATA_MAX = 16 * 1024  # bytes of `data` as JSON: it travels in the message and is stored for days
Template = Literal[tuple(sorted(TEMPLATES))]  # type: ignore[valid-type]


class JobBody(BaseModel):
    """Fields every job request accepts."""

    model_config = ConfigDict(extra="forbid")

    unique_key: str | None = Field(
        None, min_length=1, max_length=UNIQUE_KEY_MAX,
        description="While a job with this key is queued, delayed, running or retrying, return it instead.",
    )

    def arguments(self) -> dict[str, Any]:
        """The actor's keyword arguments (the body without the enqueue options)."""
        return self.model_dump(exclude={"unique_key"})


class PingJob(JobBody):
    """A diagnostic job: answers `message` back, or fails on purpose to exercise retries."""

    message: str = Field("pong", max_length=200, pattern=TEXT)
    fail: bool = False
    sleep_ms: Int = Field(0, ge=0, le=60_000)


class ScrapeJob(JobBody):
    """Scrape one marketplace search on an edge worker."""

    source: str = Field(min_length=1, max_length=50, pattern=NAME,
                        description="A configured scrape source (`backroom schedules sources`); 404 otherwise.")
    query: str = Field(min_length=1, max_length=200, pattern=TEXT)
    limit: Int = Field(40, ge=1, le=200)
    force: bool = Field(False, description="Queue it even when no edge node is live (otherwise 409).")


class EmbedJob(JobBody):
    """Embed items' images (all missing ones when `item_ids` is empty)."""

    item_ids: list[Id] = Field(default_factory=list, max_length=1000)
    force: bool = False


class PruneJob(JobBody):
    """Check that live items' source listings still exist."""

    source: str | None = Field(None, min_length=1, max_length=50, pattern=NAME,
                               description="Only this configured scrape source's items; 404 for another.")


class EnrichJob(JobBody):
    """Derive category and style tags for items."""

    item_ids: list[Id] = Field(min_length=1, max_length=1000)
    force: bool = Field(False, description="Enrich again even when image, model and vocabulary are unchanged.")


class CollectionsJob(JobBody):
    """Generate the curated collections of one surface."""

    surface: str = Field(min_length=1, max_length=50, pattern=NAME,
                         description="A configured collection surface (`backroom schedules surfaces`); 404 otherwise.")


class NotifyJob(JobBody):
    """Send one notification through a provider."""

    # each template's required `data` fields, stated in the schema (JSON Schema if/then)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"allOf": [
        {"if": {"properties": {"template": {"const": name}}, "required": ["template"]},
         "then": {"properties": {"data": {"required": sorted(required_fields(name))}}, "required": ["data"]}}
        for name in sorted(TEMPLATES) if required_fields(name)]})

    channel: Literal["email", "push", "chat"]
    recipient: str = Field(min_length=1, max_length=320, pattern=TEXT)
    template: Template
    data: dict[str, Any] = Field(
        default_factory=dict, max_length=100,
        description=f"The template's fields; at most {NOTIFY_DATA_MAX} bytes as JSON, no NUL characters.")
    idempotency_key: str = Field(min_length=1, max_length=200, pattern=TEXT)

    @field_validator("data")
    @classmethod
    def _storable(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value).encode()) > NOTIFY_DATA_MAX:
            raise ValueError(f"at most {NOTIFY_DATA_MAX} bytes as JSON")
        if _has_nul(value):
            raise ValueError("NUL characters cannot be stored")  # jsonb refuses them
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class Accepted(BaseModel):
    """A job was enqueued (or a live one holds the unique key): poll `status_url` for its record."""

    job_id: str
    status_url: str
    deduplicated: bool = False

