"""Prometheus gauges per queue, computed from Redis when /metrics is scraped.

Each scrape costs the same handful of O(1) reads as the admin overview (see
broker.queues); /metrics runs the collection in a thread, off the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.admin import QueueView
from web.enqueue import BROKER_DOWN

log = logging.getLogger("backroom.admin")
_GAUGES: tuple[tuple[str, str, Callable[[QueueView], float]], ...] = (
    ("backroom_queue_ready", "Messages waiting to be fetched.", lambda q: q.ready),
    ("backroom_queue_delayed", "Delayed messages and retries waiting out their backoff.", lambda q: q.delayed),
    ("backroom_queue_in_flight", "Messages fetched by live workers (running or prefetched).", lambda q: q.in_flight),
    ("backroom_queue_dead", "Dead letters.", lambda q: q.dead),
    ("backroom_queue_latency_seconds", "Age of the oldest ready message.", lambda q: q.latency_s),
    ("backroom_queue_paused", "1 while the queue is paused.", lambda q: float(q.paused)),
)
_installed: list[Collector] = []


class QueueCollector(Collector):
    """Reads every queue's statistics at scrape time."""

    def __init__(self, views: Callable[[], list[QueueView]]) -> None:
        self.views = views

    def describe(self) -> list[Any]:
        """Nothing up front: registering must not read Redis."""
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One gauge family per statistic, labelled by queue (only `..._stats_up 0` when Redis is down)."""
        up = GaugeMetricFamily("backroom_queue_stats_up", "1 when the queue statistics could be read from Redis.")
        try:
            views = self.views()
        except BROKER_DOWN as error:
            log.warning("queue metrics unavailable: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, help_text, value in _GAUGES:
            family = GaugeMetricFamily(name, help_text, labels=["queue"])
            for view in views:
                family.add_metric([view.name], float(value(view)))
            yield family


def install_queue_metrics() -> None:
    """Register the queue gauges on the default registry (once per process)."""
    if _installed:
        return

    def views() -> list[QueueView]:
        import actors
        from admin.service import Admin

        if not hasattr(views, "admin"):
            views.admin = Admin(actors.broker)  # type: ignore[attr-defined]  # made on the first scrape, kept here
        return views.admin.queue_views()  # type: ignore[attr-defined]  # (the same)

    collector = QueueCollector(views)
    REGISTRY.register(collector)
    _installed.append(collector)
