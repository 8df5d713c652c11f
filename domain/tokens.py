"""API tokens: how they look, how they are hashed, and what each scope grants."""
from __future__ import annotations

import hashlib

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
