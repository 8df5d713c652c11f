"""The server-side broker: built once per process from the settings."""

from __future__ import annotations

from actors.clients import ProviderClients
from actors.event_relay import EventRelay
from actors.resources import DatabasePool
from broker.waits import WaitAccounting
from broker.setup import build_broker, install
from config.logging import configure_logging
from config.settings import get_settings

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
broker = install(build_broker(settings, metrics=True))
broker.add_middleware(DatabasePool(settings.database_url))
broker.add_middleware(ProviderClients())  # third-party clients, opened at worker boot
broker.add_middleware(EventRelay(settings.database_url))  # storefront deliveries' session, the relay's listener
broker.add_middleware(WaitAccounting())  # last: its after-hook runs before Retries' (see broker.waits)
