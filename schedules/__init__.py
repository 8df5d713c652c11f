"""Periodic actors, in UTC: each only fans out to a real actor.

Declared the periodiq way (`periodic=cron("...")`, or a plain cron string) and fired by
Backroom's own scheduler, `backroom scheduler` (schedules/runner.py): one leader among
any number of processes, each tick exactly once, missed ticks caught up. The declared cron
is the default: an admin overrides it or switches a schedule off without a deploy
(`backroom schedules`, schedules/settings.py). Workers import this module too so they can
run the fan-out messages.
"""

from __future__ import annotations

from actors import broker  # noqa: F401  (the server broker, with PeriodiqMiddleware)
from schedules import orders  # noqa: F401  (the hold-release sweep)
from schedules import reminders  # noqa: F401  (the reminder sweep)
from schedules import pipeline, watch  # noqa: F401  (scrape, sync, prune, collections, enrichment, retention; watches)
from schedules import events  # noqa: F401  (the storefront events sweep)
