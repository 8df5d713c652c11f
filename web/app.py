"""The Quart application: per-process resources opened in `before_serving`."""
from __future__ import annotations

import functools
import time
import uuid
from typing import Any

import pydantic
import quart_schema.conversion
import structlog
from quart import Quart, g, request
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart_schema import HttpSecurityScheme, Info, QuartSchema

import actors
from broker.setup import async_redis_client, init_sentry
from config.settings import get_settings
from db.pool import create_pool
from web import health, jobs
from web import orders, webhooks
from web import search
from web import items
from web import collections
from web import admin_api, admin_pages
from web.auth import TokenCache
from web.errors import install_error_handlers


# quart-schema builds a pydantic TypeAdapter for every body it validates (~0.3 ms a request);
# a model class never changes, so one adapter per class serves every request
quart_schema.conversion.TypeAdapter = functools.lru_cache(maxsize=256)(pydantic.TypeAdapter)  # type: ignore[misc]


class LazyCookieSessions(SecureCookieSessionInterface):
    """Cookie sessions (the /admin/ sign-in) that cost nothing on requests carrying no session cookie."""

    async def open_session(self, app: Quart, request: Any) -> SecureCookieSession | None:
        """A new empty session without building a signer when there is no cookie to check."""
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return await super().open_session(app, request)


def create_app() -> Quart:
    """Build the API app (settings are read once, here)."""
    settings = get_settings()
    init_sentry(settings, web=True)
    app = Quart("backroom")
    app.session_interface = LazyCookieSessions()
    app.config["TOKEN_CACHE"] = TokenCache()
    QuartSchema(
        app,
        info=Info(title="Backroom API", version="0.1.0",
                  description="Validate and enqueue background jobs; read their records."),
        security_schemes={"bearer": HttpSecurityScheme(scheme="bearer")},
        security=[{"bearer": []}],
    )
    install_error_handlers(app)
    app.register_blueprint(jobs.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(orders.blueprint)
    app.register_blueprint(search.blueprint)
    app.register_blueprint(items.blueprint)
    app.register_blueprint(collections.blueprint)
    app.register_blueprint(admin_api.blueprint)
    admin_pages.install(app, settings)

    @app.before_serving
    async def open_resources() -> None:
        app.config["DB_POOL"] = await create_pool(settings.database_url, min_size=1, max_size=10)
        app.config["REDIS"] = async_redis_client(settings)
        app.config["ENQUEUE_SCRIPT"] = app.config["REDIS"].register_script(actors.broker.jobs.scripts["enqueue"].script)

    @app.after_serving
    async def close_resources() -> None:
        await app.config["DB_POOL"].close()
        await app.config["REDIS"].aclose()
        actors.broker.close()

    @app.before_request
    async def bind_request_id() -> None:
        g.request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        g.started = time.perf_counter()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    async def tag_response(response: Any) -> Any:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        endpoint = request.endpoint or "unknown"
        health.REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        health.LATENCY.labels(endpoint).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        structlog.contextvars.unbind_contextvars("request_id")
        return response

    return app
