"""The TypeScript client and the Next.js route example, run with Node against the Procfile's processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_procfile import stack, token  # noqa: F401
from tests.events_support import forget_backlog
from tests.waiting import wait_until

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
    subprocess.run(
        ["npx", "--no-install", "openapi-typescript", "openapi.json", "-o", "fresh.d.ts"],
        cwd=installed,
        check=True,
        timeout=120,
        capture_output=True,
    )
    assert (installed / "fresh.d.ts").read_text() == (CLIENT / "src" / "schema.d.ts").read_text()


def test_the_client_enqueues_a_job_and_reads_its_record(installed: Path, stack: str, token: str) -> None:
    done = subprocess.run(
        ["node", "examples/enqueue.mjs"],
        cwd=installed,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "BACKROOM_URL": stack, "BACKROOM_TOKEN": token},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "succeeded" and record["actor"] == "ping"


def test_the_nextjs_route_verifies_a_delivery_and_revalidates_the_product(
    installed: Path, stack: str, database_url: str
) -> None:
    import asyncio
    import urllib.request

    import asyncpg

    from cli.stack import free_port
    from domain.events import new_secret

    secret, port = new_secret(os.urandom(32)), free_port()
    node = subprocess.Popen(
        ["node", "examples/serve-route.mjs"],
        cwd=installed,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PORT": str(port), "BACKROOM_WEBHOOK_SECRET": secret},
    )
    try:
        assert node.stdout is not None and node.stdout.readline().strip() == "listening"

        async def change() -> int:
            conn = await asyncpg.connect(database_url)
            try:
                await forget_backlog(conn)
                await conn.execute(
                    "INSERT INTO storefront_endpoints (name, url, secret, event_types)"
                    " VALUES ('next', $1, $2, '{item.sold}')",
                    f"http://127.0.0.1:{port}/",
                    secret,
                )
                item = await conn.fetchval(
                    "INSERT INTO items (source, source_listing_id, title, kind, status)"
                    " VALUES ('e2e', md5(random()::text), 'Tabi', 'one_of_one', 'available')"
                    " RETURNING id"
                )
                await conn.execute("UPDATE items SET status = 'sold' WHERE id = $1", item)
                return int(item)
            finally:
                await conn.close()

        def revalidated() -> list[str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/tags", timeout=5) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]

        item = asyncio.run(change())
        tags = wait_until(lambda: revalidated() or None, timeout=60, what="revalidateTag called")
        assert tags == [f"product:{item}", "products"]
    finally:
        node.terminate()
        node.wait(timeout=10)
