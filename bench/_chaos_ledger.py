"""What the chaos scenarios count: the effects ledger of bench/_chaos_actors.py against the job records.

Per job: how many times it took effect (`done` lines); stuck when Redis still holds its
message (queued, delayed, or held by a worker) or its record reads unfinished after it took
effect; lost when it never took effect and Redis holds no message that could run it, whatever
its record says (a record reading `delayed` over no message is a lost job); dead-lettered. A job that was running
on a worker process when that process was lost (SIGKILLed, stopped, cut off: a `Loss`) and
so ran again elsewhere is a `rerun_after_loss`, not a double; one that *started* on a
worker after the worker was lost and also took effect elsewhere is a double.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

FINAL = {"succeeded", "dead", "cancelled"}


class Line(NamedTuple):
    """One ledger line: `start`, `fail` or `done` of job `tag` by process `pid` at wall time `at`."""

    kind: str
    tag: str
    pid: int
    at: float


@dataclass(frozen=True)
class Loss:
    """Worker processes lost at wall time `at` (killed, stopped, or cut off from Redis)."""

    pids: frozenset[int]
    at: float


class State(NamedTuple):
    """What Redis says of one job: its record's status (None: no record) and whether its message is still held."""

    status: str | None
    held: bool


@dataclass
class Counts:
    """One scenario's figures."""

    name: str
    jobs: int = 0
    lost: int = 0
    doubled: int = 0
    stuck: int = 0
    bystanders_dead: int = 0
    rerun_after_loss: int = 0
    settle_s: float = 0.0
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    details: dict[str, list[str]] = field(default_factory=dict)

    def line(self) -> str:
        """The scenario's one line in the bench output."""
        if self.skipped:
            return f"  {self.name}: SKIPPED ({self.skipped})"
        text = (
            f"  {self.name}: jobs={self.jobs} lost={self.lost} doubled={self.doubled} stuck={self.stuck} "
            f"bystanders_dead={self.bystanders_dead} rerun_after_loss={self.rerun_after_loss} "
            f"settle_s={self.settle_s:.1f}"
        )
        return text + "".join(f"; {note}" for note in self.notes)

    @property
    def clean(self) -> bool:
        """Nothing lost, doubled, stuck or wrongly dead-lettered."""
        return not (self.lost or self.doubled or self.stuck or self.bystanders_dead)


def read_ledger(directory: Path) -> dict[str, list[Line]]:
    """Every ledger line of `directory`, per job tag, in time order."""
    lines: dict[str, list[Line]] = defaultdict(list)
    for path in directory.glob("*.log"):
        for raw in path.read_text().splitlines():
            parts = raw.split()
            if len(parts) == 4:  # a line cut short by a SIGKILL mid-write is skipped
                lines[parts[1]].append(Line(parts[0], parts[1], int(parts[2]), float(parts[3])))
    for tag_lines in lines.values():
        tag_lines.sort(key=lambda line: line.at)
    return lines


def running_at(lines: list[Line], loss: Loss) -> Line | None:
    """The start of an attempt that was under way on a lost process when it was lost, if any."""
    for start in lines:
        if start.kind != "start" or start.pid not in loss.pids or start.at >= loss.at:
            continue
        ended = any(line.pid == start.pid and line.kind != "start" and start.at <= line.at < loss.at for line in lines)
        if not ended:
            return start
    return None


def judge(lines: list[Line], losses: list[Loss]) -> tuple[int, bool, bool]:
    """(effects, doubled, rerun_after_loss) of one job from its ledger lines."""
    effects = sum(1 for line in lines if line.kind == "done")
    for loss in losses:
        start = running_at(lines, loss)
        if start is None:
            continue
        # the lost process may still finish that attempt (a cut-off host): that effect is excused
        excused = any(line.kind == "done" and line.pid == start.pid and line.at >= loss.at for line in lines)
        doubled = effects - excused > 1
        again = any(line.kind == "start" and line.at > loss.at and line.pid != start.pid for line in lines)
        return effects, doubled, again and not doubled
    return effects, effects > 1, False


def pending(states: dict[str, State]) -> int:
    """How many jobs Redis still holds or whose record reads unfinished (0: the scenario settled)."""
    return sum(1 for state in states.values() if state.held or (state.status is not None and state.status not in FINAL))


def count(
    counts: Counts,
    jobs: dict[str, Any],
    states: dict[str, State],
    ledger: dict[str, list[Line]],
    losses: list[Loss],
    poison: set[str],
) -> Counts:
    """Fill `counts` for `jobs` (tag -> job id) from their Redis states and the ledger; returns it."""
    counts.jobs = len(jobs)
    counts.lost = counts.doubled = counts.stuck = counts.bystanders_dead = counts.rerun_after_loss = 0
    counts.details = defaultdict(list)
    for tag in jobs:
        state = states.get(tag, State(None, False))
        effects, doubled, rerun = judge(ledger.get(tag, []), losses)
        unfinished = state.status is not None and state.status not in FINAL
        if state.held or (tag in poison and unfinished):
            kind = "stuck"
        elif tag in poison:
            kind = ""
        elif state.status == "dead":
            kind = "bystanders_dead"
        elif effects == 0:
            kind = "lost"
        else:
            kind = "stuck" if unfinished else ""
        if kind:
            setattr(counts, kind, getattr(counts, kind) + 1)
            counts.details[kind].append(f"{tag}({state.status},held={int(state.held)},effects={effects})")
        if tag not in poison and doubled:
            counts.doubled += 1
            counts.details["doubled"].append(tag)
        elif tag not in poison and rerun:
            counts.rerun_after_loss += 1
    return counts
