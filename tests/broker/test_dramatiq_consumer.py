"""Canary for broker/dramatiq_consumer.py: the Dramatiq it was written against, and the internals it uses.

A failure here means the installed Dramatiq is not the release the consumer copy was checked
against: read that module's docstring before bumping DRAMATIQ_VERSION.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib.metadata import version

import dramatiq.brokers.redis as dramatiq_redis
import pytest

from broker import dramatiq_consumer
from broker.dramatiq_consumer import BROKER_ATTRIBUTES, CONSUMER_ATTRIBUTES, DRAMATIQ_VERSION, WakingConsumer
from broker.redis import BackroomBroker


@pytest.fixture()
def broker() -> Iterator[BackroomBroker]:
    """A broker of the test's own (a worker another test left running uses the shared one)."""
    broker = BackroomBroker(url=os.environ["REDIS_URL"], namespace="canary", job_retention_s=60)
    yield broker
    broker.close()


def test_the_installed_dramatiq_is_the_one_the_consumer_was_written_against() -> None:
    installed = version("dramatiq")
    assert installed == DRAMATIQ_VERSION, (
        f"broker/dramatiq_consumer.py copies Dramatiq {DRAMATIQ_VERSION}'s private Redis consumer, but "
        f"{installed} is installed: port dramatiq/brokers/redis.py's changes, then bump DRAMATIQ_VERSION and the pin"
    )


def test_the_private_consumer_and_broker_members_it_relies_on_still_exist(broker: BackroomBroker) -> None:
    base = dramatiq_redis._RedisConsumer
    assert WakingConsumer.__mro__[1] is base
    assert broker.consumer_class is WakingConsumer  # RedisBroker.consume still builds it from this property
    consumer = base(broker, "canary", 3, 1000)  # Dramatiq's own constructor sets its state
    missing = [name for name in CONSUMER_ATTRIBUTES if not hasattr(consumer, name)]
    missing += [f"broker.{name}" for name in BROKER_ATTRIBUTES if not hasattr(broker, name)]
    assert not missing, f"Dramatiq no longer has {missing}: broker/dramatiq_consumer.py must be ported"
    assert consumer.message_cache == [] and consumer.queued_message_ids == set() and consumer.misses == 0
    assert consumer.outstanding_message_count == 0
    assert "dispatch" in broker.scripts
    for method in ("ack", "nack", "requeue", "__next__"):  # the ones the subclass overrides or calls through super()
        assert callable(getattr(base, method)), method


def test_ack_args_match_the_dispatch_call_dramatiq_makes(broker: BackroomBroker, monkeypatch) -> None:
    calls = []
    monkeypatch.setitem(broker.scripts, "dispatch", lambda args, keys: calls.append((args, keys)))
    broker.do_ack("default", "rid-1")  # Dramatiq's own ack, through its dispatch script
    ours = dramatiq_consumer.ack_args(broker, "default", "rid-1")
    [(theirs, keys)] = calls
    assert keys == [broker.namespace]
    assert theirs[:1] + theirs[2:] == ours[:1] + ours[2:]  # all but the timestamp
    assert 0 <= ours[1] - theirs[1] < 60_000
