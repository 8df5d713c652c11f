"""A worker host cut off from Redis (partitioned, not killed): its jobs run elsewhere, it fences itself,
and its late record writes never overwrite a newer attempt."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from broker.setup import build_broker
from cli.stack import descendants
from config.settings import get_settings
from domain.jobs import JobStatus
from tests.reliability import netns
from tests.reliability.conftest import live_workers
from tests.reliability.effects import async_file_effect, file_effect, noted
from tests.waiting import wait_until

WHY_NOT = netns.unavailable()
pytestmark = [pytest.mark.reliability, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]
HOLD_S = 5.0  # each job's run: the cut comes while the first two run


@pytest.fixture()
def linked(tmp_path: Path) -> Iterator[tuple[netns.Host, netns.LinkedRedis]]:
    """A namespaced host and a Redis it reaches over its link."""
    host = netns.Host().create()
    server = netns.LinkedRedis(tmp_path / "redis", host=host)
    try:
        yield host, server.start()
    finally:
        server.stop(kill=True)
        host.remove()


def _pid(worker: object) -> int:
    return int(str(worker or "?:0").rsplit(":", 1)[1])


def _outcomes(broker, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["event"] for e in broker.jobs.events(job_id) if e["event"] in ("succeeded", "failed", "dead")]


@pytest.mark.parametrize("partition", ["cut", "blackhole"])
def test_a_cut_off_host_starts_nothing_more_and_its_late_writes_lose(linked, pools, tmp_path, partition) -> None:
    host, server = linked
    effects = str(tmp_path / "effects")
    client = redis.Redis.from_url(server.url)
    broker = build_broker(get_settings().model_copy(update={"redis_url": server.url}))

    def notes(event: str, side: str) -> list[str]:
        return [tag for e, tag, s, _ in noted(effects) if e == event and s == side]

    cut_off = pools(
        server.remote_url, processes=1, threads=2, wrap=host.wrap(), EFFECTS_FILE=effects, EFFECTS_SIDE="cut"
    )
    wait_until(lambda: len(live_workers(client)) == 1, 60, "the namespaced worker heartbeats")
    jobs = [broker.enqueue(file_effect.message(f"job-{i}", HOLD_S)) for i in range(4)]
    wait_until(
        lambda: client.llen("backroom:default") == 0 and len(notes("start", "cut")) == 2,
        30,
        "two jobs run on the namespaced host, two wait there prefetched",
    )
    getattr(host, partition)()
    pools(server.url, processes=1, threads=4, EFFECTS_FILE=effects, EFFECTS_SIDE="host")
    wait_until(lambda: len(notes("start", "host")) == 4, 90, "the cut-off host's four jobs run again elsewhere")
    wait_until(lambda: len(notes("done", "cut")) == 2, 60, "the cut-off host finishes the two it was running")
    host.heal()
    wait_until(lambda: len(notes("done", "host")) == 4, 90, "the re-runs finish")
    cut_pids = {pid for _, _, side, pid in noted(effects) if side == "cut"}
    # the reaped process stopped itself; its pool started a fresh one, which joins
    wait_until(
        lambda: (
            {int(info["pid"]) for info in live_workers(client).values()}
            & (set(descendants(cut_off.process.pid)) - cut_pids)
        ),
        90,
        "the cut-off host rejoins",
    )
    cut_off.terminate(timeout=120)  # a join: whatever the cut-off host was still going to write has landed

    assert sorted(Counter(notes("start", "cut")).values()) == [1, 1]  # nothing started after the cut
    assert Counter(notes("done", "host")) == {f"job-{i}": 1 for i in range(4)}
    for message in jobs:
        record = broker.jobs.get(message.message_id)
        assert record is not None and record.status is JobStatus.SUCCEEDED
        assert _pid(record.worker) not in cut_pids, "the record describes the cut-off host's attempt"
        events = broker.jobs.events(message.message_id)
        recovered = next(i for i, event in enumerate(events) if event["event"] == "recovered")
        late = [event for event in events[recovered + 1 :] if _pid(event.get("worker")) in cut_pids]
        assert not late, f"late starts of the cut-off host landed after the recovery: {late}"
        assert _outcomes(broker, message.message_id) == ["succeeded"], f"a late outcome landed too: {events}"
    broker.close()
    client.close()


@pytest.mark.parametrize("partition", ["cut", "blackhole"])
def test_a_cut_off_host_stops_its_running_async_jobs(linked, pools, tmp_path, partition) -> None:
    host, server = linked
    effects = str(tmp_path / "effects")
    client = redis.Redis.from_url(server.url)
    broker = build_broker(get_settings().model_copy(update={"redis_url": server.url}))

    def notes(event: str, side: str) -> list[str]:
        return [tag for e, tag, s, _ in noted(effects) if e == event and s == side]

    cut_off = pools(
        server.remote_url, processes=1, threads=1, wrap=host.wrap(), EFFECTS_FILE=effects, EFFECTS_SIDE="cut"
    )
    wait_until(lambda: len(live_workers(client)) == 1, 60, "the namespaced worker heartbeats")
    message = broker.enqueue(async_file_effect.message("async", HOLD_S * 2))
    wait_until(lambda: notes("start", "cut"), 30, "the async job runs on the namespaced host")
    getattr(host, partition)()
    wait_until(lambda: notes("stopped", "cut"), 30, "the cut-off host stops its async job")
    pools(server.url, processes=1, threads=1, EFFECTS_FILE=effects, EFFECTS_SIDE="host")
    wait_until(lambda: notes("start", "host"), 90, "the job runs again elsewhere")
    host.heal()
    wait_until(lambda: notes("done", "host"), 90, "the re-run finishes")
    cut_off.terminate(timeout=120)  # a join: whatever the cut-off host was still going to write has landed

    assert notes("done", "cut") == [] and notes("start", "cut") == ["async"]
    assert notes("start", "host") == ["async"]  # re-run once by the reaper, not retried as well
    record = broker.jobs.get(message.message_id)
    assert record is not None and record.status is JobStatus.SUCCEEDED
    assert _outcomes(broker, message.message_id) == ["succeeded"]
    assert "retrying" not in [e["event"] for e in broker.jobs.events(message.message_id)]
    assert client.hlen("backroom:default.msgs") == client.hlen("backroom:default.DQ.msgs") == 0  # no retry either
    broker.close()
    client.close()


def test_a_briefly_cut_off_host_that_nobody_reaped_resumes_and_runs_each_job_once(linked, pools, tmp_path) -> None:
    host, server = linked
    effects = str(tmp_path / "effects")
    client = redis.Redis.from_url(server.url)
    broker = build_broker(get_settings().model_copy(update={"redis_url": server.url}))

    def notes(event: str) -> list[str]:
        return [tag for e, tag, _, _ in noted(effects) if e == event]

    pools(server.remote_url, processes=1, threads=2, wrap=host.wrap(), EFFECTS_FILE=effects, EFFECTS_SIDE="cut")
    wait_until(lambda: len(live_workers(client)) == 1, 60, "the namespaced worker heartbeats")
    pid = int(next(iter(live_workers(client).values()))["pid"])
    jobs = [broker.enqueue(file_effect.message(f"brief-{i}", HOLD_S / 2)) for i in range(4)]
    wait_until(
        lambda: client.llen("backroom:default") == 0 and len(notes("start")) == 2,
        30,
        "two jobs run, two wait prefetched",
    )
    host.cut()  # no other worker runs a reaper: nobody takes this host's jobs
    wait_until(lambda: len(notes("done")) == 2, 60, "the two running jobs finish while cut off")
    host.heal()
    wait_until(lambda: len(notes("done")) == 4, 90, "the prefetched jobs run once the link is back")
    for message in jobs:
        wait_until(
            lambda m=message: (r := broker.jobs.get(m.message_id)) and r.status is JobStatus.SUCCEEDED,
            60,
            "every record lands",
        )
    assert Counter(notes("start")) == {f"brief-{i}": 1 for i in range(4)}
    assert {int(info["pid"]) for info in live_workers(client).values()} == {pid}  # the same process, rejoined
    broker.close()
    client.close()
