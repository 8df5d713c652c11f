"""Recovery bench, bare side: a plain Dramatiq RedisBroker with all its defaults + the victim.

`dramatiq bench._recovery_bare --processes 2 --threads 2` runs it; REDIS_URL and
BENCH_RECOVERY_NS (the namespace, never Backroom's) come from the environment.
Defaults kept: heartbeat_timeout 60 s, maintenance_chance 1000 per million, default middleware.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench._recovery_common import declare_bare

broker = RedisBroker(url=os.environ["REDIS_URL"], namespace=os.environ.get("BENCH_RECOVERY_NS", "bench_recovery_bare"))
dramatiq.set_broker(broker)
recovery_victim, recovery_noop = declare_bare(broker)
