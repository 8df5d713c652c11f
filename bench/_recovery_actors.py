"""Recovery bench, Backroom side: the victim actor on the real server broker (`actors.broker`).

`backroom worker --module bench._recovery_actors` imports it next to the server actors;
the bench imports it too (to enqueue and to read job records).
"""

from __future__ import annotations

import dramatiq

import actors
from bench._recovery_common import record_and_sleep

broker = actors.broker


@dramatiq.actor(queue_name="default", max_retries=0, time_limit=120_000)
def recovery_victim(tag: str, seconds: float = 30.0) -> None:
    """Record the start (time, pid) and sleep: the bench SIGKILLs the process running it."""
    record_and_sleep(broker.client, tag, seconds)
