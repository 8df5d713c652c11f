"""Request and response bodies of the API (pydantic; the OpenAPI document is built from them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.json_schema import JsonValue
from quart import current_app

from domain.notifications import TEMPLATES, required_fields
from web.errors import Problem  # noqa: F401  (the error body, defined in web.errors; imported from here too)


def _integral(value: Any) -> Any:
    """A JSON number with no fraction (7.0) is an integer in JSON Schema; strict pydantic would refuse it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# bodies are validated strictly (no "5" or false for a number); 7.0 is still the integer 7
Int = Annotated[int, BeforeValidator(_integral)]
MAX_ID = 2**63 - 1  # a bigint column holds 1..2^63-1; a larger id names nothing
Id = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_integral)]


def int_in(low: int, high: int) -> Any:
    """An Int in low..high (the bounds before the validator: so they reach the JSON schema)."""
    return Annotated[int, Field(ge=low, le=high), BeforeValidator(_integral)]


# Postgres refuses NUL in text and jsonb: free-form text that may reach it is refused at the door
TEXT = r"^[^\x00]*$"
NAME = r"^[a-z0-9_-]+$"
UNIQUE_KEY_MAX = 200
# a notification's template fields: 16 x (64 + 960) characters = 16 KiB of text at most; values are
# scalars (a template writes each as text), and no NUL (jsonb refuses it)
FieldName = Annotated[str, Field(min_length=1, max_length=64, pattern=TEXT)]
FieldValue = Annotated[str, Field(max_length=960, pattern=TEXT)] | int | float | bool | None
if TYPE_CHECKING:  # the checker cannot read a Literal built from a set: a template is a name
    Template = str
else:
    Template = Literal[tuple(sorted(TEMPLATES))]


def _sorted(names: set[str]) -> list[JsonValue]:
    ordered = sorted(names)
    return list(ordered)  # a list[str] is no list[JsonValue] (lists are invariant): copied as one


def names_in_full(schema: dict[str, Any]) -> None:
    """Every name is bounded: pydantic writes a key's pattern as patternProperties, leaving other names open."""
    (value,) = schema.pop("patternProperties").values()
    schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": TEXT}
    schema["additionalProperties"] = value


class JobBody(BaseModel):
    """Fields every job request accepts."""

    model_config = ConfigDict(extra="forbid")

    unique_key: str | None = Field(
        None,
        min_length=1,
        max_length=UNIQUE_KEY_MAX,
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

    source: str = Field(
        min_length=1,
        max_length=50,
        pattern=NAME,
        description="A configured scrape source (`backroom schedules sources`); 404 otherwise.",
    )
    query: str = Field(min_length=1, max_length=200, pattern=TEXT)
    limit: Int = Field(40, ge=1, le=200)
    force: bool = Field(False, description="Queue it even when no edge node is live (otherwise 409).")


class EmbedJob(JobBody):
    """Embed items' images (all missing ones when `item_ids` is empty)."""

    item_ids: list[Id] = Field(default_factory=list, max_length=1000)
    force: bool = False


class PruneJob(JobBody):
    """Check that live items' source listings still exist."""

    source: str | None = Field(
        None,
        min_length=1,
        max_length=50,
        pattern=NAME,
        description="Only this configured scrape source's items; 404 for another.",
    )


class EnrichJob(JobBody):
    """Derive category and style tags for items."""

    item_ids: list[Id] = Field(min_length=1, max_length=1000)
    force: bool = Field(False, description="Enrich again even when image, model and vocabulary are unchanged.")


class CollectionsJob(JobBody):
    """Generate the curated collections of one surface."""

    surface: str = Field(
        min_length=1,
        max_length=50,
        pattern=NAME,
        description="A configured collection surface (`backroom schedules surfaces`); 404 otherwise.",
    )


class NotifyJob(JobBody):
    """Send one notification through a provider."""

    # each template's required `data` fields, stated in the schema (JSON Schema if/then)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"template": {"const": name}}, "required": ["template"]},
                    "then": {
                        "properties": {"data": {"required": _sorted(required_fields(name))}},
                        "required": ["data"],
                    },
                }
                for name in sorted(TEMPLATES)
                if required_fields(name)
            ]
        },
    )

    channel: Literal["email", "push", "chat"]
    recipient: str = Field(min_length=1, max_length=320, pattern=TEXT)
    template: Template
    data: dict[FieldName, FieldValue] = Field(
        default_factory=dict,
        max_length=16,
        json_schema_extra=names_in_full,
        description="The template's fields: at most 16, names up to 64 and text values up to 960 characters "
        "(16 KiB of text at most; it travels in the message and is stored for days).",
    )
    idempotency_key: str = Field(min_length=1, max_length=200, pattern=TEXT)


class Accepted(BaseModel):
    """A job was enqueued (or a live one holds the unique key): poll `status_url` for its record."""

    job_id: str
    status_url: str
    deduplicated: bool = False


def reply(model: BaseModel, status: int = 200) -> Any:
    """A JSON response from a pydantic model (ISO 8601 datetimes, where Quart's encoder writes HTTP dates)."""
    return current_app.response_class(model.model_dump_json(), status=status, mimetype="application/json")
