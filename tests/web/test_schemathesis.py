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
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# bounded for 2 shared cores: a few minutes for the three tokens together
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
SEED = os.environ.get("SCHEMATHESIS_SEED", "16")  # fixed: the same cases every run; change it to explore
pytestmark = pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is missing: pip install -e '.[dev]'")


@pytest.fixture()
def server(redis_client, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """hypercorn serving the app on a free port; its base URL (schemathesis waits for the schema)."""
    port = free_port()
    # notifications go to the console outbox: with no provider configured they answer 503, rightly, but a 5xx
    # is what the run looks for
    env = {
        **os.environ,
        "LOG_LEVEL": "WARNING",
        "ADMIN_SESSION_SECRET": secrets.token_hex(32),
        "NOTIFY_FALLBACK": "console",
    }
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", "web.asgi:app", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)


def run_schemathesis(base: str, token: str, report: Path) -> tuple[int, str]:
    """One schemathesis run with `token` (exit code, console output); its NDJSON events land in `report`."""
    # schemathesis 4.32's link inference from response bodies crashes (its own urlsplit raises
    # "Invalid IPv6 URL") on any echoed string such as "http://x[": that one inference is off,
    # every phase and check stays on
    config = report.parent / "schemathesis.toml"
    # A template edit may use only the fields its template's senders provide: that depends on the
    # template named in the path, which no schema can state, so those two operations document a 422 for it
    config.write_text(
        '[phases.stateful.inference]\nalgorithms = ["dependency-analysis"]\n\n'
        '[[operations]]\ninclude-path-regex = "^/v1/admin/notification-templates/"\n'
        "checks.positive_data_acceptance.expected-statuses = "
        '["2xx", "401", "403", "404", "409", "422", "429"]\n\n'
        # A seed upload's body is an image: bytes the schema allows (any string) are rarely one,
        # so they are answered 422 (not decodable); another Content-Type is answered 415
        '[[operations]]\ninclude-path = "/v1/seeds/upload"\n'
        "checks.positive_data_acceptance.expected-statuses = "
        '["2xx", "401", "403", "415", "422", "429"]\n'
    )
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        MAX_EXAMPLES,
        "--seed",
        SEED,
        "--workers",
        "1",
        "--wait-for-schema",
        "60",
        "--request-timeout",
        "20",
        "--no-color",
        # Hypothesis' health checks judge how fast cases are generated, not the API: on 2 busy cores they trip
        "--suppress-health-check",
        "all",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    done = subprocess.run(command, cwd=report.parent, capture_output=True, text=True, timeout=900)
    return done.returncode, done.stdout + done.stderr


def scenarios(report: Path) -> list[dict]:
    """The recorders of every finished scenario (a case, or a stateful sequence) in the NDJSON event stream."""
    events = (json.loads(line) for line in report.read_text().splitlines())
    return [event["ScenarioFinished"].get("recorder") or {} for event in events if "ScenarioFinished" in event]


def failures_by_check(report: Path) -> Counter[str]:
    """How many cases failed each check."""
    return Counter(
        check["name"]
        for recorder in scenarios(report)
        for per_case in (recorder.get("checks") or {}).values()
        for check in per_case
        if check.get("status") == "failure"
    )


@pytest.mark.parametrize("who", ["admin", "reader", "jobs"])
def test_schemathesis_finds_no_failure(server: str, tokens: dict[str, str], who: str, tmp_path: Path) -> None:
    report = tmp_path / "events.ndjson"
    code, output = run_schemathesis(server, tokens[who], report)
    assert code == 0, f"{dict(failures_by_check(report))}\n{output[-30000:]}"
    with urllib.request.urlopen(f"{server}/openapi.json") as response:
        document = json.load(response)
    operations = {f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods}
    tried = {recorder["label"] for recorder in scenarios(report) if recorder.get("cases")}
    assert operations <= tried  # every operation was tried, none skipped for want of a schema
