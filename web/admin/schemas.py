"""Request and response bodies of the admin API (/v1/admin)."""

from __future__ import annotations

from datetime import datetime, UTC
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from broker.deadletters import DeadLetter
from domain.admin import AuditRow, EdgeNode, QueueSample, QueueView
from domain.edge_registry import EdgeCredential
from domain.jobs import JobStatus
from web.schemas import TEXT


# a date and time, as the document's `date-time` says (seconds and zone may be left out, as a form's
# datetime-local does); pydantic alone would also read "0.5" as a Unix time
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}:\d{2})?")


def _iso(value: Any) -> Any:
    if isinstance(value, str):
        if not ISO_TIME.fullmatch(value):
            raise ValueError("expected an ISO 8601 date and time, e.g. 2026-01-31T12:00:00Z")
        return datetime.fromisoformat(value)
    return value


Time = Annotated[datetime, BeforeValidator(_iso)]


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone (a form's datetime-local) is read as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class QueuesResponse(BaseModel):
    """Every queue now."""

    queues: list[QueueView]


class QueueHistory(BaseModel):
    """A queue's per-minute samples over the last hour, oldest first."""

    queue: str
    samples: list[QueueSample]


class PauseState(BaseModel):
    """A queue's pause state after an action."""

    queue: str
    paused: bool


class JobQuery(BaseModel):
    """Job search filters (all optional); `text` is searched in the arguments."""

    status: JobStatus | None = None
    actor: str | None = Field(None, max_length=200)
    queue: str | None = Field(None, max_length=100)
    text: str | None = Field(None, max_length=200)
    since: Time | None = None
    until: Time | None = None
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=100, pattern=r"^\d+:[0-9A-Za-z-]+(:edge)?$")

    _zone = field_validator("since", "until")(_utc)


class DeadQuery(BaseModel):
    """Dead-letter listing filters (all optional)."""

    actor: str | None = Field(None, max_length=200)
    error: str | None = Field(None, max_length=200)
    since: Time | None = None
    until: Time | None = None
    offset: int = Field(0, ge=0, le=1_000_000)
    limit: int = Field(50, ge=1, le=500)

    _zone = field_validator("since", "until")(_utc)

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of DeadLetters.list."""
        return {
            "actor": self.actor,
            "error_contains": self.error,
            "since": self.since,
            "until": self.until,
            "offset": self.offset,
            "limit": self.limit,
        }


class GroupQuery(BaseModel):
    """How many of the newest dead letters to group."""

    window: int = Field(1000, ge=1, le=10_000)


class DeadCounts(BaseModel):
    """Dead letters per queue."""

    counts: dict[str, int]


class DeadListResponse(BaseModel):
    """A page of a queue's dead letters, newest first."""

    items: list[DeadLetter]
    total: int
    offset: int
    limit: int
    exact: bool


class DeadSelection(BaseModel):
    """Which dead letters to act on: `ids` (redis or job ids), or `all_matching` the filters."""

    # the one-way rule below, stated in the document: by ids (no filters), or all matching (no ids)
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["ids"],
                    "properties": {
                        "ids": {"minItems": 1},
                        "all_matching": {"const": False},
                        **{name: {"type": "null"} for name in ("actor", "error", "since", "until")},
                    },
                },
                {"required": ["all_matching"], "properties": {"all_matching": {"const": True}, "ids": {"maxItems": 0}}},
            ]
        },
    )

    ids: list[Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT)]] = Field(
        default_factory=list, max_length=1000
    )
    all_matching: bool = False
    actor: str | None = Field(None, max_length=200, pattern=TEXT)
    error: str | None = Field(None, max_length=200, pattern=TEXT)
    since: Time | None = None
    until: Time | None = None

    @model_validator(mode="after")
    def _one_way(self) -> DeadSelection:
        if self.all_matching == bool(self.ids):
            raise ValueError("give `ids` or `all_matching: true` (not both, not neither)")
        if not self.all_matching and any(v is not None for v in (self.actor, self.error, self.since, self.until)):
            raise ValueError("filters select dead letters only with `all_matching: true`")
        return self

    def filters(self) -> dict[str, Any]:
        """Keyword arguments of the *_matching service calls."""
        return {"actor": self.actor, "error_contains": self.error, "since": self.since, "until": self.until}


class DiscardResult(BaseModel):
    """How many dead letters were deleted."""

    discarded: int


class ReplayBody(BaseModel):
    """Edited arguments for a replay; an omitted field keeps the dead message's.

    A value sent back as "[redacted]" keeps the original (secret) value.
    """

    model_config = ConfigDict(extra="forbid")

    # bounded by the request body's 1 MiB: the dead message's own arguments were not bounded either
    args: list[Any] | None = Field(None, description="Positional arguments (within the 1 MiB body limit).")
    kwargs: dict[str, Any] | None = Field(None, description="Keyword arguments (within the 1 MiB body limit).")


class EdgeNodes(BaseModel):
    """Edge nodes, most recently seen first, and every Redis credential issued to them, newest first."""

    nodes: list[EdgeNode]
    credentials: list[EdgeCredential] = []


class AuditQuery(BaseModel):
    """Audit log filters."""

    target: str | None = Field(None, max_length=300, pattern=TEXT)
    action: str | None = Field(None, max_length=100, pattern=TEXT)
    limit: int = Field(50, ge=1, le=500)


class AuditLog(BaseModel):
    """The newest audit rows."""

    rows: list[AuditRow]
