"""edge.deliver and the outbox: a delivery is one signed envelope enqueued with a job record, or a stored message."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import redis

from broker.redis import BackroomBroker
from cli.stack import free_port
from domain.contracts import ACCEPT_EDGE_RESULT, INGEST_LISTINGS, RESULTS_QUEUE, SCRAPE_SOURCE
from domain.edge_results import EdgeDelivery, signature_valid
from edge import deliver as deliver_module
from edge.deliver import deliver, delivery_message, signer
from edge.outbox import Outbox


def _broker(url: str) -> BackroomBroker:
    return BackroomBroker(url=url, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0)


@pytest.fixture()
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Outbox:
    store = Outbox(tmp_path / "outbox.sqlite3")
    monkeypatch.setattr(deliver_module, "outbox", lambda: store)
    return store


def _queued(client: redis.Redis) -> list[dict[str, Any]]:
    rids = client.lrange(f"backroom-edge:{RESULTS_QUEUE}", 0, -1)
    return [json.loads(client.hget(f"backroom-edge:{RESULTS_QUEUE}.msgs", rid)) for rid in rids]


def test_delivery_enqueues_on_the_contract_queue_with_a_job_record(redis_client: redis.Redis, outbox: Outbox) -> None:
    kwargs = {"source": "vinted", "listings": [{"title": "coat"}], "delivery_id": "d-1"}
    deliver(INGEST_LISTINGS, kwargs, delivery_id="d-1", broker=_broker(os.environ["REDIS_URL"]))
    [message] = _queued(redis_client)
    assert (message["actor_name"], message["queue_name"]) == (ACCEPT_EDGE_RESULT, RESULTS_QUEUE)
    envelope = EdgeDelivery.model_validate(message["kwargs"])
    node, key = signer()
    assert (envelope.node_id, envelope.actor, envelope.payload) == (node, INGEST_LISTINGS, kwargs)
    assert signature_valid(key, envelope) and not signature_valid("11" * 32, envelope)
    tampered = envelope.model_copy(update={"payload": {**kwargs, "source": "grailed"}})
    assert not signature_valid(key, tampered)
    record = redis_client.hgetall(f"backroom-edge:job:{message['message_id']}")
    assert record[b"status"] == b"queued" and record[b"actor"] == ACCEPT_EDGE_RESULT.encode()
    assert outbox.pending() == 0


def test_the_message_id_is_fixed_by_the_delivery_id() -> None:
    one = delivery_message(INGEST_LISTINGS, {}, delivery_id="d-1")
    assert one.message_id == delivery_message(INGEST_LISTINGS, {"x": 1}, delivery_id="d-1").message_id
    assert one.message_id != delivery_message(INGEST_LISTINGS, {}, delivery_id="d-2").message_id
    with pytest.raises(ValueError):
        delivery_message(SCRAPE_SOURCE, {}, delivery_id="d-1")
    with pytest.raises(KeyError):
        delivery_message("no_such_actor", {}, delivery_id="d-1")


def test_unreachable_redis_stores_then_flush_delivers_oldest_first_once(
    redis_client: redis.Redis, outbox: Outbox
) -> None:
    down = _broker(f"redis://127.0.0.1:{free_port()}/0")
    for n in range(3):
        deliver(INGEST_LISTINGS, {"n": n}, delivery_id=f"d-{n}", broker=down)
    deliver(INGEST_LISTINGS, {"n": 0}, delivery_id="d-0", broker=down)  # the same delivery again: stored once
    assert outbox.pending() == 3 and _queued(redis_client) == []
    assert outbox.flush(down.enqueue) == 0 and outbox.pending() == 3  # still down: nothing lost

    up = _broker(os.environ["REDIS_URL"])
    assert outbox.flush(up.enqueue) == 3
    assert outbox.pending() == 0 and outbox.flush(up.enqueue) == 0
    queued = _queued(redis_client)
    assert [m["kwargs"]["payload"]["n"] for m in queued] == [0, 1, 2]
    assert [m["message_id"] for m in queued] == [
        delivery_message(INGEST_LISTINGS, {}, delivery_id=f"d-{n}").message_id for n in range(3)
    ]


def test_a_delivery_while_the_outbox_holds_messages_goes_after_them(redis_client: redis.Redis, outbox: Outbox) -> None:
    outbox.store(delivery_message(INGEST_LISTINGS, {"n": 0}, delivery_id="old"))
    deliver(INGEST_LISTINGS, {"n": 1}, delivery_id="new", broker=_broker(os.environ["REDIS_URL"]))
    assert [m["kwargs"]["payload"]["n"] for m in _queued(redis_client)] == [0, 1] and outbox.pending() == 0


def test_a_leased_row_is_not_flushed_twice(redis_client: redis.Redis, outbox: Outbox, tmp_path: Path) -> None:
    outbox.store(delivery_message(INGEST_LISTINGS, {"n": 0}, delivery_id="x"))
    other = Outbox(tmp_path / "outbox.sqlite3")  # another process's view of the same file
    assert len(other.claim()) == 1
    assert outbox.flush(_broker(os.environ["REDIS_URL"]).enqueue) == 0
    assert len(outbox.claim(lease_s=-1)) == 0 and outbox.pending() == 1
