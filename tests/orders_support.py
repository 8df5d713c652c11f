"""Fixtures and helpers for the order and notification tests: the fakes, items, waiting on rows.

Test modules import the fixtures by name (`from tests.orders_support import fakes, fake`).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

from config.settings import reset_settings
from fakes import Fakes

# fast enough for tests: limits stay on, but do not throttle a 100-order burst
TEST_ENV = {
    "NOTIFY_FALLBACK": "none",
    "PROVIDER_TIMEOUT_S": "1.5",
    "ADMIN_EMAIL": "admin@example.com",
    "RESEND_RATE_PER_S": "500",
    "PUSHOVER_RATE_PER_S": "500",
    "TELEGRAM_RATE_PER_S": "500",
    "PRINTIFY_RATE_PER_MIN": "60000",
    "PRINTIFY_CATALOG_RATE_PER_MIN": "600",
    "STRIPE_RATE_PER_S": "500",
    "HOLD_MINUTES": "15",
}


def set_env(values: dict[str, str]) -> dict[str, str | None]:
    """Set environment variables and re-read the settings; returns what to restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    reset_settings()
    return saved


def restore_env(saved: dict[str, str | None]) -> None:
    """Undo `set_env`."""
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_settings()


@pytest.fixture(scope="session")
def fakes() -> Iterator[Fakes]:
    """Every fake provider on 127.0.0.1, and the settings pointing at them for this session."""
    started = Fakes().start()
    saved = set_env({**started.env(), **TEST_ENV})
    yield started
    restore_env(saved)
    started.stop()


@pytest.fixture()
def fake(fakes: Fakes) -> Fakes:
    """The fakes, reset (no calls, no faults, no state) for this test."""
    fakes.reset()
    return fakes


@pytest.fixture()
def hold() -> Iterator[Callable[[float], None]]:
    """Set HOLD_MINUTES for this test (the actors read it per order)."""
    saved: list[dict[str, str | None]] = []

    def set_hold(minutes: float) -> None:
        saved.append(set_env({"HOLD_MINUTES": f"{minutes}"}))

    yield set_hold
    for entry in reversed(saved):
        restore_env(entry)


async def connect(database_url: str) -> asyncpg.Connection:
    """A plain connection to the test database."""
    return await asyncpg.connect(database_url)


async def insert_item(
    conn: asyncpg.Connection,
    kind: str,
    *,
    stock: int | None = None,
    price_cents: int = 5000,
    title: str = "Piece",
    source_url: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> int:
    """An available item of `kind` (one_of_one, stable, print_on_demand)."""
    return await conn.fetchval(
        """
        INSERT INTO items (source, source_listing_id, source_url, title, kind, stock, status, price_cents, currency,
                           attributes)
        VALUES ('test', $1, $2, $3, $4, $5, 'available', $6, 'EUR', $7) RETURNING id
        """,
        secrets.token_hex(8),
        source_url,
        title,
        kind,
        stock,
        price_cents,
        json.dumps(attributes or {}),
    )


def pod_attributes() -> dict[str, Any]:
    """Printify product and variant ids of a print-on-demand item."""
    return {"printify_product_id": "5bfd0b66a342bcc9b5563216", "printify_variant_id": 17887}


async def order_of(conn: asyncpg.Connection, session_id: str) -> asyncpg.Record | None:
    """The order row of a Checkout Session."""
    return await conn.fetchrow("SELECT * FROM orders WHERE stripe_session_id = $1", session_id)
