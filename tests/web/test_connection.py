"""Quart's own ASGI connection under the app: bodies in pieces, a client gone early, the body limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import redis

import actors
from tests.web.conftest import bearer


async def call(
    app: Any, path: str, messages: Iterable[dict[str, Any]], token: str, *, method: str = "POST"
) -> list[dict[str, Any]]:
    """Drive the Quart app through ASGI as a server would; returns what it sent back."""
    queued = list(messages)
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }

    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        # what the client sent; then, as a server does, nothing more until the answer went out
        if queued:
            return queued.pop(0)
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            answered.set()

    await app.app(scope, receive, send)
    return sent


def status_and_body(sent: list[dict[str, Any]]) -> tuple[int, bytes]:
    assert sent[0]["type"] == "http.response.start"
    body = b"".join(message.get("body", b"") for message in sent[1:])
    assert sent[-1].get("more_body", False) is False
    return sent[0]["status"], body


def enqueued(redis_client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in redis_client.hvals(actors.broker.jobs.keys.messages("default"))]


async def test_a_body_sent_in_pieces_is_read_whole(app, tokens, redis_client: redis.Redis) -> None:
    pieces = [b'{"message": "in ', b"three ", b'pieces"}']
    messages = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1} for i, piece in enumerate(pieces)
    ]
    status, body = status_and_body(await call(app, "/v1/jobs/ping", messages, tokens["jobs"]))
    assert status == 202
    job_id = json.loads(body)["job_id"]
    [message] = enqueued(redis_client)
    assert message["message_id"] == job_id and message["kwargs"]["message"] == "in three pieces"


async def test_a_client_gone_before_its_body_arrived_gets_nothing_run(app, tokens, redis_client: redis.Redis) -> None:
    sent = await call(
        app,
        "/v1/jobs/ping",
        [{"type": "http.request", "body": b'{"mess', "more_body": True}, {"type": "http.disconnect"}],
        tokens["jobs"],
    )
    assert sent == []
    assert enqueued(redis_client) == []


async def test_a_body_over_the_limit_is_refused_with_413(app, tokens, redis_client: redis.Redis) -> None:
    limit = app.app.config["MAX_CONTENT_LENGTH"]
    app.app.config["MAX_CONTENT_LENGTH"] = 64
    try:
        messages = [
            {"type": "http.request", "body": b'{"message": "' + b"x" * 40, "more_body": True},
            {"type": "http.request", "body": b"x" * 40 + b'"}', "more_body": False},
        ]
        status, _ = status_and_body(await call(app, "/v1/jobs/ping", messages, tokens["jobs"]))
    finally:
        app.app.config["MAX_CONTENT_LENGTH"] = limit
    assert status == 413
    assert enqueued(redis_client) == []


async def test_api_requests_carry_no_session_and_admin_pages_still_get_one(app, tokens) -> None:
    client = app.test_client()  # its own cookie jar
    api = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert api.status_code == 202 and "Set-Cookie" not in api.headers
    sign_in_page = await client.get("/admin/login")  # its form's CSRF token lives in a new session
    assert sign_in_page.status_code == 200 and "Set-Cookie" in sign_in_page.headers
