"""ASGI entry point for hypercorn: `hypercorn web.asgi:app`."""
from __future__ import annotations

import gc

from web.app import create_app

app = create_app()
# What was built so far (modules, routes, schemas) lives as long as the process: it is put out of
# the cyclic collector's sight, and the youngest generation is collected less often, since every
# request allocates many short-lived containers (~3% of an enqueue request's CPU).
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)
