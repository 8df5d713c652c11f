"""The nightly catalog sync: every page once, prices onto items, resumed where a run stopped."""

from __future__ import annotations

from actors.provider_catalog import sync_catalog
from config.settings import Settings, get_settings
from domain.jobs import JobStatus
from providers.registry import limits
from tests.actors.helpers import wait_for_status
from tests.orders_support import connect, fake, fakes, insert_item  # noqa: F401
from tests.waiting import eventually


def test_the_catalog_sync_has_its_own_two_a_minute_budget(fakes) -> None:  # type: ignore[no-untyped-def]
    assert Settings.model_fields["printify_catalog_rate_per_min"].default == 2.0
    limit = limits(get_settings())["printify_catalog"]
    assert limit.rate == get_settings().printify_catalog_rate_per_min / 60 and limit.burst == 1


async def test_every_page_once_prices_onto_items_and_a_failed_page_resumes(fake, worker, database_url) -> None:
    conn = await connect(database_url)
    try:
        await conn.execute("UPDATE catalog_syncs SET finished_at = now() WHERE finished_at IS NULL")
        ids = [fake.printify.add_product(f"Tee {n}", [(100 + n, 2000 + n), (200 + n, 2500 + n)]) for n in range(5)]
        item = await insert_item(
            conn,
            "print_on_demand",
            price_cents=1,
            attributes={"printify_product_id": ids[4], "printify_variant_id": 204},
        )
        fake.printify.fail_next("products", 503, times=2)  # page 1 fails twice, then the run goes on
        run = wait_for_status(sync_catalog.send(page_size=2).message_id, JobStatus.SUCCEEDED).result
        await eventually(
            lambda: conn.fetchval("SELECT finished_at FROM catalog_syncs WHERE id = $1", run["sync_id"]),
            timeout=60,
            what="the run finished",
        )
        assert fake.printify.calls["products"] == 2 + 3  # two failures, then pages 1-3 once each
        assert await conn.fetchval("SELECT count(*) FROM provider_catalog WHERE product_id = ANY($1)", ids) == 10
        assert await conn.fetchval("SELECT price_cents FROM items WHERE id = $1", item) == 2504
        assert await conn.fetchval("SELECT variants FROM catalog_syncs WHERE id = $1", run["sync_id"]) == 10
        # a run that stopped after page 1 (its worker killed) is resumed from page 2, not started again
        stopped = await conn.fetchval(
            "INSERT INTO catalog_syncs (provider, page_size, next_page) VALUES ('printify', 2, 2) RETURNING id"
        )
        fake.printify.calls.clear()
        resumed = wait_for_status(sync_catalog.send(page_size=2).message_id, JobStatus.SUCCEEDED).result
        assert resumed == {"sync_id": stopped, "from_page": 2}
        await eventually(
            lambda: conn.fetchval("SELECT finished_at FROM catalog_syncs WHERE id = $1", stopped),
            timeout=60,
            what="the resumed run finished",
        )
        assert fake.printify.calls["products"] == 2
    finally:
        await conn.close()
