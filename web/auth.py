"""Bearer-token authentication with scopes; verified tokens are cached briefly per process."""
from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart import current_app, g, request

from db.tokens import ApiToken, select_token_by_hash
from domain.tokens import grants, hash_token
from web.errors import problem

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
CACHE_SECONDS = 30.0  # a revoked token stops working within this long


class TokenCache:
    """Token hash -> (token, expiry), so a burst of requests costs one database lookup."""

    def __init__(self, ttl: float = CACHE_SECONDS, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self.entries: dict[str, tuple[ApiToken | None, float]] = {}

    async def lookup(self, token_hash: str) -> ApiToken | None:
        """The live token with this hash, or None."""
        hit = self.entries.get(token_hash)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        async with current_app.config["DB_POOL"].acquire() as conn:
            token = await select_token_by_hash(conn, token_hash)
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[token_hash] = (token, now + self.ttl)
        return token


def require(scope: str) -> Callable[[F], F]:
    """Refuse the request with 401 (no/invalid token) or 403 (token lacks `scope`)."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, raw = header.partition(" ")
            if scheme.lower() != "bearer" or not raw.strip():
                return problem(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
            token = await current_app.config["TOKEN_CACHE"].lookup(hash_token(raw.strip()))
            if token is None:
                return problem(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
            if not grants(token.scopes, scope):
                return problem(403, f"this token lacks the {scope!r} scope")
            g.token = token
            return await handler(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
