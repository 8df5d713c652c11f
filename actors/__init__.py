"""Dramatiq actors: importing this package builds the broker and declares every server actor.

`dramatiq actors` (the Procfile's worker) imports it; so does the API, to enqueue.
"""

from __future__ import annotations

from actors.broker import broker
from actors import ops, jobs  # noqa: F401  (declares the actors)
from actors import embed  # noqa: F401  (declares the embedding actors)
from actors import ingest  # noqa: F401  (ingest_listings, rehost_images, approve_item, reject_item)
from actors import enrich  # noqa: F401  (declares enrich_items and sweep_enrichment)
from actors import collections  # noqa: F401  (declares generate_collections)
from actors import notify, orders, release  # noqa: F401  (declares the order and notification actors)
from actors import provider_catalog, provider_poll, reconcile, refund_requests, tickets  # noqa: F401  (order upkeep, tickets)
from actors import reminders  # noqa: F401  (upsert_reminder_subject, send_reminder, send_due_reminders)
from actors import watch  # noqa: F401  (declares check_edge_nodes and watch_dead_letters)
from actors import refusals  # noqa: F401  (declares audit_refused_messages)
from actors import events  # noqa: F401  (relay_events, deliver_event, sweep_events, close_dead_delivery)
from actors import catalog  # noqa: F401  (mirror_product, mirror_brand: Payload CMS in)
from actors import prune, retention  # noqa: F401  (prune_listings, check_listing, record_listing_check, purge_expired)

__all__ = ["broker"]
