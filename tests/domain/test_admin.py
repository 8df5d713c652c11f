"""Pure rules of the admin surface: fingerprints, attempts, unredaction, charts, edge nodes, rescue times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.admin import (
    EdgeNodeRow, HeldJob, WorkerView, edge_nodes, latency_seconds, parse_sample, ready_since_ms, rescue_expected_ms,
)
from domain.charts import human_bytes, human_seconds, sparkline
from domain.jobs import REDACTED
from domain.timeline import JobEvent, attempts_from, error_signature, fingerprint, group_errors, ordered, unredact

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(("one", "two"), [
    ("TimeoutError: order 1234 timed out after 30.5 s", "TimeoutError: order 99 timed out after 2 s"),
    ("KeyError: 'sku-a'", 'KeyError: "sku-b"'),
    ("NotFound: item 3f2a9c1e-1111-2222-3333-444455556666", "NotFound: item 00000000-0000-0000-0000-000000000000"),
    ("Failed at 0xdeadbeef", "Failed at 0x1"),
])
def test_alike_errors_share_a_fingerprint(one: str, two: str) -> None:
    assert fingerprint(one) == fingerprint(two)


def test_different_errors_and_missing_errors() -> None:
    assert fingerprint("TimeoutError: x") != fingerprint("ValueError: x")
    assert error_signature(None) == error_signature("  ") == "(no error recorded)"
    assert error_signature("ValueError: bad\nmore lines") == "ValueError: bad"


def test_group_errors_biggest_first_with_actors_and_range() -> None:
    groups = group_errors([("Timeout: 1", "a", at(0)), ("Timeout: 2", "b", at(5)), ("Boom", "a", at(3))])
    assert [(g.count, g.actors) for g in groups] == [(2, ["a", "b"]), (1, ["a"])]
    assert groups[0].newest == at(5) and groups[0].oldest == at(0)


def test_attempts_pair_starts_with_outcomes() -> None:
    events = [JobEvent(at=at(0), event="queued"), JobEvent(at=at(1), event="started", worker="w:1"),
              JobEvent(at=at(1.5), event="retrying"), JobEvent(at=at(1.5005), event="failed", error="E: x", traceback="tb"),
              JobEvent(at=at(3), event="retry_due"), JobEvent(at=at(3.1), event="started", worker="w:2"),
              JobEvent(at=at(3.2), event="recovered", worker="w:2"), JobEvent(at=at(9), event="started", worker="w:3")]
    timeline = ordered(events)
    assert [e.event for e in timeline][2:4] == ["failed", "retrying"]  # the failure before the retry it caused
    attempts = attempts_from(timeline)
    assert [(a.number, a.outcome, a.worker) for a in attempts] == [(1, "failed", "w:1"), (2, "recovered", "w:2"),
                                                                  (3, "running", "w:3")]
    assert attempts[0].error == "E: x" and attempts[0].traceback == "tb" and attempts[0].duration_ms == 500
    assert attempts[2].finished_at is None and attempts[2].duration_ms is None


def test_unredact_keeps_originals_only_where_the_marker_was_left() -> None:
    original = {"api_key": "s3cret", "n": 1, "nested": {"token": "t", "x": 2}}
    edited = {"api_key": REDACTED, "n": 5, "nested": {"token": REDACTED, "x": 3}, "new": REDACTED}
    assert unredact(edited, original) == {"api_key": "s3cret", "n": 5, "nested": {"token": "t", "x": 3},
                                          "new": REDACTED}
    assert unredact([REDACTED, "b", "c"], ["a", "x"]) == ["a", "b", "c"]


def test_ready_since_uses_the_eta_of_a_delayed_message() -> None:
    assert ready_since_ms(b'{"message_timestamp": 1000, "options": {"eta": 5000}}') == 5000
    assert ready_since_ms('{"message_timestamp": 1000, "options": {}}') == 1000
    assert ready_since_ms(None) is None and ready_since_ms(b"not json") is None
    assert latency_seconds(6500, 5000) == 1.5 and latency_seconds(1, None) == 0.0


def test_samples_and_sparklines() -> None:
    sample = parse_sample(b"29600000:42:1500")
    assert sample.ready == 42 and sample.latency_s == 1.5 and sample.at == datetime.fromtimestamp(
        29600000 * 60, tz=timezone.utc)
    spark = sparkline([(T0 - timedelta(minutes=60), 0.0), (T0 - timedelta(minutes=30), 10.0), (T0, 5.0)], end=T0)
    assert spark.points == "0.0,27.0 60.0,1.0 120.0,14.0" and spark.peak == 10 and spark.last == 5
    assert sparkline([], end=T0).points == "" and sparkline([(T0, 3.0)], end=T0).points.count(",") == 2


def test_human_units() -> None:
    assert [human_seconds(s) for s in (0.25, 12.34, 240, 9000, 200000)] == ["250 ms", "12.3 s", "4 min", "2.5 h", "2.3 d"]
    assert human_bytes(None) == "?" and human_bytes(3 << 20) == "3.0 MiB" and human_bytes(2048) == "2 KiB"


def test_rescue_is_timeout_plus_one_reap_pass() -> None:
    assert rescue_expected_ms(1_000_000, 20_000, 5.0) == 1_025_000


def worker(host: str, *, alive: bool = True, queues: tuple[str, ...] = ("edge",), running: str | None = None,
           beat: datetime = T0) -> WorkerView:
    jobs = [HeldJob(job_id=running, actor="scrape", queue="edge", running=True)] if running else []
    return WorkerView(broker_id=host, name=f"{host}:1", host=host, queues=list(queues), last_beat=beat, alive=alive,
                      jobs=jobs, processed=7, failed=1)


def test_edge_nodes_merge_rows_and_live_heartbeats() -> None:
    rows = [EdgeNodeRow(node_id="pi-a", host="pi-a", version="1.0", last_seen=T0 - timedelta(hours=2), done_count=5),
            EdgeNodeRow(node_id="pi-b", host="pi-b", last_seen=T0 - timedelta(hours=1))]
    live = [worker("pi-a", running="j1", beat=T0), worker("pi-c"), worker("srv", queues=("default",)),
            worker("pi-d", alive=False)]
    nodes = {n.node_id: n for n in edge_nodes(rows, live, now=T0, offline_after=timedelta(minutes=1))}
    assert set(nodes) == {"pi-a", "pi-b", "pi-c"}
    assert (nodes["pi-a"].source, nodes["pi-a"].online, nodes["pi-a"].current_job, nodes["pi-a"].done) == (
        "both", True, "j1", 5)
    assert nodes["pi-b"].online is False and nodes["pi-b"].offline_since == T0 - timedelta(hours=1)
    assert (nodes["pi-c"].source, nodes["pi-c"].done, nodes["pi-c"].failed) == ("heartbeat", 7, 1)
