"""Server-side /admin/ sessions, jobs owned by their token, token last use, /metrics access, rate limits."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, UTC

import asyncpg
import pytest
import redis
import redis.asyncio

import actors
from db.tokens import ApiToken, insert_token
from domain.tokens import display_prefix, hash_token, make_token
from tests.orders_support import restore_env, set_env
from tests.web.conftest import bearer
from tests.web.test_admin_pages import sign_in
from web.ratelimit import TokenRateLimiter

Make = Callable[..., Awaitable[tuple[str, int]]]


@pytest.fixture()
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture()
def make_token_row(db: asyncpg.Connection) -> Make:
    """A new token (its secret and id) with `scopes` and an optional rate limit."""

    async def make(*scopes: str, rate_limit_per_min: int | None = 0) -> tuple[str, int]:
        token = make_token(secrets.token_hex(32))
        row = await insert_token(
            db,
            name=f"t-{secrets.token_hex(3)}",
            token_hash=hash_token(token),
            prefix=display_prefix(token),
            scopes=list(scopes) or ["jobs"],
            rate_limit_per_min=rate_limit_per_min,
        )
        return token, row.id

    return make


def cookie_of(response) -> str:  # type: ignore[no-untyped-def]
    header = response.headers["Set-Cookie"]
    assert header.startswith("backroom_admin=")
    return header.split(";", 1)[0].split("=", 1)[1]


def jar_cookie(client) -> str:  # type: ignore[no-untyped-def]
    """The session id the test client's browser holds now."""
    return next(c.value for c in client.cookie_jar if c.name == "backroom_admin")


async def with_cookie(app, path: str, cookie: str):  # type: ignore[no-untyped-def]
    """A request from a fresh browser that replays a saved cookie."""
    return await app.test_client().get(path, headers={"Cookie": f"backroom_admin={cookie}"})


# --- sessions ---


async def test_the_cookie_is_an_opaque_id_rotated_at_sign_in_and_dead_after_sign_out(app, tokens, db) -> None:
    client = app.test_client()
    before = cookie_of(await client.get("/admin/login"))
    csrf = await sign_in(client, tokens["admin"])
    overview = await client.get("/admin/")
    assert overview.status_code == 200
    saved = jar_cookie(client)
    assert saved != before and len(saved) == 43  # a new random id, no signature, no token hash, no CSRF token
    assert hash_token(tokens["admin"]) not in saved and csrf not in saved
    assert await db.fetchval("SELECT count(*) FROM admin_sessions WHERE id_hash = $1", hash_token(saved)) == 1
    assert (await with_cookie(app, "/admin/", saved)).status_code == 200  # the cookie alone is the session
    out = await client.post("/admin/logout", form={"csrf_token": csrf})
    assert out.status_code == 303
    replayed = await with_cookie(app, "/admin/", saved)  # saved before sign-out, replayed after
    assert replayed.status_code == 302 and replayed.headers["Location"].startswith("/admin/login")
    assert (await with_cookie(app, "/admin/whoami.json", saved)).status_code == 401


async def test_signing_in_again_replaces_the_id(app, tokens) -> None:
    client = app.test_client()
    await sign_in(client, tokens["reader"])
    first = jar_cookie(client)
    page = await client.get("/admin/login")
    from tests.web.test_admin_pages import csrf_of

    again = await client.post(
        "/admin/login",
        form={"token": tokens["admin"], "csrf_token": csrf_of(await page.get_data(as_text=True)), "next": "/admin/"},
    )
    assert again.status_code == 303
    second = cookie_of(again)
    assert second != first
    assert (await with_cookie(app, "/admin/", first)).status_code == 302  # the old id was revoked
    assert (await with_cookie(app, "/admin/", second)).status_code == 200


@pytest.mark.parametrize("column", ["last_seen_at", "created_at"])
async def test_idle_and_absolute_timeouts_end_a_session(app, tokens, db, column: str) -> None:
    client = app.test_client()
    await sign_in(client, tokens["admin"])
    sid = jar_cookie(client)
    assert (await with_cookie(app, "/admin/", sid)).status_code == 200
    # ADMIN_SESSION_IDLE_MINUTES=30 unused, or ADMIN_SESSION_HOURS=8 since the sign-in
    ago = "31 minutes" if column == "last_seen_at" else "8 hours 1 minute"
    await db.execute(
        f"UPDATE admin_sessions SET {column} = now() - interval '{ago}' WHERE id_hash = $1", hash_token(sid)
    )
    assert (await with_cookie(app, "/admin/", sid)).status_code == 302


async def test_revoking_the_token_ends_its_sessions_at_once(app, db, make_token_row: Make) -> None:
    token, token_id = await make_token_row("admin")
    client = app.test_client()
    await sign_in(client, token)
    await db.execute("UPDATE api_tokens SET revoked_at = now() WHERE id = $1", token_id)
    assert (await client.get("/admin/")).status_code == 302


async def test_an_unreachable_session_store_is_503_not_a_crash(app, tokens, monkeypatch) -> None:
    client = app.test_client()
    await sign_in(client, tokens["admin"])

    class Down:
        def acquire(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise ConnectionRefusedError("PostgreSQL is down")

    monkeypatch.setitem(app.app.config, "DB_POOL", Down())
    assert (await client.get("/admin/")).status_code == 503
    assert (await client.post("/admin/login", form={"token": tokens["admin"]})).status_code == 503


# --- jobs belong to the token that made them ---


async def test_a_jobs_token_reads_and_cancels_only_its_own_jobs(
    client, tokens, make_token_row: Make, redis_client: redis.Redis
) -> None:
    other, other_id = await make_token_row("jobs")
    mine = await (await client.post("/v1/jobs/ping", json={"sleep_ms": 1}, headers=bearer(other))).get_json()
    theirs = await (await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))).get_json()
    record = actors.broker.jobs.get(mine["job_id"])
    assert record is not None and record.token_id == other_id
    assert (await client.get(f"/v1/jobs/{mine['job_id']}", headers=bearer(other))).status_code == 200
    for refused in (
        await client.get(f"/v1/jobs/{theirs['job_id']}", headers=bearer(other)),
        await client.post(f"/v1/jobs/{theirs['job_id']}/cancel", headers=bearer(other)),
    ):
        assert refused.status_code == 404  # as for an unknown id: another token's ids do not leak
    assert actors.broker.jobs.get(theirs["job_id"]).status.value == "queued"  # not cancelled
    admin = await client.get(f"/v1/jobs/{mine['job_id']}", headers=bearer(tokens["admin"]))
    assert admin.status_code == 200 and (await admin.get_json())["token_id"] == other_id
    cancelled = await client.post(f"/v1/jobs/{mine['job_id']}/cancel", headers=bearer(other))
    assert cancelled.status_code == 200 and (await cancelled.get_json())["status"] == "cancelled"
    by_admin = await client.post(f"/v1/jobs/{theirs['job_id']}/cancel", headers=bearer(tokens["admin"]))
    assert by_admin.status_code == 200


async def test_unique_keys_are_per_token(client, tokens, make_token_row: Make, redis_client: redis.Redis) -> None:
    other, _ = await make_token_row("jobs")
    mine = [
        await (await client.post("/v1/jobs/ping", json={"unique_key": "order-7"}, headers=bearer(other))).get_json()
        for _ in range(2)
    ]
    theirs = await (
        await client.post("/v1/jobs/ping", json={"unique_key": "order-7"}, headers=bearer(tokens["jobs"]))
    ).get_json()
    assert mine[1]["deduplicated"] and mine[1]["job_id"] == mine[0]["job_id"]
    assert not theirs["deduplicated"] and theirs["job_id"] != mine[0]["job_id"]  # another token's id is not answered


async def test_a_job_without_a_token_is_for_admins_only(client, tokens, redis_client: redis.Redis) -> None:
    from actors.ops import ping

    message = ping.send(message="from a schedule")
    assert (await client.get(f"/v1/jobs/{message.message_id}", headers=bearer(tokens["jobs"]))).status_code == 404
    assert (await client.get(f"/v1/jobs/{message.message_id}", headers=bearer(tokens["admin"]))).status_code == 200


# --- last use ---


async def test_last_use_is_written_at_most_once_a_minute(client, db, make_token_row: Make) -> None:
    token, token_id = await make_token_row("jobs")
    assert await db.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", token_id) is None
    await client.get("/v1/jobs/00000000-0000-0000-0000-000000000000", headers=bearer(token))
    first = await db.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", token_id)
    assert first is not None
    await db.execute(
        "UPDATE api_tokens SET last_used_at = last_used_at - interval '30 seconds' WHERE id = $1", token_id
    )
    await client.get("/v1/jobs/00000000-0000-0000-0000-000000000000", headers=bearer(token))
    again = await db.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", token_id)
    assert (first - again).total_seconds() == pytest.approx(30, abs=0.01)  # within the minute: not written


# --- /metrics ---


async def test_metrics_need_an_admin_read_token_by_default(client, tokens) -> None:
    refused = await client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["Content-Type"] == "application/problem+json"
    body = await refused.get_json()
    assert body["status"] == 401 and body["title"] and "admin:read" in body["detail"]
    assert (await client.get("/metrics", headers=bearer(tokens["jobs"]))).status_code == 403
    assert (await client.get("/metrics", headers=bearer(tokens["revoked"]))).status_code == 401
    ok = await client.get("/metrics", headers=bearer(tokens["reader"]))
    assert ok.status_code == 200 and b"backroom_http_requests_total" in await ok.get_data()


@pytest.mark.parametrize(("address", "status"), [("127.0.0.1", 200), ("10.1.2.3", 200), ("8.8.8.8", 403)])
async def test_metrics_can_be_bound_to_private_addresses(client, address: str, status: int) -> None:
    saved = set_env({"METRICS_ACCESS": "private"})
    try:
        response = await client.get("/metrics", scope_base={"client": (address, 40000)})
        assert response.status_code == status
    finally:
        restore_env(saved)


# --- rate limits ---


async def test_a_token_over_its_rate_limit_gets_429_and_nothing_is_enqueued(
    client, tokens, make_token_row: Make, redis_client: redis.Redis
) -> None:
    token, _ = await make_token_row("jobs", rate_limit_per_min=3)
    answers = [await client.post("/v1/jobs/ping", json={}, headers=bearer(token)) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    limited = answers[-1]
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 20  # 3 a minute: one more in 20 s
    body = await limited.get_json()
    assert body["status"] == 429 and body["title"] == "Too Many Requests" and "rate limit" in body["detail"]
    assert redis_client.llen(actors.broker.jobs.keys.queue("default")) == 3
    other = await client.post("/v1/jobs/ping", json={}, headers=bearer(tokens["jobs"]))
    assert other.status_code == 202  # a limit is per token


async def test_the_default_limit_applies_to_tokens_without_their_own(
    app, make_token_row: Make, redis_client: redis.Redis
) -> None:
    token, _ = await make_token_row("jobs", rate_limit_per_min=None)
    limiter = app.app.config["RATE_LIMITER"]
    saved_default, limiter.default = limiter.default, 2
    try:
        client = app.test_client()
        codes = [
            (await client.get("/v1/jobs/00000000-0000-0000-0000-000000000000", headers=bearer(token))).status_code
            for _ in range(3)
        ]
        assert codes == [404, 404, 429]
    finally:
        limiter.default = saved_default


def api_token(per_min: int) -> ApiToken:
    return ApiToken(
        id=987654,
        name="shared",
        prefix="brt_abc",
        scopes=("jobs",),
        created_at=datetime.now(UTC),
        last_used_at=None,
        revoked_at=None,
        rate_limit_per_min=per_min,
    )


@pytest.fixture()
async def limiters(redis_client: redis.Redis) -> AsyncIterator[list[TokenRateLimiter]]:
    """Two web processes' limiters, each on its own Redis client."""
    url = redis_client.connection_pool.connection_kwargs
    clients = [redis.asyncio.Redis(host=url["host"], port=url["port"]) for _ in range(2)]
    yield [TokenRateLimiter(c, "backroom", 1200) for c in clients]
    for c in clients:
        await c.aclose()


async def test_every_web_process_shares_a_tokens_bucket(limiters: list[TokenRateLimiter]) -> None:
    token = api_token(4)
    waits = [await limiters[i % 2].wait_s(token) for i in range(5)]
    assert waits[:4] == [0, 0, 0, 0] and waits[4] > 0


async def test_a_busy_token_takes_leases_not_a_round_trip_per_request(limiters: list[TokenRateLimiter]) -> None:
    token = api_token(1200)  # leases of 10 (half a second's worth)
    for _ in range(100):
        assert await limiters[0].wait_s(token) == 0
    assert limiters[0].script.round_trips == 10
    shared = api_token(240)  # leases of 2: both processes together stay within the bucket
    shared = ApiToken(**{**shared.__dict__, "id": 987655})
    allowed = sum([await limiters[i % 2].wait_s(shared) == 0 for i in range(300)])
    assert 240 <= allowed <= 240 + 2 * 2 + 8  # the bucket, the leases, and what refills meanwhile (4/s)
