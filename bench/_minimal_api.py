"""What a user would write instead of Backroom's enqueue endpoint: Quart, pydantic and bare Dramatiq.

`hypercorn _minimal_api:app` (bench/ on the path) serves it; REDIS_URL and BENCH_BARE_NAMESPACE
(default `bench_bare`) come from the environment. `POST /v1/jobs/ping` validates the same small
body as Backroom's (`message`, `fail`, `sleep_ms`, same bounds), sends it with a plain
`RedisBroker`'s `send()` and answers 202 with the message id. No auth, no job record, no request
id, no metrics, no unique keys: the baseline bench/queue_overhead.py compares Backroom against.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from pydantic import BaseModel, Field, ValidationError
from quart import Quart, request

broker = RedisBroker(url=os.environ["REDIS_URL"], namespace=os.environ.get("BENCH_BARE_NAMESPACE", "bench_bare"))
dramatiq.set_broker(broker)
app = Quart("minimal")
app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024


class Ping(BaseModel):
    """The body of Backroom's `POST /v1/jobs/ping`, its bounds included."""

    message: str = Field("pong", max_length=200)
    fail: bool = False
    sleep_ms: int = Field(0, ge=0, le=60_000)


@dramatiq.actor(queue_name="default", broker=broker)
def ping(message: str, fail: bool, sleep_ms: int) -> None:
    """Never run here: the bench only enqueues."""


@app.post("/v1/jobs/ping")
async def post_ping() -> tuple[dict, int]:
    """Validate, send, 202 (422 with pydantic's errors)."""
    try:
        body = Ping.model_validate_json(await request.get_data())
    except ValidationError as error:
        return {"errors": error.errors(include_url=False, include_context=False)}, 422
    # a plain send() on the event loop, as most handlers write it: one Redis round trip
    message = ping.send(**body.model_dump())
    return {"job_id": message.message_id}, 202


@app.get("/healthz")
async def healthz() -> tuple[dict, int]:
    """Ready (the bench waits for it)."""
    return {"status": "ok"}, 200
