"""The edge broker module: built from the edge settings (no DATABASE_URL), declares edge actors."""
from __future__ import annotations

from broker.setup import build_broker, install
from config.logging import configure_logging
from config.settings import get_edge_settings

settings = get_edge_settings()
configure_logging(settings.log_level, settings.log_format)
broker = install(build_broker(settings))

from edge import actors  # noqa: E402,F401  (declares the edge actors on this broker)
