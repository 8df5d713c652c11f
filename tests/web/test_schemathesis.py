"""The served OpenAPI document as a contract: schemathesis (all phases, all checks) finds no failure.

hypercorn serves the app on a free port, with the suite's Redis and Postgres behind it; the
schemathesis CLI reads /openapi.json and tries every operation with an admin, a read-only
(`admin:read`) and a `jobs` token. No worker runs: what is enqueued just waits in Redis.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# bounded for 2 shared cores: a few minutes for the three tokens together
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "12")
SEED = os.environ.get("SCHEMATHESIS_SEED", "16")  # fixed: the same cases every run; change it to explore
pytestmark = pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is missing: pip install -e '.[dev]'")


@pytest.fixture()
def server(redis_client, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """hypercorn serving the app on a free port; its base URL (schemathesis waits for the schema)."""
    port = free_port()
    # notifications go to the console outbox: with no provider configured they answer 503, rightly, but a 5xx
    # is what the run looks for
    env = {**os.environ, "LOG_LEVEL": "WARNING", "ADMIN_SESSION_SECRET": secrets.token_hex(32),
           "NOTIFY_FALLBACK": "console"}
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "hypercorn", "web.asgi:app", "--bind", f"127.0.0.1:{port}"],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def run_schemathesis(base: str, token: str, report: Path) -> tuple[int, str]:
    """One schemathesis run with `token` (exit code, console output); its NDJSON events land in `report`."""
    command = [
        str(SCHEMATHESIS), "run", f"{base}/openapi.json", "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", MAX_EXAMPLES, "--seed", SEED,
        "--workers", "1", "--wait-for-schema", "60", "--request-timeout", "20", "--no-color",
        "--header", f"Authorization: Bearer {token}", "--report", "ndjson", "--report-ndjson-path", str(report),
    ]
    done = subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def failures_by_check(report: Path) -> Counter[str]:
    """How many distinct failures each check found (from the NDJSON event stream)."""
    counts: Counter[str] = Counter()
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for name, payload in event.items():
            if name == "ScenarioFinished":
                for check in _checks(payload):
                    if check.get("status") == "failure":
                        counts[check["name"]] += 1
    return counts


def _checks(payload: dict) -> list[dict]:
    recorder = payload.get("recorder") or {}
    return [check for per_case in (recorder.get("checks") or {}).values() for check in per_case]


@pytest.mark.parametrize("who", ["admin", "reader", "jobs"])
def test_schemathesis_finds_no_failure(server: str, tokens: dict[str, str], who: str, tmp_path: Path) -> None:
    report = tmp_path / "events.ndjson"
    code, output = run_schemathesis(server, tokens[who], report)
    assert code == 0, f"{dict(failures_by_check(report))}\n{output[-30000:]}"
