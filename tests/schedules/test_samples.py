"""The scheduler's leader records one depth/latency sample per queue and minute for the admin charts."""

from __future__ import annotations

from datetime import datetime, UTC

import redis

import actors
from actors.ops import ping
from tests.schedules.conftest import FakeClock, make_runner

UTC = UTC


def test_the_leader_samples_each_minute_once_and_followers_never(redis_client: redis.Redis) -> None:
    clock = FakeClock(datetime.now(UTC).replace(second=5, microsecond=0))
    leader = make_runner(clock, owner="leader")
    follower = make_runner(clock, owner="follower")
    for i in range(3):
        actors.broker.enqueue(ping.message(message=f"s{i}").copy(queue_name="ml"))
    leader.step()
    follower.step()
    history = leader.samples.history("ml", int(clock().timestamp() * 1000))
    assert [s.ready for s in history] == [3] and history[0].latency_s >= 0
    actors.broker.enqueue(ping.message(message="s3").copy(queue_name="ml"))
    clock.advance(seconds=20)
    leader.step()  # same minute: no second sample
    clock.advance(minutes=1)
    leader.step()
    history = leader.samples.history("ml", int(clock().timestamp() * 1000))
    assert [s.ready for s in history] == [3, 4]
    assert history[1].at.timestamp() - history[0].at.timestamp() == 60
    assert redis_client.zcard(actors.broker.jobs.keys.samples("default")) == 2
