"""Sign-in for the /admin/ pages: server-side sessions whose cookie carries only a random id.

A session is a row of `admin_sessions` (db.admin_sessions), found by the SHA-256 of the
cookie's id: revoked at sign-out, replaced by a new id at every sign-in (no fixation), ended
by the idle and absolute timeouts (ADMIN_SESSION_IDLE_MINUTES, ADMIN_SESSION_HOURS) and at
once by revoking its token. The cookie (HttpOnly, SameSite=Strict, path /admin) holds no
token, hash or CSRF token. Before sign-in the browser holds an id too, with no row: the
sign-in form's CSRF token is an HMAC of it, so showing the form stores nothing.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, UTC
from typing import Any, TypeVar, cast

import asyncpg
from quart import Quart, current_app, g, redirect, render_template, request, session, url_for
from quart.sessions import SecureCookieSession, SessionInterface

from config.settings import Settings
from db.admin_sessions import (
    delete_old_admin_sessions,
    insert_admin_session,
    select_admin_session,
    update_admin_session_revoked,
    update_admin_session_seen,
)
from db.tokens import ApiToken
from domain.tokens import grants, hash_token

log = logging.getLogger("backroom.admin")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
COOKIE = "backroom_admin"
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
SEEN_EVERY_S = 60.0  # a session's last use is written at most this often (unless its data changed)
DB_DOWN = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class AdminSession(SecureCookieSession):
    """The session of one request: its id, and the token and CSRF token of its row (None before sign-in)."""

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        *,
        sid: str,
        token: ApiToken | None = None,
        csrf: str = "",
        last_seen: datetime | None = None,
        fresh_id: bool = False,
    ) -> None:
        super().__init__(data or {})
        self.sid, self.token, self.csrf, self.last_seen = sid, token, csrf, last_seen
        self.send_id = fresh_id  # the browser needs a Set-Cookie with this id
        self.ended = False
        self.unavailable = False  # the session store could not be read: pages answer 503


class ServerSessions(SessionInterface):
    """Quart's session interface, backed by `admin_sessions`; only /admin/ paths have a session."""

    def __init__(self, settings: Settings) -> None:
        self.idle_s = settings.admin_session_idle_minutes * 60
        self.absolute_s = settings.admin_session_hours * 3600
        self.secure = (settings.api_public_url or "").startswith("https://")

    async def open_session(self, app: Quart, request: Any) -> AdminSession | None:
        """The live session the cookie names, else an anonymous one (no row); None outside /admin/."""
        if not request.path.startswith("/admin") or request.path.startswith("/admin/static"):
            return None
        raw = request.cookies.get(COOKIE, "")
        if not SESSION_ID.fullmatch(raw):
            return AdminSession(sid=secrets.token_urlsafe(32), fresh_id=True)
        try:
            async with app.config["DB_POOL"].acquire() as conn:
                row = await select_admin_session(conn, _hash(raw), idle_s=self.idle_s, absolute_s=self.absolute_s)
        except DB_DOWN as error:  # raised here it would escape Quart's error handling: a bare 500
            log.warning("admin session lookup failed: %s", error)
            unavailable = AdminSession(sid=raw)
            unavailable.unavailable = True
            return unavailable
        if row is None:  # unknown, ended or expired: it carries no rights; a sign-in replaces it
            return AdminSession(sid=raw)
        return AdminSession(row.data, sid=raw, token=row.token, csrf=row.csrf, last_seen=row.last_seen_at)

    async def save_session(self, app: Quart, session: Any, response: Any) -> None:
        """Store a changed session (or its use, once a minute) and send the cookie when its id is new."""
        if not isinstance(session, AdminSession) or response is None:
            return
        if session.ended:
            response.delete_cookie(COOKIE, path="/admin")
            return
        if session.token is not None and (session.modified or _stale(session.last_seen)):
            try:
                async with app.config["DB_POOL"].acquire() as conn:
                    await update_admin_session_seen(conn, _hash(session.sid), dict(session))
            except DB_DOWN as error:  # the page was served; only its last use (or a flash) is lost
                log.warning("admin session not saved: %s", error)
        if session.send_id:
            expires = None if session.token is None else datetime.now(UTC).timestamp() + self.absolute_s
            response.set_cookie(
                COOKIE,
                session.sid,
                expires=expires,
                path="/admin",
                secure=self.secure,
                httponly=True,
                samesite="Strict",
            )


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def _stale(last_seen: datetime | None) -> bool:
    return last_seen is None or (datetime.now(UTC) - last_seen).total_seconds() >= SEEN_EVERY_S


def configure_sessions(app: Quart, settings: Settings) -> None:
    """Server-side sessions, and the key of the sign-in form's CSRF token."""
    if settings.admin_session_secret is not None:
        app.secret_key = settings.admin_session_secret.get_secret_value()
    else:
        app.secret_key = secrets.token_hex(32)
        log.warning(
            "ADMIN_SESSION_SECRET is not set: the /admin/ sign-in form is keyed by a random key made by this "
            "process, so a form shown by another process (or before a restart) must be reloaded"
        )
    app.session_interface = ServerSessions(settings)  # type: ignore[assignment]  # Quart annotates its cookie interface


async def token_for(raw: str) -> ApiToken | None:
    """The live token `raw` names, if it may read the admin surface."""
    token = await current_app.config["TOKEN_CACHE"].lookup(hash_token(raw.strip()))
    return token if token is not None and grants(token.scopes, "admin:read") else None


def _session() -> AdminSession:
    """This request's session (ServerSessions opens only AdminSessions)."""
    return cast(AdminSession, session)


async def sign_in(token: ApiToken) -> None:
    """Start a new session for `token` under a new id (the old one, if any, is revoked)."""
    interface = cast(ServerSessions, current_app.session_interface)
    current = _session()
    old, sid, csrf = current.sid, secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with current_app.config["DB_POOL"].acquire() as conn, conn.transaction():
        await update_admin_session_revoked(conn, _hash(old))
        await delete_old_admin_sessions(conn, interface.absolute_s)
        await insert_admin_session(conn, _hash(sid), token.id, csrf)
    current.clear()
    current.sid, current.token, current.csrf, current.send_id = sid, token, csrf, True
    current.last_seen = datetime.now(UTC)


async def sign_out() -> None:
    """Revoke this session: its cookie, even kept by someone, names nothing any more."""
    current = _session()
    async with current_app.config["DB_POOL"].acquire() as conn:
        await update_admin_session_revoked(conn, _hash(current.sid))
    current.token, current.ended = None, True


def store_down() -> bool:
    """True when this request's session could not be read (PostgreSQL unreachable)."""
    return bool(getattr(session, "unavailable", False))


async def session_token() -> ApiToken | None:
    """The signed-in token, or None (no session, expired, revoked, or the token was revoked)."""
    token = getattr(session, "token", None)
    return token if token is not None and grants(token.scopes, "admin:read") else None


def csrf_token() -> str:
    """This session's CSRF token (before sign-in: an HMAC of the browser's id)."""
    current = _session()
    if current.token is not None:
        return str(current.csrf)
    return hmac.new(str(current_app.secret_key).encode(), f"login:{current.sid}".encode(), "sha256").hexdigest()


async def csrf_valid() -> bool:
    """True when the request carries this session's CSRF token (form field or X-CSRF-Token header)."""
    sent = request.headers.get("X-CSRF-Token") or (await request.form).get("csrf_token", "")
    return hmac.compare_digest(csrf_token(), str(sent))


def signed_in(scope: str = "admin:read") -> Callable[[F], F]:
    """Pages need a session (else the sign-in page); actions also a valid CSRF token and the `admin` scope."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if store_down():
                return await page_error(503, "The session store (PostgreSQL) is unreachable. Retry shortly.")
            token = await session_token()
            if token is None:
                if request.method == "GET" and not request.path.endswith(".json"):
                    return redirect(url_for("admin_pages.login", next=request.path))
                return {"error": "sign in first"}, 401
            if request.method != "GET" and not await csrf_valid():
                return await page_error(403, "The form was stale or forged (CSRF check failed). Reload and retry.")
            if not grants(token.scopes, scope):
                return await page_error(403, f"Your token lacks the {scope!r} scope: this session is read-only.")
            await current_app.config["TOKEN_CACHE"].used(token)
            g.token = token
            return await handler(*args, **kwargs)

        return cast(F, wrapper)  # it answers instead of the handler (redirect, 401, 403, 503)

    return decorate


async def page_error(status: int, message: str) -> Any:
    """An error page (the admin layout, without navigation when signed out)."""
    return await render_template("admin/error.html", status=status, message=message), status


def can_act() -> bool:
    """True when the signed-in token may act (the templates hide action buttons otherwise)."""
    token = g.get("token")
    return token is not None and grants(token.scopes, "admin")
