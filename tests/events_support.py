"""Fixtures for the storefront events tests: fake storefronts, endpoints, fast retries, the npm verifier.

Test modules import the fixtures by name (`from tests.events_support import storefronts, ...`).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from db.events import insert_endpoint
from domain.events import Endpoint
from fakes.base import FakeRunner
from fakes.storefront import FakeStorefront, Received
from tests.orders_support import restore_env, set_env

# retries in tenths of a second, so "down for a while, then back" fits in a test
FAST_RETRIES = {"EVENTS_MIN_BACKOFF_MS": "100", "EVENTS_MAX_BACKOFF_MS": "400", "EVENTS_TIMEOUT_S": "2"}
NODE_VERIFY = """
const { Webhook } = require("standardwebhooks");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const payload = new Webhook(input.secret).verify(input.body, input.headers);
process.stdout.write(JSON.stringify(payload));
"""


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture()
def fast_retries() -> Iterator[None]:
    """Delivery retries after 0.1-0.4 s instead of 10 s-6 h."""
    saved = set_env(FAST_RETRIES)
    yield
    restore_env(saved)


@pytest.fixture()
def storefronts() -> Iterator[list[FakeStorefront]]:
    """Three fake storefronts on 127.0.0.1, each with a secret of its own."""
    fronts = [FakeStorefront(new_secret()) for _ in range(3)]
    runner = FakeRunner(*fronts).start()
    yield fronts
    runner.stop()


async def forget_backlog(conn: asyncpg.Connection) -> None:
    """No endpoint, and no event of earlier tests left to relay (it would reach this test's endpoint)."""
    await conn.execute("DELETE FROM storefront_endpoints")
    await conn.execute("UPDATE storefront_events SET relayed_at = now() WHERE relayed_at IS NULL")


async def add_endpoint(conn: asyncpg.Connection, front: FakeStorefront, *types: str) -> Endpoint:
    """Register a fake storefront as an endpoint (every type unless `types`); earlier endpoints are removed."""
    await forget_backlog(conn)
    endpoint = await insert_endpoint(
        conn, name=f"front-{secrets.token_hex(4)}", url=front.url, secret=front.secret, event_types=list(types)
    )
    assert endpoint is not None
    return endpoint


def item_events(front: FakeStorefront, item_id: int) -> list[dict[str, Any]]:
    """The events about one item that a storefront received, in arrival order."""
    return [e for e in front.events() if e["data"].get("resource") == "item" and e["data"]["id"] == item_id]


@pytest.fixture(scope="session")
def npm_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the npm `standardwebhooks` package installed and verify.js beside it."""
    root = tmp_path_factory.mktemp("npm-standardwebhooks")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", "standardwebhooks@1.1.1"],
        cwd=root,
        check=True,
        timeout=300,
        env={**os.environ, "npm_config_update_notifier": "false"},
    )
    (root / "verify.js").write_text(NODE_VERIFY)
    return root


def node_verify(root: Path, secret: str, received: Received) -> dict[str, Any]:
    """Verify one delivery with Node's standardwebhooks (raises CalledProcessError when it refuses)."""
    data = json.dumps({"secret": secret, "body": received.raw.decode(), "headers": received.headers})
    done = subprocess.run(
        ["node", "verify.js"], cwd=root, input=data, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)
