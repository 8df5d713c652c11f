"""Scrape to items for real: the API enqueues, an edge worker (with its own ACL credential) drives Chromium against
the local marketplace, the server pool's edge gateway checks its signed results, the pool ingests, rehosts and
embeds, and Postgres ends up with the items (issue 5's "Done when")."""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis
from PIL import Image

import actors
from actors.collections import generate_collections
from admin.schedules import change_source
from broker.edge_registry import live_edge_nodes
from cli.edge import create_edge_credentials
from db.schedules import delete_schedule_config, select_stored_config, upsert_schedule_config
from db.tokens import insert_token
from domain.tokens import display_prefix, hash_token, make_token
from fakes.marketplace import Marketplace
from fakes.marketplace.data import CURRENCY, FakeListing
from media.store import LocalMediaStore
from ml.clip import model_id
from ml.manifest import TINY_MODEL_DIR, read_manifest
from tests.edge.scrape_support import expected
from tests.e2e.worker_processes import Process, Stack, until
from tests.waiting import wait_until
from web.app import create_app

pytestmark = pytest.mark.e2e
QUERIES = {"vinted": "jacket", "grailed": "hoodie", "shop": "fleece"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Marketplace + `backroom worker --edge` (real Chromium) + `backroom worker` (server queues), suite's Redis."""
    tmp = tmp_path_factory.mktemp("scrape-e2e")
    admin = redis.Redis.from_url(os.environ["REDIS_URL"])
    admin.flushdb()
    url = redis.connection.parse_url(os.environ["REDIS_URL"])
    # the node holds only its own least-privilege credential; its results reach ingest through the gateway
    creds = create_edge_credentials(admin, "backroom", "e2e-pi", host=url["host"], port=url["port"])
    market = Marketplace(seed=11, per_source=30, slow_s=30.0).start()
    quiet = {"LOG_LEVEL": "WARNING", "LOG_FORMAT": "console", "METRICS_PORT": "0"}
    edge = Process(
        ["--edge", "-p", "1", "-t", "2"],
        {
            **quiet,
            **market.env(),
            "REDIS_URL": creds.redis_url,
            "EDGE_NODE_ID": "e2e-pi",
            "EDGE_HEARTBEAT_S": "0.5",
            "EDGE_OUTBOX_PATH": str(tmp / "outbox.sqlite3"),
            "EDGE_PAGE_TIMEOUT_MS": "30000",
        },
        tmp / "edge.log",
    )
    server = Process(
        ["-p", "1", "-t", "4"],
        {**quiet, "MEDIA_DIR": str(tmp / "media"), "MODEL_DIR": "", "ML_THREADS": "1", "AUTO_APPROVE_GREEN": "true"},
        tmp / "server.log",
    )
    built = Stack(market, edge, server, LocalMediaStore(tmp / "media"))
    try:
        wait_until(
            lambda: live_edge_nodes(actors.broker.client, actors.broker.jobs.keys, ttl_s=30),
            120,
            "the edge worker's heartbeat",
            interval=0.2,
            detail=built.logs,
        )
        yield built
    finally:
        edge.stop()
        server.stop()
        market.stop()
        admin.execute_command("ACL", "DELUSER", creds.user)


@pytest.fixture(scope="session")
async def client() -> AsyncIterator[Any]:
    """The API under Quart's test client (its DB pool open; closing it closes the shared broker, so at the end)."""
    app = create_app()
    async with app.test_app() as test_app:
        yield test_app.test_client()


@pytest.fixture(scope="module")
async def headers(database_url: str) -> dict[str, str]:
    """A bearer token with the `jobs` scope."""
    conn = await asyncpg.connect(database_url)
    try:
        value = make_token(secrets.token_hex(32))
        await insert_token(
            conn,
            name=f"e2e-scrape-{secrets.token_hex(3)}",
            token_hash=hash_token(value),
            prefix=display_prefix(value),
            scopes=["jobs"],
        )
    finally:
        await conn.close()
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture(scope="module", autouse=True)
async def sources_configured(database_url: str) -> AsyncIterator[None]:
    """The scraped sources configured, as an admin would (the API refuses others); as they were afterwards."""
    conn = await asyncpg.connect(database_url)
    try:
        stored = await select_stored_config(conn)
        for source in QUERIES:
            await change_source(conn, source, by="e2e")
        yield
        if "sources" in stored:
            await upsert_schedule_config(conn, "sources", stored["sources"], by="e2e")
        else:
            await delete_schedule_config(conn, "sources")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the suite's database (the one the server workers write)."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def scrape_everything(client: Any, headers: dict[str, str], stack: Stack) -> dict[str, dict[str, Any]]:
    """POST /v1/jobs/scrape per source, then wait until each job record says succeeded; the records by source."""
    job_ids = {}
    for source, query in QUERIES.items():
        response = await client.post(
            "/v1/jobs/scrape", json={"source": source, "query": query, "limit": 40}, headers=headers
        )
        assert response.status_code == 202, await response.get_data(as_text=True)
        job_ids[source] = (await response.get_json())["job_id"]

    async def record(job_id: str) -> dict[str, Any] | None:
        found = await (await client.get(f"/v1/jobs/{job_id}", headers=headers)).get_json()
        assert found.get("status") not in ("dead", "cancelled"), f"{found}\n{stack.logs()}"
        return found if found.get("status") == "succeeded" else None

    return {s: await until(lambda j=j: record(j), f"the {s} scrape succeeds", stack) for s, j in job_ids.items()}


async def rows_of(db: asyncpg.Pool, source: str, ids: set[str]) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM items WHERE source = $1 AND source_listing_id = ANY($2::text[]) ORDER BY id", source, sorted(ids)
    )


def fakes_of(market: Marketplace, source: str) -> dict[str, FakeListing]:
    """The marketplace's listings the source's query should find, by listing id."""
    return {i: market.find(source, int(i)) for i in expected(market, source, QUERIES[source])}  # type: ignore[misc]


async def settled(db: asyncpg.Pool, market: Marketplace, stack: Stack) -> dict[str, list[asyncpg.Record]]:
    """Every expected listing of every source is an item, rehosted and embedded."""

    async def probe(source: str) -> list[asyncpg.Record] | None:
        ids = set(fakes_of(market, source))
        rows = await rows_of(db, source, ids)
        done = len(rows) == len(ids) and all(r["embedded_at"] and r["rehosted_at"] for r in rows)
        return rows if done else None

    return {s: await until(lambda s=s: probe(s), f"the {s} items are rehosted and embedded", stack) for s in QUERIES}


@pytest.fixture(scope="module")
async def scraped(stack: Stack, client: Any, headers: dict[str, str], db: asyncpg.Pool) -> dict[str, Any]:
    """The first scrape of every source, settled: job records and item rows by source."""
    for source in QUERIES:
        assert fakes_of(stack.market, source), f"the query for {source} finds nothing in the marketplace"
    records = await scrape_everything(client, headers, stack)
    return {"records": records, "rows": await settled(db, stack.market, stack)}


def asking_cents(fake: FakeListing) -> int:
    """The asking price the source shows (grailed prices are whole dollars)."""
    return fake.price_cents // 100 * 100 if fake.source == "grailed" else fake.price_cents


def assert_clean_image(data: bytes) -> None:
    """A decodable JPEG carrying no EXIF at all (so no GPS, no camera)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "JPEG" and image.size[0] > 0 and not image.getexif()
    assert b"FakeCam" not in data and b"Exif" not in data[:4096]


async def test_scraped_listings_become_items_with_clean_rehosted_images_and_embeddings(
    stack: Stack, scraped: dict[str, Any]
) -> None:
    tiny_model = model_id(read_manifest(TINY_MODEL_DIR), "fp32")
    for source, record in scraped["records"].items():
        assert record["result"]["listings"] == len(fakes_of(stack.market, source)) and record["attempts"] == 1
    for source, rows in scraped["rows"].items():
        fakes = fakes_of(stack.market, source)
        assert {r["source_listing_id"] for r in rows} == set(fakes)
        for row in rows:
            fake = fakes[row["source_listing_id"]]
            assert (row["title"], row["brand"], row["condition"]) == (fake.title, fake.brand, fake.site_condition())
            assert row["size"].casefold() == fake.size.casefold(), source  # grailed writes sizes lower-case
            assert (row["cost_cents"], row["currency"]) == (asking_cents(fake), CURRENCY[source])
            assert row["source_url"] == stack.market.url_of(fake) and row["kind"] == "one_of_one"
            assert row["status"] == ("available" if row["verdict"] == "green" else "pending"), dict(row)
            assert row["price_cents"] and row["price_cents"] > row["cost_cents"]  # our resale price, not theirs
            # the search answer names the cover (vinted) or every photo (grailed, shop): one media key each
            paths = [urlsplit(u).path for u in row["image_urls"]]
            assert paths and paths == [f"/images/{p}.jpg" for p in fake.photos][: len(paths)]
            assert len(row["media_keys"]) == len(row["image_urls"]) and row["rehost_error"] is None
            assert row["rehosted_urls"] == row["image_urls"]
            for key in row["media_keys"]:
                assert_clean_image(stack.media.get(key))
            assert row["embedding"] is not None and (row["embedding_model"], row["embed_error"]) == (tiny_model, None)
    statuses = {r["status"] for rows in scraped["rows"].values() for r in rows}
    assert "available" in statuses, "AUTO_APPROVE_GREEN put no green item live"
    wanted = {urlsplit(u).path for rows in scraped["rows"].values() for r in rows for u in r["image_urls"]}
    fetched = {r.path for h in ("vinted", "grailed", "shop") for r in stack.market.requests(h)}
    assert wanted <= fetched, "every image was downloaded from the marketplace by the server"
    assert any(len(r["media_keys"]) > 1 for rows in scraped["rows"].values() for r in rows)


async def test_a_second_scrape_of_the_same_queries_updates_and_does_not_duplicate(
    stack: Stack, scraped: dict[str, Any], client: Any, headers: dict[str, str], db: asyncpg.Pool
) -> None:
    before = {s: {r["source_listing_id"]: r for r in rows} for s, rows in scraped["rows"].items()}
    counts = {s: await db.fetchval("SELECT count(*) FROM items WHERE source = $1", s) for s in QUERIES}
    repriced: dict[str, tuple[str, int]] = {}
    with stack.market.lock:
        for source in QUERIES:
            listing_id = sorted(before[source])[0]
            fake = stack.market.find(source, int(listing_id))
            assert fake is not None
            fake.price_cents += 1_000  # the seller asks ten more: the update is visible
            repriced[source] = (listing_id, asking_cents(fake))
    await scrape_everything(client, headers, stack)

    async def updated() -> bool:
        rows = [
            await db.fetchrow("SELECT cost_cents FROM items WHERE source = $1 AND source_listing_id = $2", s, i)
            for s, (i, _) in repriced.items()
        ]
        return all(r["cost_cents"] == p for r, (_, p) in zip(rows, repriced.values()))

    await until(updated, "the second scrape's new prices reach the items", stack)
    after = await settled(db, stack.market, stack)
    for source, rows in after.items():
        assert await db.fetchval("SELECT count(*) FROM items WHERE source = $1", source) == counts[source]
        assert {r["source_listing_id"]: r["id"] for r in rows} == {i: r["id"] for i, r in before[source].items()}
        for row in rows:  # the same images: nothing re-downloaded into new keys
            assert row["media_keys"] == before[source][row["source_listing_id"]]["media_keys"]


def market_traces(market: Marketplace, rows: list[asyncpg.Record]) -> list[str]:
    """Strings that would betray the marketplace: its hosts, its image names, the items' source URLs."""
    hosts = [urlsplit(h.base_url).netloc for h in market.hosts.values()]
    return hosts + [r["source_url"] for r in rows] + [u for r in rows for u in r["image_urls"]]


async def test_public_responses_never_show_the_marketplace(
    stack: Stack, scraped: dict[str, Any], client: Any, headers: dict[str, str], db: asyncpg.Pool
) -> None:
    rows = [r for rows in scraped["rows"].values() for r in rows]
    traces = market_traces(stack.market, rows)
    bodies: list[str] = []

    async def get(path: str) -> Any:
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, (path, await response.get_data(as_text=True))
        bodies.append(await response.get_data(as_text=True))
        return json.loads(bodies[-1])

    ours = {r["id"] for r in rows if r["status"] == "available"}
    live = await db.fetchval(
        "SELECT count(*) FROM items WHERE status = 'available' AND embedding_model = $1", rows[0]["embedding_model"]
    )
    for source in QUERIES:
        item = next(r for r in scraped["rows"][source] if r["status"] == "available")
        similar = {i["id"]: i for i in (await get(f"/v1/items/{item['id']}/similar?limit=50"))["items"]}
        assert len(similar) == min(50, live - 1)
        # ours carry their re-hosted images (other tests' rows in a full run may have none)
        assert all(similar[i]["media_keys"] for i in ours & similar.keys())
        if live <= 51:  # then every other live item is among them (other tests' items may crowd a full run)
            assert ours - {item["id"]} <= set(similar)
    for record in scraped["records"].values():
        await get(f"/v1/jobs/{record['job_id']}")
    generate_collections.send("scrape-e2e")
    surface = await until(lambda: get_collections(client, headers), "collections are generated", stack)
    bodies.append(json.dumps(surface))
    assert surface["collections"] and all(c["items"] for c in surface["collections"])
    await get(f"/v1/collections/{surface['collections'][0]['id']}")
    keys = [k for r in rows if r["status"] == "available" for k in r["media_keys"]]
    assert any(k in body for k in keys for body in bodies), "the responses show our items (by their media keys)"
    for body in bodies:
        leaked = [t for t in traces if t in body]
        assert not leaked, f"a public response shows {leaked[:3]}"


async def get_collections(client: Any, headers: dict[str, str]) -> dict[str, Any] | None:
    response = await client.get("/v1/collections?surface=scrape-e2e", headers=headers)
    assert response.status_code == 200
    body = await response.get_json()
    return body if body["generation"] else None
