"""Bench worker module: the real Backroom broker (`build_broker`, full middleware) + no-op actors.

`dramatiq _noop_backroom --path bench --queues bench` runs it; it reads the same settings
as `actors.broker` (REDIS_URL, REDIS_NAMESPACE, DATABASE_URL, METRICS_PORT, LOG_LEVEL).
Prometheus is requested exactly as the real worker does (`metrics=True`); METRICS_PORT=0
turns it off, which the bench does so that two processes do not fight over one port.
The only middleware of `actors.broker` left out is DatabasePool: it opens an asyncpg pool
at boot and has no per-message hook, so it costs nothing per job.
"""

from __future__ import annotations

from _noop_actors import declare
from broker.setup import build_broker, install
from config.logging import configure_logging
from config.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
broker = install(build_broker(settings, metrics=True))
noop, pickup = declare(broker)
