"""Reading keys that edge nodes can write: what does not parse is logged once per key and skipped."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
_reported: set[str] = set()


def skip_garbled(key: str, error: object) -> None:
    """Log once per process that `key` is unreadable (a hostile node may keep rewriting it); the caller skips it."""
    if key not in _reported:
        _reported.add(key)
        log.warning("unreadable key %s skipped (an edge node can write it): %s", key, str(error)[:200])
