"""The edge broker module: built from the edge settings (no DATABASE_URL), declares edge actors."""

from __future__ import annotations

from broker.acl import edge_broker_id_prefix
from broker.setup import build_broker, install
from config.logging import configure_logging
from config.settings import EDGE_QUEUE, get_edge_settings
from edge.browser import BrowserMiddleware
from edge.deliver import outbox
from edge.outbox import OutboxFlusher
from edge.registry import EdgeRegistry, node_id

settings = get_edge_settings()
configure_logging(settings.log_level, settings.log_format)
# least privilege (broker.acl): the edge namespace, no reaper (the server's edge gateway reaps),
# wake-ups of `edge` only, keys named after the node
broker = install(
    build_broker(
        settings,
        edge=True,
        reap=False,
        wake_queues=f"{EDGE_QUEUE}*",
        broker_id_prefix=edge_broker_id_prefix(node_id(settings)),
    )
)
broker.add_middleware(EdgeRegistry(settings, broker.jobs.keys))
broker.add_middleware(OutboxFlusher(outbox, settings.edge_outbox_flush_s))
broker.add_middleware(BrowserMiddleware())  # after AsyncIO: closes Chromium before the event loop stops

from edge import actors  # noqa: E402,F401  (declares the edge actors on this broker)
