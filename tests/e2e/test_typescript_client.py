"""The TypeScript client, run with Node against the Procfile's processes: its types are current, it enqueues."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_procfile import stack, token  # noqa: F401

pytestmark = pytest.mark.e2e
CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of clients/typescript with its npm packages installed from package-lock.json."""
    root = tmp_path_factory.mktemp("ts-client") / "typescript"
    shutil.copytree(CLIENT, root, ignore=shutil.ignore_patterns("node_modules"))
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=root, check=True, timeout=300)
    return root


def test_the_generated_types_are_what_openapi_typescript_makes_of_the_spec(installed: Path) -> None:
    subprocess.run(["npx", "--no-install", "openapi-typescript", "openapi.json", "-o", "fresh.d.ts"], cwd=installed,
                   check=True, timeout=120, capture_output=True)
    assert (installed / "fresh.d.ts").read_text() == (CLIENT / "src" / "schema.d.ts").read_text()


def test_the_client_enqueues_a_job_and_reads_its_record(installed: Path, stack: str, token: str) -> None:
    done = subprocess.run(["node", "examples/enqueue.mjs"], cwd=installed, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BACKROOM_URL": stack, "BACKROOM_TOKEN": token}, check=False)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded" and record["actor"] == "ping"
