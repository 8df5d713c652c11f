"""Request and response bodies of the API (pydantic; the OpenAPI document is built from them)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

class JobBody(BaseModel):
    """Fields every job request accepts."""

    model_config = ConfigDict(extra="forbid")

    unique_key: str | None = Field(
        None, min_length=1, max_length=200,
        description="While a job with this key is queued, delayed, running or retrying, return it instead.",
    )

    def arguments(self) -> dict[str, Any]:
        """The actor's keyword arguments (the body without the enqueue options)."""
        return self.model_dump(exclude={"unique_key"})


class PingJob(JobBody):
    """A diagnostic job: answers `message` back, or fails on purpose to exercise retries."""

    message: str = Field("pong", max_length=200)
    fail: bool = False
    sleep_ms: int = Field(0, ge=0, le=60_000)


class ScrapeJob(JobBody):
    """Scrape one marketplace search on an edge worker."""

    source: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")
    query: str = Field(min_length=1, max_length=200)
    limit: int = Field(40, ge=1, le=200)
    force: bool = Field(False, description="Queue it even when no edge node is live (otherwise 409).")


class EmbedJob(JobBody):
    """Embed items' images (all missing ones when `item_ids` is empty)."""

    item_ids: list[int] = Field(default_factory=list, max_length=1000)
    force: bool = False


class PruneJob(JobBody):
    """Check that live items' source listings still exist."""

    source: str | None = Field(None, max_length=50)


class EnrichJob(JobBody):
    """Derive category and style tags for items."""

    item_ids: list[int] = Field(min_length=1, max_length=1000)
    force: bool = Field(False, description="Enrich again even when image, model and vocabulary are unchanged.")


class CollectionsJob(JobBody):
    """Generate the curated collections of one surface."""

    surface: str = Field(min_length=1, max_length=50, pattern=r"^[a-z0-9_-]+$")


class NotifyJob(JobBody):
    """Send one notification through a provider."""

    channel: Literal["email", "push", "chat"]
    recipient: str = Field(min_length=1, max_length=320)
    template: str = Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")
    data: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = Field(min_length=1, max_length=200)


class Accepted(BaseModel):
    """A job was enqueued (or a live one holds the unique key): poll `status_url` for its record."""

    job_id: str
    status_url: str
    deduplicated: bool = False


class Problem(BaseModel):
    """An error: `error` says what, `fields` names each bad field of a 422."""

    error: str
    fields: dict[str, str] | None = None


OPERATIONS: dict[str, type[JobBody]] = {
    "ping": PingJob,
    "scrape": ScrapeJob,
    "embed": EmbedJob,
    "prune": PruneJob,
    "enrich": EnrichJob,
    "collections": CollectionsJob,
    "notify": NotifyJob,
}
