"""Edge actors (the `edge` queue)."""
from __future__ import annotations

import os
import platform
import socket

import dramatiq

from config.settings import EDGE_QUEUE


@dramatiq.actor(queue_name=EDGE_QUEUE, max_retries=1, max_backoff=10_000, time_limit=30_000)
def ping_edge() -> dict:
    """Report which edge node answered (host, pid, platform): proves the edge path works."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "machine": platform.machine()}
