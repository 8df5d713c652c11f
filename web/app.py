"""The Quart application: per-process resources opened in `before_serving`."""
from __future__ import annotations

import functools
import re
import time
import uuid
from typing import Any

import pydantic
import quart_schema.conversion
import structlog
from quart import Quart
from quart.sessions import SecureCookieSession, SecureCookieSessionInterface
from quart_schema import HttpSecurityScheme, Info, QuartSchema

import actors
from broker.batching import BatchedScript
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
from web.context import REQUEST_ID
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


# a caller's X-Request-ID is kept when it looks like an id (it lands in logs and job records)
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class BackroomQuart(Quart):
    """Quart that tags every request in its own request steps, not in before/after-request hooks.

    Each request gets an id (the caller's `X-Request-ID` when it looks like one, else a new
    one) bound to the logs and to the messages it enqueues and echoed in the response; it is
    counted and timed in Prometheus by endpoint. Done here, with the request context in
    hand, it needs none of the proxy look-ups that made the same work as hooks cost ~0.1 ms
    of CPU a request (measured with bench/queue_overhead.py's API load).
    """

    async def preprocess_request(self, request_context: Any = None) -> Any:
        """Bind the request id and start the clock, then run the app's before-request hooks."""
        request = request_context.request if request_context is not None else _current_request()
        raw = next((value for name, value in request.scope["headers"] if name == b"x-request-id"), b"")
        caller = raw.decode("latin-1")
        request.backroom_id = caller if CALLER_REQUEST_ID.fullmatch(caller) else uuid.uuid4().hex
        request.backroom_started = time.perf_counter()
        REQUEST_ID.set(request.backroom_id)
        structlog.contextvars.bind_contextvars(request_id=request.backroom_id)
        return await super().preprocess_request(request_context)

    async def process_response(self, response: Any, request_context: Any = None) -> Any:
        """Run the app's after-request hooks, then echo the request id and count the request."""
        response = await super().process_response(response, request_context)
        request = request_context.request if request_context is not None else _current_request()
        request_id = getattr(request, "backroom_id", None)
        if request_id is not None:  # None: the request failed before preprocess_request
            response.headers["X-Request-ID"] = request_id
        endpoint = request.endpoint or "unknown"
        _requests(request.method, endpoint, response.status_code).inc()
        started = getattr(request, "backroom_started", None)
        if started is not None:
            _latency(endpoint).observe(time.perf_counter() - started)
        structlog.contextvars.unbind_contextvars("request_id")
        return response


def _current_request() -> Any:
    from quart import request

    return request._get_current_object()  # type: ignore[attr-defined]


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
    # Quart would time every request body read and response send with asyncio.wait_for (a task and
    # a timer each, ~5% of an enqueue request); the Procfile's hypercorn --read-timeout drops a
    # client that stops sending instead, and a client slow to read holds only its own connection
    app.config.update(BODY_TIMEOUT=None, RESPONSE_TIMEOUT=None)
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
        # concurrent requests' enqueues share a round trip (one pipelined EVALSHA each)
        app.config["ENQUEUE_SCRIPT"] = BatchedScript(app.config["REDIS"], actors.broker.jobs.scripts["enqueue"].script)

    @app.after_serving
    async def close_resources() -> None:
        await app.config["DB_POOL"].close()
        await app.config["REDIS"].aclose()
        actors.broker.close()

    return app
