"""The Quart application: per-process resources opened in `before_serving`."""
from __future__ import annotations

import functools
import os
import re
import time
from typing import Any

import pydantic
import quart_schema.conversion
import structlog
from quart import Quart
from quart.asgi import ASGIHTTPConnection
from quart.helpers import _split_blueprint_path  # what Quart's own property calls (cached)
from quart.utils import encode_headers
from quart.wrappers import Request, Response
from quart.wrappers.response import DataBody
from quart_schema import HttpSecurityScheme, Info, QuartSchema

import actors
from broker.batching import BatchedScript
from broker.setup import async_redis_client, init_sentry
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


# quart-schema builds a pydantic TypeAdapter for every body it validates (~0.3 ms a request);
# a model class never changes, so one adapter per class serves every request
quart_schema.conversion.TypeAdapter = functools.lru_cache(maxsize=256)(pydantic.TypeAdapter)  # type: ignore[misc]


MAX_BODY_BYTES = 1024 * 1024
# a caller's X-Request-ID is kept when it looks like an id (it lands in logs and job records)
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class BackroomRequest(Request):
    """Quart's request, with `blueprints` answered without the import statement Quart runs per call.

    Quart asks for a request's blueprint names several times a request (before- and after-request
    steps, templates); the property's function-level import cost ~37k CPU instructions a request.
    """

    @property
    def blueprints(self) -> list[str]:
        """This request's blueprint, then its parents (empty outside a blueprint)."""
        name = self.blueprint
        return _split_blueprint_path(name) if name is not None else []


class WholeBodyConnection(ASGIHTTPConnection):
    """Quart's HTTP connection, reading the whole request body before the view runs, in one task.

    Quart runs each request as two tasks, one receiving the body while the other runs the view,
    and cancels the view when the client disconnects. Every view here reads its whole (small)
    JSON body first anyway; here the body is read, then the view runs in the server's own task
    for the request. That saves ~140k of the ~1.1M CPU instructions Quart and the view spent on
    an enqueue request (callgrind). A request whose body arrived in full runs to its end even if
    the client goes away meanwhile: an enqueue is never cut off half-way. The body limit
    (MAX_CONTENT_LENGTH, 413) applies as before. A fully buffered response goes out as one body
    message instead of a body and an empty last one.
    """

    async def __call__(self, receive: Any, send: Any) -> None:
        request = self._create_request_from_scope(send)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # gone before its body arrived: nothing to answer
            if message["type"] == "http.request":
                request.body.append(message.get("body", b""))  # past the limit it only marks the 413
                if not message.get("more_body", False):
                    request.body.set_complete()
                    break
        await self.handle_request(request, send)

    async def _send_response(self, send: Any, response: Any) -> None:
        body = getattr(response, "response", None)
        if isinstance(body, DataBody) and body.begin == 0 and body.end == len(body.data):
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": encode_headers(response.headers)})
            await send({"type": "http.response.body", "body": body.data, "more_body": False})
            return
        await super()._send_response(send, response)


class BackroomQuart(Quart):
    """Quart that tags every request in its own request steps, not in before/after-request hooks.

    Each request gets an id (the caller's `X-Request-ID` when it looks like one, else a new
    one) bound to the logs and to the messages it enqueues and echoed in the response; it is
    counted and timed in Prometheus by endpoint. Done here, with the request context in
    hand, it needs none of the proxy look-ups that made the same work as hooks cost ~0.1 ms
    of CPU a request (measured with bench/queue_overhead.py's API load).

    Its requests are `BackroomRequest`s, served by `WholeBodyConnection`.
    """

    request_class = BackroomRequest
    asgi_http_class = WholeBodyConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._async_functions = functools.lru_cache(maxsize=512)(super().ensure_async)

    async def preprocess_request(self, request_context: Any = None) -> Any:
        """Bind the request id and start the clock, then run the app's before-request hooks."""
        request = request_context.request if request_context is not None else _current_request()
        caller = header(request, b"x-request-id")
        # a new id: 32 hex digits of os.urandom, as uuid4().hex, without building a UUID object
        request.backroom_id = caller if CALLER_REQUEST_ID.fullmatch(caller) else os.urandom(16).hex()
        request.backroom_started = time.perf_counter()
        REQUEST_ID.set(request.backroom_id)
        structlog.contextvars.bind_contextvars(request_id=request.backroom_id)
        return await super().preprocess_request(request_context)

    def ensure_async(self, func: Any) -> Any:
        """Quart's `ensure_async`, its answer remembered per function.

        Quart asks it of every hook, view and signal receiver of every request, and works the
        answer out afresh each time (~20k CPU instructions a request).
        """
        try:
            return self._async_functions(func)
        except TypeError:  # an unhashable callable
            return super().ensure_async(func)

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


def _answer_responses_directly(app: Quart) -> None:
    """A view's `Response` goes out as it is; other return values through quart-schema's conversion.

    quart-schema wraps `make_response` to turn pydantic models and dataclasses into JSON; for a
    `Response` (what every enqueue answers) that conversion only takes it apart and puts it back
    together (~80k CPU instructions a request). Quart's own `make_response` returns a bare
    `Response` unchanged too.
    """
    schema_make_response = app.make_response

    async def make_response(result: Any) -> Any:
        if isinstance(result, Response):
            return result
        return await schema_make_response(result)

    app.make_response = make_response  # type: ignore[method-assign]


def create_app() -> Quart:
    """Build the API app (settings are read once, here)."""
    settings = get_settings()
    init_sentry(settings, web=True)
    app = BackroomQuart("backroom")
    # Quart would time every request body read and response send with asyncio.wait_for (a task and
    # a timer each, ~5% of an enqueue request); the Procfile's hypercorn --read-timeout drops a
    # client that stops sending instead, and a client slow to read holds only its own connection
    app.config.update(BODY_TIMEOUT=None, RESPONSE_TIMEOUT=None)
    # no body here needs more (Quart's default is 16 MiB): past it, 413 before any parsing
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["TOKEN_CACHE"] = TokenCache()
    QuartSchema(
        app,
        info=Info(title="Backroom API", version="0.1.0",
                  description="Validate and enqueue background jobs; read their records. Errors are problem "
                              f"bodies (RFC 9457); a request body is at most {MAX_BODY_BYTES // 1024} KiB (413)."),
        security_schemes={"bearer": HttpSecurityScheme(scheme="bearer")},
        security=[{"bearer": []}],
        openapi_provider_class=BackroomOpenAPI,
    )
    _answer_responses_directly(app)
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
        app.config["REDIS"] = async_redis_client(settings)
        app.config["RATE_LIMITER"] = TokenRateLimiter(app.config["REDIS"], settings.redis_namespace,
                                                      settings.token_rate_limit_per_min)
        # concurrent requests' enqueues share a round trip (one pipelined EVALSHA each)
        app.config["ENQUEUE_SCRIPT"] = BatchedScript(app.config["REDIS"], actors.broker.jobs.scripts["enqueue"].script,
                                                     wait=actors.broker.replica_wait)

    @app.after_serving
    async def close_resources() -> None:
        await app.config["DB_POOL"].close()
        await app.config["REDIS"].aclose()
        actors.broker.close()

    return app
