"""Pure rules of the admin surface: queue samples and latency, edge nodes, rescue times."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

from domain.admin import (
    EdgeNodeRow,
    HeldJob,
    WorkerView,
    edge_nodes,
    latency_seconds,
    parse_sample,
    ready_since_ms,
    rescue_expected_ms,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_ready_since_uses_the_eta_of_a_delayed_message() -> None:
    assert ready_since_ms(b'{"message_timestamp": 1000, "options": {"eta": 5000}}') == 5000
    assert ready_since_ms('{"message_timestamp": 1000, "options": {}}') == 1000
    assert ready_since_ms(None) is None and ready_since_ms(b"not json") is None
    assert latency_seconds(6500, 5000) == 1.5 and latency_seconds(1, None) == 0.0


def test_samples_parse_from_their_stored_form() -> None:
    sample = parse_sample(b"29600000:42:1500")
    assert sample.ready == 42 and sample.latency_s == 1.5 and sample.at == datetime.fromtimestamp(29600000 * 60, tz=UTC)


def test_rescue_is_timeout_plus_one_reap_pass() -> None:
    assert rescue_expected_ms(1_000_000, 20_000, 5.0) == 1_025_000


def worker(
    host: str,
    *,
    alive: bool = True,
    queues: tuple[str, ...] = ("edge",),
    running: str | None = None,
    beat: datetime = T0,
) -> WorkerView:
    jobs = [HeldJob(job_id=running, actor="scrape", queue="edge", running=True)] if running else []
    return WorkerView(
        broker_id=host,
        name=f"{host}:1",
        host=host,
        queues=list(queues),
        last_beat=beat,
        alive=alive,
        jobs=jobs,
        processed=7,
        failed=1,
    )


def test_edge_nodes_merge_rows_and_live_heartbeats() -> None:
    rows = [
        EdgeNodeRow(node_id="pi-a", host="pi-a", version="1.0", last_seen=T0 - timedelta(hours=2), done_count=5),
        EdgeNodeRow(node_id="pi-b", host="pi-b", last_seen=T0 - timedelta(hours=1)),
    ]
    live = [
        worker("pi-a", running="j1", beat=T0),
        worker("pi-c"),
        worker("srv", queues=("default",)),
        worker("pi-d", alive=False),
    ]
    nodes = {n.node_id: n for n in edge_nodes(rows, live, now=T0, offline_after=timedelta(minutes=1))}
    assert set(nodes) == {"pi-a", "pi-b", "pi-c"}
    assert (nodes["pi-a"].source, nodes["pi-a"].online, nodes["pi-a"].current_job, nodes["pi-a"].done) == (
        "both",
        True,
        "j1",
        5,
    )
    assert nodes["pi-b"].online is False and nodes["pi-b"].offline_since == T0 - timedelta(hours=1)
    assert (nodes["pi-c"].source, nodes["pi-c"].done, nodes["pi-c"].failed) == ("heartbeat", 7, 1)
