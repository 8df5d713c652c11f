"""The scheduler's Redis state: tick claims, the last handled tick and what an admin sees."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

import redis

from domain.cron import epoch_minute, from_epoch_minute

CLAIM_TTL_S = 3 * 86400  # longer than the largest catch-up window (2 days), so no tick fires twice

# KEYS: last, state. ARGV: epoch minute, missed increment, then field/value pairs for the state hash.
# Only moves forward, so two overlapping leaders neither rewind `last` nor count a miss twice.
_ADVANCE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if current >= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 then redis.call('HINCRBY', KEYS[2], 'missed', ARGV[2]) end
if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end
return 1
"""


@dataclass(frozen=True)
class SchedulerKeys:
    """Every Redis key the scheduler writes, under the broker's namespace."""

    ns: str

    @property
    def leader(self) -> str:
        """STRING: the id of the scheduler process allowed to fire (PX ttl)."""
        return f"{self.ns}:scheduler:leader"

    def fired(self, actor: str, tick: datetime) -> str:
        """STRING claimed (SET NX) by whoever enqueues this tick of this actor."""
        return f"{self.ns}:scheduler:fired:{actor}:{epoch_minute(tick)}"

    def last(self, actor: str) -> str:
        """STRING: the epoch minute up to which this actor's ticks are handled."""
        return f"{self.ns}:scheduler:last:{actor}"

    def state(self, actor: str) -> str:
        """HASH for the admin: spec, last tick and job id, next tick, missed count."""
        return f"{self.ns}:scheduler:state:{actor}"


class ScheduleStore:
    """Reads and writes the scheduler's keys."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.client = client
        self.keys = SchedulerKeys(namespace)
        self._advance = client.register_script(_ADVANCE)

    def last(self, actor: str) -> datetime | None:
        """Up to when `actor`'s ticks are handled (None: never scheduled before)."""
        raw = self.client.get(self.keys.last(actor))
        return from_epoch_minute(int(raw)) if raw is not None else None

    def claim(self, actor: str, tick: datetime, owner: str) -> bool:
        """Take the right to enqueue this tick; False when someone already has."""
        return bool(self.client.set(self.keys.fired(actor, tick), owner, nx=True, ex=CLAIM_TTL_S))

    def unclaim(self, actor: str, tick: datetime) -> None:
        """Give a claim back after a failed enqueue, so the tick is tried again."""
        self.client.delete(self.keys.fired(actor, tick))

    def advance(self, actor: str, to: datetime, *, missed: int = 0, **fields: str) -> bool:
        """Mark `actor` handled up to `to` (never backwards), counting `missed` and setting `fields`."""
        argv: list[str | int] = [epoch_minute(to), missed]
        for name, value in fields.items():
            argv += [name, value]
        return bool(self._advance(keys=[self.keys.last(actor), self.keys.state(actor)], args=argv))

    def set_fields(self, actor: str, **fields: str) -> None:
        """Overwrite fields of `actor`'s state hash (spec, next tick)."""
        self.client.hset(self.keys.state(actor), mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping key is invariant

    def state(self, actor: str) -> dict[str, str]:
        """The state hash of `actor`, decoded."""
        return {
            k.decode(): v.decode()
            for k, v in cast(dict[bytes, bytes], self.client.hgetall(self.keys.state(actor))).items()
        }

    def leader(self) -> str | None:
        """The id of the current leader, if any."""
        raw = cast(bytes | None, self.client.get(self.keys.leader))
        return raw.decode() if raw is not None else None
