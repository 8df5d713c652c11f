"""The Procfile's web and worker processes started for real under honcho."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from cli.stack import free_port
from db.tokens import insert_token
from domain.tokens import display_prefix, hash_token, make_token
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture()
async def token(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        value = make_token(secrets.token_hex(32))
        await insert_token(
            conn,
            name=f"e2e-{secrets.token_hex(3)}",
            token_hash=hash_token(value),
            prefix=display_prefix(value),
            scopes=["jobs"],
        )
        return value
    finally:
        await conn.close()


@pytest.fixture()
def stack(redis_client, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    port = free_port()
    log = (tmp_path / "honcho.log").open("wb")  # a file, not a pipe nobody reads (honcho would block)
    env = {
        **os.environ,
        "API_PORT": str(port),
        "WORKER_PROCESSES": "1",
        "WORKER_THREADS": "2",
        "LOG_LEVEL": "WARNING",
        # the Procfile names console scripts: find this interpreter's (make test does not activate the venv)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", "Procfile", "start", "web", "worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    return response.status == 200
            except (urllib.error.URLError, ConnectionError):
                return False

        wait_until(healthy, 60, "the web process to be healthy", interval=0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError("honcho did not stop its processes within 30 s") from None
        finally:
            log.close()


def wait_job(base: str, token: str, job_id: str, status: str, timeout: float = 60) -> dict:

    def reached() -> dict | None:
        _, record = call("GET", f"{base}/v1/jobs/{job_id}", token)
        return record if record.get("status") == status and (status != "dead" or record.get("traceback")) else None

    return wait_until(reached, timeout, f"job {job_id} to become {status}", interval=0.1)


def test_posted_job_succeeds_and_failing_job_goes_dead(stack: str, token: str, redis_client) -> None:
    code, accepted = call("POST", f"{stack}/v1/jobs/ping", token, {"message": "e2e"})
    assert code == 202
    done = wait_job(stack, token, accepted["job_id"], "succeeded")
    assert done["result"] == {"message": "e2e"} and done["attempts"] == 1

    code, failing = call("POST", f"{stack}/v1/jobs/ping", token, {"message": "bad", "fail": True})
    assert code == 202
    dead = wait_job(stack, token, failing["job_id"], "dead")
    assert dead["attempts"] == 3 and dead["last_error"] == "PingFailed: ping asked to fail: bad"
    assert redis_client.zcard("backroom:default.XQ") == 1
