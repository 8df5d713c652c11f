"""Backroom's scheduler: fires each periodic actor's ticks exactly once, in UTC.

Schedules are declared the periodiq way (`@dramatiq.actor(periodic=cron("..."))`), but
periodiq's own loop is not used: it double-fires with two processes, re-fires on restart,
loses ticks missed while down, reads local time and never fires Sunday as `0`. Here one
process at a time leads (a Redis lock), every (actor, tick) is claimed in Redis before it
is enqueued, and the last handled tick is persisted so a new leader catches up. The
admin's settings (schedules.settings) override a cron or switch a schedule off, read anew
on every pass (the caller caches them briefly).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, UTC
from typing import TYPE_CHECKING

import redis
from dramatiq import Actor, Broker
from dramatiq.errors import BrokerConnectionError

from broker.queues import QueueStats, known_queues
from domain.cron import due_ticks, floor_minute
from domain.schedules import ScheduleSetting, effective_spec, is_enabled
from schedules.cron import CronSchedule, parse
from schedules.lock import LeaderLock
from schedules.store import ScheduleStore

if TYPE_CHECKING:
    from broker.redis import BackroomBroker

log = logging.getLogger("backroom.scheduler")

Clock = Callable[[], datetime]
Settings = Callable[[], Mapping[str, ScheduleSetting]]
RETRY_S = 1.0  # how often a follower tries to take the lock
BOUNDARY_SLACK_S = 0.05  # wake just after the minute starts, never just before
_MINUTE = timedelta(minutes=1)
_REDIS_DOWN = (redis.RedisError, BrokerConnectionError)


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Schedule:
    """One periodic actor and its parsed cron expression."""

    actor: Actor
    cron: CronSchedule

    @property
    def name(self) -> str:
        """The actor's name (the key of its scheduler state)."""
        return self.actor.actor_name


def spec_of(option: object) -> str:
    """The cron text of a `periodic=` option: periodiq's CronSpec keeps it as `parsed_from`."""
    if isinstance(option, str):
        return option
    parsed_from = getattr(option, "parsed_from", None)
    return parsed_from if isinstance(parsed_from, str) else str(option)


def discover_schedules(broker: Broker, names: Iterable[str] | None = None) -> list[Schedule]:
    """The actors of `broker` declared with `periodic=` (only `names`, when given), specs parsed."""
    wanted = set(names) if names is not None else None
    schedules = []
    for name, actor in sorted(broker.actors.items()):
        if "periodic" not in actor.options or (wanted is not None and name not in wanted):
            continue
        try:
            schedules.append(Schedule(actor, parse(spec_of(actor.options["periodic"]))))
        except ValueError as error:
            raise ValueError(f"periodic actor {name}: {error}") from None
    unknown = sorted(wanted - {s.name for s in schedules}) if wanted is not None else []
    if unknown:
        raise ValueError(f"not periodic actors of this broker: {', '.join(unknown)}")
    return schedules


def configured(schedule: Schedule, setting: ScheduleSetting | None) -> tuple[Schedule, bool]:
    """`schedule` with the admin's cadence (a bad stored one is logged and ignored), and whether it fires."""
    spec = effective_spec(schedule.cron.spec, setting)
    if spec != schedule.cron.spec:
        try:
            schedule = Schedule(schedule.actor, parse(spec))
        except ValueError as error:
            log.error(
                "schedule %s: ignoring the stored cadence (%s); using %s", schedule.name, error, schedule.cron.spec
            )
    return schedule, is_enabled(setting)


def default_owner() -> str:
    """A scheduler id unique to this process (host, pid and a random suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class SchedulerRunner:
    """Leads or follows; while leading, enqueues every due tick of every schedule exactly once."""

    def __init__(
        self,
        broker: BackroomBroker,
        *,
        schedules: list[Schedule] | None = None,
        catchup_minutes: int = 60,
        leader_ttl_ms: int = 10_000,
        clock: Clock = utc_now,
        owner: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.schedules = discover_schedules(broker) if schedules is None else schedules
        self.settings: Settings = settings or dict  # the admin's overrides (schedules.settings), read every pass
        self.store = ScheduleStore(broker.client, broker.jobs.keys.ns)
        self.owner = owner or default_owner()
        self.lock = LeaderLock(broker.client, self.store.keys.leader, self.owner, leader_ttl_ms)
        self.catchup_minutes = catchup_minutes
        self.clock = clock
        self.leading = False
        self._published: dict[str, tuple[str, str, str]] = {}  # spec, next tick, enabled
        self._stopping = threading.Event()
        self.samples = QueueStats(broker.client, broker.jobs.keys, known_queues(broker), broker.heartbeat_timeout)
        self._sampled_minute = -1

    def step(self) -> float:
        """One pass: hold or seek the lock, fire what is due when leading; returns seconds to wait."""
        leading = self.lock.hold()
        if leading != self.leading:
            log.info("scheduler %s %s", self.owner, "is now the leader" if leading else "lost the leadership")
        self.leading = leading
        if leading:
            self.fire_due(self.clock())
            self._sample(self.clock())
        return self._delay()

    def _sample(self, now: datetime) -> None:
        """Once a minute the leader records each queue's depth and latency for the admin charts."""
        minute = int(now.timestamp()) // 60
        if minute == self._sampled_minute:
            return
        try:
            self.samples.record_sample(int(now.timestamp() * 1000))
        except _REDIS_DOWN:
            raise
        except Exception:  # a chart sample must never stop the ticks
            log.exception("could not record the queue samples")
        self._sampled_minute = minute

    def fire_due(self, now: datetime) -> int:
        """Enqueue every tick due at `now` that nobody enqueued yet; returns how many were sent."""
        sent = 0
        current = self.settings()
        for schedule in self.schedules:
            try:
                sent += self._fire_schedule(*configured(schedule, current.get(schedule.name)), now)
            except _REDIS_DOWN:
                raise
            except Exception:  # one broken actor must not starve the others; its tick is retried
                log.exception("schedule %s failed; its tick is tried again on the next pass", schedule.name)
        return sent

    def _fire_schedule(self, schedule: Schedule, enabled: bool, now: datetime) -> int:
        name = schedule.name
        if not enabled:  # ticks while switched off are skipped, not owed: re-enabling fires no backlog
            self.store.advance(name, floor_minute(now))
            self._publish(schedule, now, enabled=False)
            return 0
        last = self.store.last(name)
        if last is None or self._cadence_changed(schedule):  # no backlog, but the current minute is due
            self.store.advance(name, floor_minute(now) - _MINUTE, since=_iso(now))
            last = self.store.last(name) or floor_minute(now) - _MINUTE
        due = due_ticks(schedule.cron, last, now, self.catchup_minutes)
        if due.skip_to is not None and self.store.advance(name, due.skip_to, missed=due.missed) and due.missed:
            log.warning(
                "schedule %s: %d tick(s) older than %d minute(s) were missed and not fired",
                name,
                due.missed,
                self.catchup_minutes,
            )
        sent = sum(self._fire_tick(schedule, tick, now) for tick in due.ticks)
        self._publish(schedule, now)
        return sent

    def _fire_tick(self, schedule: Schedule, tick: datetime, now: datetime) -> int:
        name = schedule.name
        if not self.store.claim(name, tick, self.owner):
            self.store.advance(name, tick)  # another leader enqueued it during a hand-over
            return 0
        try:
            # no periodiq `scheduled_at`: its middleware would skip late runs and retries
            message = schedule.actor.send_with_options(schedule_tick=_iso(tick))
        except BaseException:
            self.store.unclaim(name, tick)
            raise
        self.store.advance(
            name, tick, last_tick=_iso(tick), last_job_id=message.message_id, fired_at=_iso(now), fired_by=self.owner
        )
        log.info("schedule %s: tick %s enqueued as job %s", name, _iso(tick), message.message_id)
        return 1

    def _cadence_changed(self, schedule: Schedule) -> bool:
        """True when the admin (or a deploy) changed the cron since it was last published."""
        published = self._published.get(schedule.name)
        if published is not None and published[0] == schedule.cron.spec:
            return False
        stored = self.store.state(schedule.name).get("spec")
        return stored is not None and stored != schedule.cron.spec

    def _publish(self, schedule: Schedule, now: datetime, *, enabled: bool = True) -> None:
        upcoming = schedule.cron.next_after(now) if enabled else None
        fields = (schedule.cron.spec, _iso(upcoming) if upcoming else "", "1" if enabled else "0")
        if self._published.get(schedule.name) != fields:
            self.store.set_fields(
                schedule.name, spec=fields[0], next_tick=fields[1], enabled=fields[2], queue=schedule.actor.queue_name
            )
            self._published[schedule.name] = fields

    def _delay(self) -> float:
        now = self.clock()
        to_boundary = 60 - now.second - now.microsecond / 1e6 + BOUNDARY_SLACK_S
        return min(to_boundary, self.lock.ttl_ms / 3000 if self.leading else RETRY_S)

    def run(self) -> None:
        """Step until `stop()`; then hand the lock over so another process takes over at once."""
        names = ", ".join(f"{s.name} ({s.cron.spec})" for s in self.schedules) or "none"
        log.info("scheduler %s started; schedules (UTC): %s", self.owner, names)
        try:
            while not self._stopping.is_set():
                self._stopping.wait(self._safe_step())
        finally:
            self.resign()

    def _safe_step(self) -> float:
        try:
            return self.step()
        except _REDIS_DOWN as error:
            log.warning("scheduler %s cannot reach Redis (%s); retrying", self.owner, error)
            self.leading = False
            return RETRY_S

    def stop(self) -> None:
        """Ask `run()` to return (safe from a signal handler)."""
        self._stopping.set()

    def resign(self) -> None:
        """Release the leader lock if we hold it."""
        try:
            if self.lock.release():
                log.info("scheduler %s released the leadership", self.owner)
        except _REDIS_DOWN as error:
            log.warning("scheduler %s could not release the lock (%s); it expires by itself", self.owner, error)
        self.leading = False


@dataclass(frozen=True)
class ScheduleOverview:
    """What the admin page shows for one schedule."""

    actor: str
    queue: str
    spec: str
    last_tick: datetime | None
    last_job_id: str | None
    fired_at: datetime | None
    next_tick: datetime | None
    missed: int
    default_spec: str
    enabled: bool


def schedule_overview(
    client: redis.Redis,
    namespace: str,
    broker: Broker,
    *,
    now: datetime | None = None,
    settings: Mapping[str, ScheduleSetting] | None = None,
) -> list[ScheduleOverview]:
    """Every schedule of `broker` (with the admin's `settings`): last run, next run, missed count."""
    store = ScheduleStore(client, namespace)
    now = now or utc_now()
    rows = []
    for declared in discover_schedules(broker):
        schedule, enabled = configured(declared, (settings or {}).get(declared.name))
        state = store.state(schedule.name)
        rows.append(
            ScheduleOverview(
                actor=schedule.name,
                queue=schedule.actor.queue_name,
                spec=schedule.cron.spec,
                last_tick=_parse_iso(state.get("last_tick")),
                last_job_id=state.get("last_job_id") or None,
                fired_at=_parse_iso(state.get("fired_at")),
                next_tick=schedule.cron.next_after(now) if enabled else None,
                missed=int(state.get("missed") or 0),
                default_spec=declared.cron.spec,
                enabled=enabled,
            )
        )
    return rows


def current_leader(client: redis.Redis, namespace: str) -> str | None:
    """The id of the scheduler process leading now, if any."""
    return ScheduleStore(client, namespace).leader()


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


def _parse_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
