"""Orders against real `backroom worker` pools: a worker SIGKILLed mid-release still releases exactly once."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

import actors
from actors.orders import handle_stripe_event
from domain.jobs import JobStatus
from tests.orders_support import connect, fake, fakes, insert_item, order_of, pod_attributes  # noqa: F401
from tests.reliability.conftest import live_workers
from tests.waiting import eventually, wait_until

pytestmark = pytest.mark.reliability


def running_job(actor: str):  # type: ignore[no-untyped-def]
    """The record of a running job of `actor`, if any."""
    for job_id in actors.broker.client.zrange(actors.broker.jobs.keys.job_index, 0, -1):
        record = actors.broker.jobs.get(job_id.decode())
        if record is not None and record.actor == actor and record.status is JobStatus.RUNNING:
            return record
    return None


async def test_a_worker_killed_during_release_still_releases_exactly_once(
    fake, redis_client, pools, database_url
) -> None:
    fake.printify.pending_s = 0
    fake.printify.hang_next("create", 1.0)  # the create is in flight when the worker dies; Printify makes it
    pools(os.environ["REDIS_URL"], processes=2, threads=2, HOLD_MINUTES=f"{1 / 60}")
    wait_until(lambda: len(live_workers(redis_client)) == 2, 60, "two workers heartbeat")
    conn = await connect(database_url)
    try:
        poster = await insert_item(conn, "print_on_demand", attributes=pod_attributes())
        event = fake.stripe.checkout_completed(items=str(poster))
        handle_stripe_event.send(event["id"])
        order = await eventually(lambda: order_of(conn, event["data"]["object"]["id"]), timeout=30, what="order")
        await asyncio.to_thread(wait_until, lambda: fake.printify.calls["create"] >= 1, 30, "the Printify create")
        victim = running_job("release_order")
        assert victim is not None and victim.worker
        os.kill(int(victim.worker.rsplit(":", 1)[1]), signal.SIGKILL)
        released = await eventually(
            lambda: conn.fetchrow("SELECT * FROM orders WHERE id = $1 AND status = 'released'", order["id"]),
            timeout=90,
            what="the release to finish on another worker",
        )
        assert fake.printify.creates == {str(order["id"]): 1}
        assert fake.printify.sends == {released["printify_order_id"]: 1}
        record = await asyncio.to_thread(
            wait_until,
            lambda: (r := actors.broker.jobs.get(victim.job_id)) and r.status is JobStatus.SUCCEEDED and r,
            30,
            "the job record",
        )
        assert record.recoveries == 1
    finally:
        await conn.close()
