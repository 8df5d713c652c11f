"""What an admin configures about the schedules, and the pure rules the fan-outs apply to it.

Cadences default to each periodic actor's own `cron()` declaration; a stored override
replaces it, and a disabled schedule does not fire. Sources, brands and surfaces default to
the lists below until an admin stores their own (an empty stored list means "none").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator

NAME = re.compile(r"^[a-z0-9_-]{1,50}$")
ConfigKey = Literal["sources", "brands", "surfaces"]
CONFIG_KEYS: tuple[ConfigKey, ...] = ("sources", "brands", "surfaces")


def check_name(value: str, what: str) -> str:
    """A source or surface name (`[a-z0-9_-]{1,50}`), or ValueError naming `what`."""
    if not isinstance(value, str) or not NAME.match(value):
        raise ValueError(f"invalid {what} {value!r}: use 1-50 of a-z, 0-9, _ and -")
    return value


def clean_list(values: Iterable[str]) -> list[str]:
    """Stripped, non-empty, without case-insensitive duplicates, first spelling and order kept."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        text = " ".join(str(value).split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(text)
    return out


class ScheduleSetting(BaseModel):
    """An admin's setting for one periodic actor: a cadence override (None = declared) and on/off."""

    actor: str
    cron: str | None = None
    enabled: bool = True
    updated_at: datetime | None = None
    updated_by: str | None = None  # (`cron` is checked when set; a bad stored one is ignored by the scheduler)


class ScrapeSource(BaseModel):
    """One marketplace the hourly cycle scrapes: its own queries, and the brands when `brands` is on."""

    source: str = Field(description="The edge scraper's source name (vinted, grailed, or a configured storefront).")
    queries: list[str] = Field(default_factory=list, description="Search texts scraped every cycle.")
    limit: int = Field(48, ge=1, le=500, description="Listings per query per cycle.")
    brands: bool = Field(True, description="Also search each configured brand on this source.")
    enabled: bool = True

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: str) -> str:
        return check_name(value, "source")

    @field_validator("queries")
    @classmethod
    def _clean_queries(cls, value: list[str]) -> list[str]:
        return clean_list(value)


class ScheduleConfig(BaseModel):
    """The lists the fan-outs read."""

    sources: list[ScrapeSource]
    brands: list[str]
    surfaces: list[str]


class ScrapeJob(BaseModel):
    """One scrape_source message's arguments."""

    source: str
    query: str
    limit: int


DEFAULT_SOURCES: tuple[ScrapeSource, ...] = (ScrapeSource(source="vinted"), ScrapeSource(source="grailed"))
# the archive labels the seeds' Pulse hunts (a starting point; admins replace it)
DEFAULT_BRANDS: tuple[str, ...] = (
    "Rick Owens",
    "Maison Margiela",
    "Comme des Garcons",
    "Yohji Yamamoto",
    "Issey Miyake",
    "Raf Simons",
    "Helmut Lang",
    "Undercover",
    "Number (N)ine",
    "Carol Christian Poell",
)
DEFAULT_SURFACES: tuple[str, ...] = ("home",)


def config_from(stored: Mapping[str, list]) -> ScheduleConfig:
    """The effective lists: each stored one, else its default."""
    sources = stored.get("sources")
    return ScheduleConfig(
        sources=[ScrapeSource.model_validate(s) for s in sources] if sources is not None else list(DEFAULT_SOURCES),
        brands=clean_list(stored["brands"]) if "brands" in stored else list(DEFAULT_BRANDS),
        surfaces=[check_name(s, "surface") for s in stored["surfaces"]]
        if "surfaces" in stored
        else list(DEFAULT_SURFACES),
    )


def scrape_plan(sources: Sequence[ScrapeSource], brands: Sequence[str]) -> list[ScrapeJob]:
    """One job per enabled source and distinct query (its own queries, then the brands if it opts in)."""
    jobs: list[ScrapeJob] = []
    for source in sources:
        if source.enabled:
            queries = clean_list([*source.queries, *(brands if source.brands else ())])
            jobs.extend(ScrapeJob(source=source.source, query=q, limit=source.limit) for q in queries)
    return jobs


def upsert_source(sources: Sequence[ScrapeSource], changed: ScrapeSource) -> list[ScrapeSource]:
    """`sources` with `changed` replacing the source of the same name (or appended)."""
    out = [changed if s.source == changed.source else s for s in sources]
    return out if any(s.source == changed.source for s in sources) else [*out, changed]


def effective_spec(default: str, setting: ScheduleSetting | None) -> str:
    """The cron a schedule runs on: the admin's override, else its declaration."""
    return setting.cron if setting is not None and setting.cron else default


def is_enabled(setting: ScheduleSetting | None) -> bool:
    """Whether a schedule fires (on unless an admin turned it off)."""
    return setting is None or setting.enabled


def newly_silent(live: Iterable[str], watched: Iterable[str], alerted: Iterable[str]) -> list[str]:
    """Nodes seen live before, not live now, and not yet alerted for this silence; sorted."""
    return sorted(set(watched) - set(live) - set(alerted))


def dead_growth(before_ms: int | None, new_counts: Mapping[str, int]) -> dict[str, int]:
    """Queues that dead-lettered something since the last check (none on the first check)."""
    if before_ms is None:
        return {}
    return {queue: count for queue, count in sorted(new_counts.items()) if count > 0}
