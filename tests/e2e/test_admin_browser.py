"""/admin/ in real Chromium (Playwright) against a real hypercorn, Redis, Postgres and worker.

Signs in, watches counts change as jobs are enqueued, requeues a dead job from the page and
sees it succeed, and checks that a read-only session has no action buttons and is refused.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

import actors
from actors.ops import ping
from cli.stack import free_port
from db.tokens import insert_token
from domain.jobs import JobStatus
from domain.tokens import display_prefix, hash_token, make_token
from tests.admin_support import make_dead, reaches, running_worker
from tests.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing: apt-get install chromium"),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def new_token(database_url: str, scope: str) -> str:
    async def insert() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            value = make_token(secrets.token_hex(32))
            await insert_token(
                conn,
                name=f"browser-{scope}-{secrets.token_hex(2)}",
                token_hash=hash_token(value),
                prefix=display_prefix(value),
                scopes=[scope],
            )
            return value
        finally:
            await conn.close()

    return asyncio.run(insert())


@pytest.fixture()
def server(redis_client, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """hypercorn serving the app on a free port; its base URL."""
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "ADMIN_SESSION_SECRET": secrets.token_hex(32)}
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "web.asgi:app", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                return True
            except OSError:
                assert process.poll() is None, (tmp_path / "web.log").read_text()
                return False

        wait_until(
            answers, 60, "the web process to answer", interval=0.2, detail=lambda: (tmp_path / "web.log").read_text()
        )
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


@pytest.fixture()
def admin_tokens(database_url: str) -> tuple[str, str]:
    """An admin and an admin:read token (made before Playwright's loop runs in this thread)."""
    return new_token(database_url, "admin"), new_token(database_url, "admin:read")


@pytest.fixture()
def browser(admin_tokens: tuple[str, str]) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def sign_in(browser, base: str, token: str):  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/admin/")
    assert "/admin/login" in page.url
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    return context, page


def test_admin_page_in_chromium(server: str, admin_tokens: tuple[str, str], browser) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    admin, reader = admin_tokens
    context, page = sign_in(browser, server, admin)
    cookie = next(c for c in context.cookies() if c["name"] == "backroom_admin")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/admin"
    expect(page.locator("[data-role=access]")).to_have_text("admin")

    # counts change without a reload as jobs are enqueued (the page polls every 2 s)
    ready = page.locator('[data-queue="ml"][data-field="ready"]')
    expect(ready).to_have_text("0")
    for i in range(3):
        actors.broker.enqueue(ping.message(message=f"b{i}").copy(queue_name="ml"))
    expect(ready).to_have_text("3", timeout=10_000)
    job_id = make_dead("browser")
    expect(page.locator('[data-queue="default"][data-field="dead"]')).to_have_text("1", timeout=10_000)

    # requeue the dead job from the page; a real worker runs it to success
    with running_worker({"default"}):
        page.click("text=Dead letters")
        row = page.locator(f"tr:has(a[href='/admin/jobs/{job_id}'])")
        row.locator("input[name=ids]").check()
        page.click("[data-action=requeue-selected]")
        expect(page.locator(".flash")).to_contain_text("Requeued 1 dead letter(s) on default")
        reaches(job_id, JobStatus.SUCCEEDED)
    page.goto(f"{server}/admin/jobs/{job_id}")
    expect(page.locator("[data-field=status]")).to_have_text("succeeded")
    expect(page.locator(".timeline")).to_contain_text("requeued")
    context.close()

    # a read-only session sees no action buttons, and a forged action is refused
    other = make_dead("browser-ro")
    context, page = sign_in(browser, server, reader)
    expect(page.locator("[data-role=access]")).to_have_text("read-only")
    assert page.locator("button", has_text="Pause").count() == 0
    page.goto(f"{server}/admin/dead?queue=default")
    expect(page.locator("tbody")).to_contain_text("admin flaky failure")
    assert page.locator("button", has_text="Requeue").count() == 0 and page.locator("input[name=ids]").count() == 0
    csrf = page.locator("meta[name=csrf-token]").get_attribute("content")
    refused = page.request.post(f"{server}/admin/dead/default/requeue", form={"csrf_token": csrf, "ids": other})
    assert refused.status == 403
    assert actors.broker.jobs.get(other).status is JobStatus.DEAD
    context.close()
