"""The edge registry's values: what each edge worker process reports, and the live nodes it adds up to."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field

NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # no glob characters: node ids go into ACL key patterns


class EdgeBeat(BaseModel):
    """One edge worker process's registry entry, as it last wrote it."""

    node_id: str
    pid: int
    version: str
    host: str
    sources: list[str] = Field(default_factory=list)
    browser: bool = False
    current_jobs: list[str] = Field(default_factory=list)
    done: int = 0
    failed: int = 0
    blocked: int = 0
    last_beat: datetime


class LiveEdgeNode(BaseModel):
    """A live edge node: its processes' beats added up."""

    node_id: str
    version: str
    host: str
    sources: list[str]
    browser: bool
    processes: int
    current_job: str | None = None
    current_jobs: list[str] = Field(default_factory=list)
    done: int = 0
    failed: int = 0
    blocked: int = 0
    last_beat: datetime


def valid_node_id(node_id: str) -> bool:
    """True when `node_id` can name an edge node (letters, digits, `_.-`; no glob characters)."""
    return bool(NODE_ID.match(node_id))


def live_nodes(beats: Iterable[EdgeBeat]) -> list[LiveEdgeNode]:
    """Group process beats by node (the newest beat gives version and host); node ids in order."""
    by_node: dict[str, list[EdgeBeat]] = {}
    for beat in beats:
        by_node.setdefault(beat.node_id, []).append(beat)
    nodes = []
    for node_id, group in sorted(by_node.items()):
        newest = max(group, key=lambda b: b.last_beat)
        jobs = [job for beat in group for job in beat.current_jobs]
        nodes.append(
            LiveEdgeNode(
                node_id=node_id,
                version=newest.version,
                host=newest.host,
                sources=sorted({s for beat in group for s in beat.sources}),
                browser=any(b.browser for b in group),
                processes=len(group),
                current_job=jobs[0] if jobs else None,
                current_jobs=jobs,
                done=sum(b.done for b in group),
                failed=sum(b.failed for b in group),
                blocked=sum(b.blocked for b in group),
                last_beat=newest.last_beat,
            )
        )
    return nodes


class EdgeCredential(BaseModel):
    """One Redis credential issued to an edge node, as the history keeps it."""

    id: int
    node_id: str
    redis_user: str
    created_at: datetime
    created_by: str
    replaced_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def state(self) -> str:
        """live, replaced or revoked."""
        return "revoked" if self.revoked_at else "replaced" if self.replaced_at else "live"
