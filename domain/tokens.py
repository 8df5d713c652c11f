"""API tokens: how they look, how they are hashed, and what each scope grants."""

from __future__ import annotations

import hashlib
import re

SCOPES = ("jobs", "admin", "admin:read")
TOKEN_PREFIX = "brt_"
# an admin may do everything; a read-only admin may read the admin surface
_IMPLIES = {"admin": {"admin", "admin:read", "jobs"}, "admin:read": {"admin:read"}, "jobs": {"jobs"}}


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are 32 random bytes, so a plain SHA-256 suffices)."""
    return hashlib.sha256(token.encode()).hexdigest()


def make_token(random_hex: str) -> str:
    """A token from caller-supplied randomness (`secrets.token_hex(32)`)."""
    return TOKEN_PREFIX + random_hex


def display_prefix(token: str) -> str:
    """The part of a token that is safe to show in lists."""
    return token[: len(TOKEN_PREFIX) + 6]


def validate_scopes(scopes: list[str]) -> list[str]:
    """The scopes, deduplicated, or ValueError naming the first unknown one."""
    for scope in scopes:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r} (choose from {', '.join(SCOPES)})")
    if not scopes:
        raise ValueError("a token needs at least one scope")
    return sorted(set(scopes))


def grants(held: tuple[str, ...] | list[str], needed: str) -> bool:
    """True when any held scope grants `needed`."""
    return any(needed in _IMPLIES.get(scope, set()) for scope in held)


_RATE = re.compile(r"^\s*(\d{1,7})\s*(?:/\s*(s|sec|second|min|minute|h|hour))?\s*$")
_PER_MIN = {"s": 60.0, "sec": 60.0, "second": 60.0, "min": 1.0, "minute": 1.0, None: 1.0, "h": 1 / 60, "hour": 1 / 60}


def parse_rate(text: str) -> int:
    """Requests a minute from `120/min`, `5/s`, `600/h` or a bare `120` (a minute); 0 = unlimited.

    ValueError for anything else, or a non-zero rate under one a minute.
    """
    match = _RATE.match(text.lower())
    if match is None:
        raise ValueError(f"unreadable rate {text!r} (e.g. 120/min, 5/s, 600/h; 0 = unlimited)")
    per_min = int(match.group(1)) * _PER_MIN[match.group(2)]
    if per_min and per_min < 1:
        raise ValueError(f"rate {text!r} is under one request a minute")
    return round(per_min)
