"""Bearer-token authentication with scopes; verified tokens are cached briefly per process."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import asyncpg
from quart import current_app, g, request

from db.tokens import ApiToken, select_token_by_hash, update_token_used
from domain.tokens import grants, hash_token
from web.errors import problem
from web.ratelimit import too_many

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
CACHE_SECONDS = 30.0  # a revoked token stops working within this long
USED_EVERY_S = 60.0  # last_used_at is kept to the minute
log = logging.getLogger("backroom.web")


class TokenCache:
    """Token hash -> (token, expiry), so a burst of requests costs one database lookup."""

    def __init__(self, ttl: float = CACHE_SECONDS, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self.entries: dict[str, tuple[ApiToken | None, float]] = {}
        self.written: dict[int, float] = {}  # token id -> when its last use was written (monotonic)

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

    async def used(self, token: ApiToken) -> None:
        """Record the token's use in `last_used_at`: one write a minute per token and process at most."""
        now = time.monotonic()
        if now - self.written.get(token.id, -USED_EVERY_S) < USED_EVERY_S:
            return
        if len(self.written) >= self.size:
            self.written.clear()
        self.written[token.id] = now
        try:
            async with current_app.config["DB_POOL"].acquire() as conn:
                await update_token_used(conn, token.id)  # its SQL also skips a write within the minute
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:  # bookkeeping only
            log.warning("could not record the use of token %s: %s", token.prefix, error)


def who() -> str:
    """The acting token, as the audit log names it."""
    return f"token:{g.token.id}:{g.token.name}"


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
            wait_s = await current_app.config["RATE_LIMITER"].wait_s(token)
            if wait_s:
                return too_many(token, wait_s)
            await current_app.config["TOKEN_CACHE"].used(token)
            g.token = token
            return await handler(*args, **kwargs)

        return cast(F, wrapper)  # it answers instead of the handler (401, 403, 429)

    return decorate
