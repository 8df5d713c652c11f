"""/admin/ pages through the Quart test client: sign-in, session cookie, CSRF, read-only sessions."""

from __future__ import annotations

import re

import redis

import actors
from actors.ops import ping
from tests.admin_support import make_dead

KEYS = actors.broker.jobs.keys


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no csrf meta tag"
    return match.group(1)


async def sign_in(client, token: str) -> str:  # type: ignore[no-untyped-def]
    """Sign in through the form; returns the session's CSRF token."""
    page = await client.get("/admin/login")
    csrf = csrf_of(await page.get_data(as_text=True))
    response = await client.post("/admin/login", form={"token": token, "csrf_token": csrf, "next": "/admin/"})
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie and "Expires=" in cookie
    overview = await client.get("/admin/")
    assert overview.status_code == 200
    return csrf_of(await overview.get_data(as_text=True))


async def test_pages_need_a_session(app, redis_client: redis.Redis) -> None:
    client = app.test_client()
    response = await client.get("/admin/jobs")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
    assert (await client.get("/admin/overview.json")).status_code == 401
    assert response.headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_a_bad_token_or_a_jobs_token_cannot_sign_in(app, tokens) -> None:
    client = app.test_client()
    csrf = csrf_of(await (await client.get("/admin/login")).get_data(as_text=True))
    for token in ("brt_nope", tokens["jobs"], tokens["revoked"]):
        response = await client.post("/admin/login", form={"token": token, "csrf_token": csrf})
        assert response.status_code == 401
    forged = await app.test_client().post("/admin/login", form={"token": tokens["admin"], "csrf_token": "x"})
    assert forged.status_code == 403


async def test_admin_session_sees_every_page_and_acts_with_csrf(app, tokens, redis_client: redis.Redis) -> None:
    client = app.test_client()
    csrf = await sign_in(client, tokens["admin"])
    job_id = make_dead("page")
    actors.broker.enqueue(ping.message(message="x").copy(queue_name="ml"))
    for path in (
        "/admin/",
        "/admin/dead?queue=default",
        "/admin/dead/default/groups",
        "/admin/jobs",
        f"/admin/jobs/{job_id}",
        "/admin/jobs?status=dead&text=page",
        "/admin/workers",
        "/admin/edge",
        "/admin/schedules",
        "/admin/audit",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
    dead_page = await (await client.get("/admin/dead?queue=default")).get_data(as_text=True)
    assert "Requeue selected" in dead_page and job_id[:8] in dead_page
    data = await (await client.get("/admin/overview.json")).get_json()
    ml = next(q for q in data["queues"] if q["name"] == "ml")
    assert ml["ready"] == 1 and data["charts"]["ml"]["ready"]["points"]
    no_csrf = await client.post("/admin/queues/ml/pause", form={})
    assert no_csrf.status_code == 403 and not redis_client.smembers(KEYS.paused)
    paused = await client.post("/admin/queues/ml/pause", form={"csrf_token": csrf})
    assert paused.status_code == 303 and redis_client.smembers(KEYS.paused) == {b"ml"}
    by_header = await client.post("/admin/queues/ml/resume", headers={"X-CSRF-Token": csrf})
    assert by_header.status_code == 303 and not redis_client.smembers(KEYS.paused)
    audit = await (await client.get("/admin/audit")).get_data(as_text=True)
    assert "queue.pause" in audit and "queue.resume" in audit


async def test_read_only_session_sees_no_buttons_and_is_refused(app, tokens, redis_client: redis.Redis) -> None:
    client = app.test_client()
    csrf = await sign_in(client, tokens["reader"])
    job_id = make_dead("ro-page")
    overview = await (await client.get("/admin/")).get_data(as_text=True)
    assert "read-only" in overview and "Pause" not in overview
    dead_page = await (await client.get("/admin/dead?queue=default")).get_data(as_text=True)
    assert job_id[:8] in dead_page and "Requeue" not in dead_page and "Discard" not in dead_page
    job_page = await (await client.get(f"/admin/jobs/{job_id}")).get_data(as_text=True)
    assert "Replay as a new job" not in job_page
    refused = await client.post("/admin/dead/default/requeue", form={"csrf_token": csrf, "ids": job_id})
    assert refused.status_code == 403 and redis_client.zcard(KEYS.dead("default")) == 1


async def test_sign_out_ends_the_session(app, tokens) -> None:
    client = app.test_client()
    csrf = await sign_in(client, tokens["reader"])
    out = await client.post("/admin/logout", form={"csrf_token": csrf})
    assert out.status_code == 303
    assert (await client.get("/admin/")).status_code == 302


async def test_edit_and_replay_from_the_job_page(app, tokens, redis_client: redis.Redis) -> None:
    client = app.test_client()
    csrf = await sign_in(client, tokens["admin"])
    job_id = make_dead("form", fail=True)
    bad = await client.post(f"/admin/dead/default/{job_id}/replay", form={"csrf_token": csrf, "args": "[oops"})
    assert bad.status_code == 422
    form = {"csrf_token": csrf, "args": '["form-2"]', "kwargs": '{"fail": false}'}
    response = await client.post(f"/admin/dead/default/{job_id}/replay", form=form)
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[1]
    page = await (await client.get(f"/admin/jobs/{new_id}")).get_data(as_text=True)
    assert 'data-link="replayed_from"' in page and job_id in page and "form-2" in page


async def test_workers_page_marks_edge_workers_and_survives_their_garbage(app, tokens, redis_client) -> None:
    from dramatiq.common import current_millis

    beat = current_millis() + 60_000
    redis_client.zadd(KEYS.edge.heartbeats, {"edge-pi7-1": beat, "edge-pi7-2": beat})
    redis_client.hset(
        KEYS.edge.worker("edge-pi7-1"),
        mapping={"name": "pi7:3", "host": "pi7", "pid": 3, "queues": "edge", "last_beat": beat},
    )
    redis_client.hset(KEYS.edge.worker("edge-pi7-2"), mapping={"host": "pi7", "pid": "<b>x</b>"})  # garbage
    client = app.test_client()
    await sign_in(client, tokens["reader"])
    response = await client.get("/admin/workers")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200 and re.search(r"<strong>pi7</strong>:3 <span[^>]*>edge</span>", html)
    assert "<b>x</b>" not in html
