"""Dramatiq actors: importing this package builds the broker and declares every server actor.

`dramatiq actors` (the Procfile's worker) imports it; so does the API, to enqueue.
"""
from __future__ import annotations

from actors.broker import broker
from actors import ops, jobs  # noqa: F401  (declares the actors)
from actors import embed  # noqa: F401  (declares the embedding actors)
from actors import notify, orders, release  # noqa: F401  (declares the order and notification actors)

__all__ = ["broker"]
