"""Bench worker module: a plain Dramatiq RedisBroker with its default middleware + the no-op actors.

`dramatiq _noop_bare --path bench --queues bench` runs it; REDIS_URL and
BENCH_BARE_NAMESPACE (default `bench_bare`) come from the environment.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from _noop_actors import declare

broker = RedisBroker(url=os.environ["REDIS_URL"], namespace=os.environ.get("BENCH_BARE_NAMESPACE", "bench_bare"))
dramatiq.set_broker(broker)
noop, pickup = declare(broker)
