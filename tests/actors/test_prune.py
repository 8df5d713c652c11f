"""prune_listings / check_listing / record_listing_check with a real worker against the local marketplace."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

import actors
from actors.prune import check_listing, prune_listings, record_listing_check
from actors.prune_steps import politeness
from config.settings import get_settings
from db.listing_checks import select_checks
from domain.jobs import JobStatus
from fakes.marketplace import Marketplace
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect
from tests.waiting import eventually

SLOW_S = 4.0
TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def market() -> Iterator[Marketplace]:
    """The local marketplace, started once for this module."""
    market = Marketplace(seed=7, per_source=12, slow_s=SLOW_S).start()
    yield market
    market.stop()


@pytest.fixture()
def prune_settings(monkeypatch: pytest.MonkeyPatch, market: Marketplace) -> None:
    """Fast politeness for tests; every source checked server-side unless a test says otherwise."""
    market.reset()
    settings = get_settings()
    for name, value in {
        "prune_host_rate_per_s": 20.0,
        "prune_host_concurrency": 2,
        "prune_jitter": 0.1,
        "prune_timeout_s": TIMEOUT_S,
        "prune_edge_sources": "",
        "prune_recheck_minutes": 60.0,
        "prune_max_rechecks": 3,
    }.items():
        monkeypatch.setattr(settings, name, value)


@pytest.fixture()
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the database the worker writes."""
    conn = await connect(database_url)
    yield conn
    await conn.close()


async def put_listing(conn: asyncpg.Connection, market: Marketplace, source: str, index: int, state: str) -> int:
    """An available item for one marketplace listing, put into `state` on the marketplace; returns the item id."""
    listing = market.listings(source)[index]
    market.set_state(source, listing.id, state)
    await conn.execute(
        "DELETE FROM listing_checks WHERE item_id IN (SELECT id FROM items WHERE source = $1 AND"
        " source_listing_id = $2)",
        source,
        str(listing.id),
    )
    return await conn.fetchval(
        """
        INSERT INTO items (source, source_listing_id, source_url, title, kind, status)
        VALUES ($1, $2, $3, $4, 'one_of_one', 'available')
        ON CONFLICT (source, source_listing_id) DO UPDATE SET status = 'available', source_url = EXCLUDED.source_url,
            last_checked_at = NULL, last_check_outcome = NULL, check_unknown_streak = 0, next_check_at = NULL
        RETURNING id
        """,
        source,
        str(listing.id),
        market.url_of(listing),
        listing.title,
    )


async def all_checked(conn: asyncpg.Connection, ids: list[int], *, timeout: float = 40.0) -> None:
    """Wait until every item has a stored check."""

    async def done() -> bool:
        return await conn.fetchval(
            "SELECT count(*) FROM items WHERE id = ANY($1) AND last_checked_at IS NOT NULL", ids
        ) == len(ids)

    await eventually(done, timeout=timeout, what="every item checked")


EXPECTED = {  # marketplace state -> (item status, check outcome, http status, a marker kind that must be there)
    "available": ("available", "available", 200, "listed:"),
    "sold": ("sold", "sold", 200, "sold:"),
    "removed": ("archived", "archived", 404, "removed:"),
    "blocked": ("available", "unknown", 403, "challenge:"),
    "slow": ("available", "unknown", None, None),
}


async def test_each_state_ends_in_the_right_item_status_with_evidence(
    market, prune_settings, worker, conn, redis_client
) -> None:
    items = {
        (source, state): await put_listing(conn, market, source, i, state)
        for source in ("vinted", "grailed", "shop")
        for i, state in enumerate(EXPECTED)
    }
    job = prune_listings.send()
    result = wait_for_status(job.message_id, JobStatus.SUCCEEDED).result
    assert result["items"] >= len(items)
    await all_checked(conn, list(items.values()))
    for (source, state), item_id in items.items():
        status, outcome, http_status, marker = EXPECTED[state]
        row = await conn.fetchrow(
            "SELECT status, last_check_outcome, check_unknown_streak, next_check_at FROM items WHERE id = $1", item_id
        )
        [check] = await select_checks(conn, item_id)
        where = f"{source}/{state}: {check}"
        assert row["status"] == status and check.outcome == outcome and row["last_check_outcome"] == outcome, where
        assert check.http_status == http_status and check.via == "server", where
        assert marker is None or any(m.startswith(marker) for m in check.markers), where
        assert check.applied == (status != "available") and check.status_before == "available", where
        if outcome == "unknown":  # unchanged, and checked again later rather than hammered now
            assert row["check_unknown_streak"] == 1 and row["next_check_at"] is not None, where
        if state == "slow":
            assert check.error == f"timeout after {TIMEOUT_S:g} s", where


async def test_an_unknown_is_rechecked_later_with_a_growing_delay(market, prune_settings, worker, conn) -> None:
    item_id = await put_listing(conn, market, "shop", 0, "blocked")
    first = wait_for_status(check_listing.send(item_id).message_id, JobStatus.SUCCEEDED).result
    assert first["outcome"] == "unknown" and first["status"] == "available"
    assert 3_600_000 <= first["recheck_in_ms"] <= 3_600_000 * 1.1
    second = wait_for_status(check_listing.send(item_id).message_id, JobStatus.SUCCEEDED).result
    assert 7_200_000 <= second["recheck_in_ms"] <= 7_200_000 * 1.1
    recheck = actors.broker.client.get(f"{actors.broker.namespace}:unique:recheck_listing:{item_id}:2")
    assert recheck is not None  # the later recheck waits as a delayed job, deduplicated by its key
    delayed = actors.broker.jobs.get(recheck.decode())
    assert delayed is not None and delayed.status == JobStatus.DELAYED
    # the fan-out leaves an item with a recheck pending alone
    assert await conn.fetchval("SELECT next_check_at > now() FROM items WHERE id = $1", item_id)


async def test_a_429_holds_the_whole_host_back_for_its_retry_after(market, prune_settings, worker, conn) -> None:
    item_id = await put_listing(conn, market, "grailed", 0, "available")
    market.rate_limit("grailed", retry_after=30)
    result = wait_for_status(check_listing.send(item_id).message_id, JobStatus.SUCCEEDED).result
    assert result["outcome"] == "unknown" and result["status"] == "available"
    [check] = await select_checks(conn, item_id)
    assert check.http_status == 429
    host = market.grailed_url.split("//", 1)[1]
    slot = politeness().acquire(host, "probe", lease_ms=1_000)
    assert not slot.granted and slot.wait_ms > 20_000


async def test_each_host_sees_the_rate_and_in_flight_limits(market, prune_settings, worker, conn, monkeypatch) -> None:
    started = time.monotonic()  # slow answers of earlier tests land in the log late: only count ours
    monkeypatch.setattr(get_settings(), "prune_host_rate_per_s", 4.0)
    fast = [await put_listing(conn, market, "shop", i, "available") for i in range(6)]
    slow = [await put_listing(conn, market, "grailed", i, "slow") for i in range(4)]
    for item_id in slow + fast:
        check_listing.send(item_id)
    await all_checked(conn, fast + slow, timeout=60)
    shop = sorted(r.at for r in market.requests("shop") if r.path.startswith("/products/") and r.at >= started)
    gaps = [b - a for a, b in zip(shop, shop[1:])]
    assert len(shop) == 6 and min(gaps) >= 0.25 * 0.8  # 4/s: 250 ms apart (less a little network skew)

    def ours() -> list[float]:
        return sorted(r.at for r in market.requests("grailed") if r.at >= started)

    await eventually(lambda: asyncio.sleep(0, len(ours()) == 4), timeout=SLOW_S + 5, what="slow answers logged")
    arrivals = ours()
    # each slow check holds its slot for the 1 s timeout, 2 in flight: no three arrivals fit in one timeout
    # (at 4/s alone they would be 0.5 s apart)
    assert all(c - a >= TIMEOUT_S * 0.8 for a, c in zip(arrivals, arrivals[2:]))


async def test_an_edge_outcome_applies_only_with_proof_and_once(market, prune_settings, worker, conn) -> None:
    item_id = await put_listing(conn, market, "vinted", 0, "available")
    unproven = {
        "check_id": "edge:test-1",
        "source": "vinted",
        "http_status": 403,
        "final_url": None,
        "markers": ["challenge:just-a-moment"],
        "error": None,
    }
    result = wait_for_status(
        record_listing_check.send(item_id, "archived", unproven).message_id, JobStatus.SUCCEEDED
    ).result
    assert result["outcome"] == "unknown" and result["status"] == "available"
    proven = {
        "check_id": "edge:test-2",
        "source": "vinted",
        "http_status": 200,
        "final_url": "x",
        "markers": ["sold:vinted-item-status--sold"],
        "error": None,
    }
    for _ in range(2):  # a redelivery of the same check changes nothing more
        wait_for_status(record_listing_check.send(item_id, "sold", proven).message_id, JobStatus.SUCCEEDED)
    checks = await select_checks(conn, item_id)
    assert [(c.check_id, c.outcome, c.via, c.applied) for c in checks] == [
        ("edge:test-2", "sold", "edge", True),
        ("edge:test-1", "unknown", "edge", False),
    ]
    assert await conn.fetchval("SELECT status FROM items WHERE id = $1", item_id) == "sold"


async def test_a_source_for_the_edge_without_a_live_edge_node_is_unknown(
    market, prune_settings, worker, conn, monkeypatch
) -> None:
    monkeypatch.setattr(get_settings(), "prune_edge_sources", "vinted")
    item_id = await put_listing(conn, market, "vinted", 1, "sold")
    result = wait_for_status(check_listing.send(item_id).message_id, JobStatus.SUCCEEDED).result
    assert result["outcome"] == "unknown" and result["status"] == "available"
    [check] = await select_checks(conn, item_id)
    assert "edge" in (check.error or "") and check.http_status is None
    assert not market.requests("vinted")  # the server never fetched a source that blocks datacenter IPs
