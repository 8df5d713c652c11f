"""Sign-in for the /admin/ pages: a token exchanged for a signed, expiring session cookie.

The cookie (HttpOnly, SameSite=Strict, path /admin) holds the token's hash, never the
token, so a revoked token stops working within the token cache's 30 s. Every form and
fetch that acts carries the session's CSRF token, compared in constant time.
"""
from __future__ import annotations

import functools
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from quart import Quart, current_app, g, redirect, render_template, request, session, url_for

from config.settings import Settings
from db.tokens import ApiToken
from domain.tokens import grants, hash_token

log = logging.getLogger("backroom.admin")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
COOKIE = "backroom_admin"


def configure_sessions(app: Quart, settings: Settings) -> None:
    """Session signing key, cookie flags and lifetime."""
    if settings.admin_session_secret is not None:
        app.secret_key = settings.admin_session_secret.get_secret_value()
    else:
        app.secret_key = secrets.token_hex(32)
        log.warning("ADMIN_SESSION_SECRET is not set: /admin/ sessions are signed with a random key made by this "
                    "process, so sign-ins end when it restarts and do not carry across web processes")
    public = settings.api_public_url or ""
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/admin", SESSION_COOKIE_SECURE=public.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.admin_session_hours),
    )


async def token_for(raw: str) -> ApiToken | None:
    """The live token `raw` names, if it may read the admin surface."""
    token = await current_app.config["TOKEN_CACHE"].lookup(hash_token(raw.strip()))
    return token if token is not None and grants(token.scopes, "admin:read") else None


def sign_in(token: ApiToken, raw: str) -> None:
    """Start a fresh session for `token` (a new CSRF token too: no fixation)."""
    session.clear()
    session.permanent = True
    session.update(th=hash_token(raw.strip()), at=int(time.time()), csrf=secrets.token_urlsafe(32))


async def session_token() -> ApiToken | None:
    """The signed-in token, or None (no session, expired, or the token was revoked)."""
    token_hash, started = session.get("th"), session.get("at")
    if not token_hash or not started:
        return None
    if time.time() - started > current_app.permanent_session_lifetime.total_seconds():
        session.clear()
        return None
    token = await current_app.config["TOKEN_CACHE"].lookup(token_hash)
    return token if token is not None and grants(token.scopes, "admin:read") else None


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


async def csrf_valid() -> bool:
    """True when the request carries this session's CSRF token (form field or X-CSRF-Token header)."""
    expected = session.get("csrf")
    sent = request.headers.get("X-CSRF-Token") or (await request.form).get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(str(expected), str(sent))


def signed_in(scope: str = "admin:read") -> Callable[[F], F]:
    """Pages need a session (else the sign-in page); actions also a valid CSRF token and the `admin` scope."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = await session_token()
            if token is None:
                if request.method == "GET" and not request.path.endswith(".json"):
                    return redirect(url_for("admin_pages.login", next=request.path))
                return {"error": "sign in first"}, 401
            if request.method != "GET" and not await csrf_valid():
                return await page_error(403, "The form was stale or forged (CSRF check failed). Reload and retry.")
            if not grants(token.scopes, scope):
                return await page_error(403, f"Your token lacks the {scope!r} scope: this session is read-only.")
            g.token = token
            return await handler(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


async def page_error(status: int, message: str) -> Any:
    """An error page (the admin layout, without navigation when signed out)."""
    return await render_template("admin/error.html", status=status, message=message), status


def can_act() -> bool:
    """True when the signed-in token may act (the templates hide action buttons otherwise)."""
    token = g.get("token")
    return token is not None and grants(token.scopes, "admin")
