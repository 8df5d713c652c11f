"""The Quart application: per-process resources opened in `before_serving`."""

from __future__ import annotations

import functools
import os
import re
import time
from typing import Any, cast

import structlog
from quart import Quart, Request
from quart.globals import request_ctx
from quart_schema import HttpSecurityScheme, Info, QuartSchema

import actors
from broker.enqueuer import AsyncEnqueuer
from broker.setup import init_sentry
from config.settings import get_settings
from db.pool import create_pool
from web import health, jobs
from web import orders, tickets, webhooks
from web import search
from web import items
from web import collections
from web import reminders, catalog
from web.admin import api as admin_api, pages as admin_pages, notification_templates as admin_templates
from web.admin import events as admin_events, notifications as admin_notifications
from web.admin import review as admin_review, storefronts as admin_storefronts, unmatched as admin_unmatched
from web.auth import TokenCache
from web.context import REQUEST_ID, header
from web.errors import install_error_handlers
from web.ratelimit import TokenRateLimiter
from web.openapi import BackroomOpenAPI, IdConverter


MAX_BODY_BYTES = 1024 * 1024
# a caller's X-Request-ID is kept when it looks like an id (it lands in logs and job records)
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class BackroomRequest(Request):
    """Quart's request with the id and start time Backroom tags it with (None until tagged)."""

    backroom_id: str | None = None
    backroom_started: float | None = None


class BackroomQuart(Quart):
    """Quart that tags every request in its own request steps (Quart's documented overridables).

    Each request gets an id (the caller's `X-Request-ID` when it looks like one, else a new
    one) bound to the logs and to the messages it enqueues and echoed in the response; it is
    counted and timed in Prometheus by endpoint. Done in `preprocess_request` and
    `process_response` rather than in hooks, so that it also covers a request that a
    before-request hook answers (auth, rate limits), and runs first and last.
    """

    request_class = BackroomRequest

    async def preprocess_request(self, request_context: Any = None) -> Any:
        """Bind the request id and start the clock, then run the app's before-request hooks."""
        request = cast(BackroomRequest, (request_context or request_ctx).request)
        caller = header(request, b"x-request-id")
        request_id = caller if CALLER_REQUEST_ID.fullmatch(caller) else os.urandom(16).hex()
        request.backroom_id, request.backroom_started = request_id, time.perf_counter()
        REQUEST_ID.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return await super().preprocess_request(request_context)

    async def process_response(self, response: Any, request_context: Any = None) -> Any:
        """Run the app's after-request hooks, then echo the request id and count the request."""
        response = await super().process_response(response, request_context)
        request = cast(BackroomRequest, (request_context or request_ctx).request)
        request_id = request.backroom_id
        if request_id is not None:  # None: the request failed before preprocess_request
            response.headers["X-Request-ID"] = request_id
        endpoint = request.endpoint or "unknown"
        _requests(request.method, endpoint, response.status_code).inc()
        started = request.backroom_started
        if started is not None:
            _latency(endpoint).observe(time.perf_counter() - started)
        structlog.contextvars.unbind_contextvars("request_id")
        return response


@functools.lru_cache(maxsize=1024)
def _requests(method: str, endpoint: str, status: int) -> Any:
    """The request counter of one (method, endpoint, status), looked up once."""
    return health.REQUESTS.labels(method, endpoint, str(status))


@functools.lru_cache(maxsize=256)
def _latency(endpoint: str) -> Any:
    return health.LATENCY.labels(endpoint)


def create_app() -> Quart:
    """Build the API app (settings are read once, here)."""
    settings = get_settings()
    init_sentry(settings, web=True)
    app = BackroomQuart("backroom")
    # no per-read and per-send timers: the Procfile's hypercorn --read-timeout drops a client that
    # stops sending, and a client slow to read holds only its own connection
    app.config.update(BODY_TIMEOUT=None, RESPONSE_TIMEOUT=None)
    # no body here needs more (Quart's default is 16 MiB): past it, 413 before any parsing
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["TOKEN_CACHE"] = TokenCache()
    QuartSchema(
        app,
        info=Info(
            title="Backroom API",
            version="0.1.0",
            description="Validate and enqueue background jobs; read their records. Errors are problem "
            f"bodies (RFC 9457); a request body is at most {MAX_BODY_BYTES // 1024} KiB (413).",
        ),
        security_schemes={"bearer": HttpSecurityScheme(scheme="bearer")},
        security=[{"bearer": []}],
        openapi_provider_class=BackroomOpenAPI,
    )
    install_error_handlers(app)
    app.url_map.converters["id"] = IdConverter  # before the blueprints: their rules use it
    app.register_blueprint(jobs.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(orders.blueprint)
    app.register_blueprint(tickets.blueprint)
    app.register_blueprint(search.blueprint)
    app.register_blueprint(items.blueprint)
    app.register_blueprint(admin_events.blueprint)
    app.register_blueprint(admin_storefronts.blueprint)
    app.register_blueprint(admin_review.blueprint)
    app.register_blueprint(catalog.blueprint)
    app.register_blueprint(catalog.seeds_blueprint)
    app.register_blueprint(collections.blueprint)
    app.register_blueprint(reminders.blueprint)
    app.register_blueprint(admin_templates.blueprint)
    app.register_blueprint(admin_notifications.blueprint)
    app.register_blueprint(admin_api.blueprint)
    app.register_blueprint(admin_unmatched.blueprint)
    admin_pages.install(app, settings)

    @app.before_serving
    async def open_resources() -> None:
        app.config["DB_POOL"] = await create_pool(settings.database_url, min_size=1, max_size=10)
        # the process's one asyncio Redis client: enqueues, rate limits, health
        app.config["ENQUEUER"] = enqueuer = AsyncEnqueuer.open(actors.broker, settings)
        app.config["REDIS"] = enqueuer.client
        app.config["RATE_LIMITER"] = TokenRateLimiter(
            app.config["REDIS"], settings.redis_namespace, settings.token_rate_limit_per_min
        )

    @app.after_serving
    async def close_resources() -> None:
        await app.config["DB_POOL"].close()
        await app.config["ENQUEUER"].aclose()
        actors.broker.close()

    return app
