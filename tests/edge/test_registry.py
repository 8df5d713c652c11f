"""The edge registry in Redis, the server's refusal to send edge work to nobody, and `backroom edge credentials`."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, UTC

import pytest
import redis
from typer.testing import CliRunner

from broker.edge_registry import NoLiveEdgeNode, live_edge_nodes, send_edge_message, write_beat
from broker.keys import Keys
from domain.edge_registry import EdgeBeat
from edge.registry import outcome_status

KEYS = Keys("backroom")


def _beat(node: str, pid: int, at: datetime, **fields: object) -> EdgeBeat:
    return EdgeBeat(node_id=node, pid=pid, version="0.1.0", host=f"{node}.lan", last_beat=at, **fields)


def test_live_nodes_are_those_that_beat_within_the_ttl(redis_client: redis.Redis) -> None:
    now = datetime.now(UTC)
    write_beat(redis_client, KEYS, _beat("pi-a", 1, now, done=2, current_jobs=["j1"]), ttl_s=30)
    write_beat(redis_client, KEYS, _beat("pi-a", 2, now, failed=1), ttl_s=30)
    write_beat(redis_client, KEYS, _beat("pi-old", 3, now - timedelta(minutes=5)), ttl_s=600)
    [node] = live_edge_nodes(redis_client, KEYS, ttl_s=30, now=now)
    assert (node.node_id, node.processes, node.done, node.failed, node.current_job) == ("pi-a", 2, 2, 1, "j1")
    assert redis_client.zscore(KEYS.edge.edge_nodes, "pi-old/3") is None  # stale index entries are pruned
    assert redis_client.ttl(KEYS.edge.edge_node("pi-a", 1)) > 0  # the registry lives in the edge namespace


def test_edge_work_is_refused_while_no_node_is_live_unless_forced(redis_client: redis.Redis) -> None:
    import actors
    from actors.edge import send_to_edge

    with pytest.raises(NoLiveEdgeNode):
        send_to_edge("scrape_source", {"source": "vinted", "query": "coat", "limit": 5})
    assert redis_client.llen("backroom-edge:edge") == 0
    job_id = send_to_edge("scrape_source", {"source": "vinted", "query": "coat", "limit": 5}, force=True)
    assert actors.broker.jobs.get(job_id).actor == "scrape_source"
    write_beat(redis_client, KEYS, _beat("pi-a", 1, datetime.now(UTC)), ttl_s=30)
    message = send_edge_message(
        actors.broker, "scrape_source", {"source": "grailed", "query": "x", "limit": 1}, ttl_s=30
    )
    assert message.queue_name == "edge" and redis_client.llen("backroom-edge:edge") == 2
    with pytest.raises(ValueError):
        send_to_edge("ingest_listings", {}, force=True)


@pytest.mark.parametrize(
    ("result", "status"), [({"status": "blocked"}, "blocked"), ({"listings": []}, None), (None, None), ("text", None)]
)
def test_outcome_status_reads_dicts_and_models(result: object, status: str | None) -> None:
    assert outcome_status(result) == status


def test_the_credentials_command_prints_a_working_url_once(redis_client: redis.Redis) -> None:
    from cli.main import app

    result = CliRunner().invoke(app, ["edge", "credentials", "pi-cli", "--host", "pi-gw.example", "--tls"])
    try:
        assert result.exit_code == 0, result.output
        url = next(line.split("=", 1)[1] for line in result.output.splitlines() if line.startswith("REDIS_URL="))
        assert url.startswith("rediss://edge-pi-cli:") and "@pi-gw.example:" in url
        assert "EDGE_NODE_ID=pi-cli" in result.output
        port = redis.connection.parse_url(os.environ["REDIS_URL"])["port"]
        local = redis.Redis.from_url(
            url.replace("rediss://", "redis://").replace("pi-gw.example", "127.0.0.1").rsplit(":", 1)[0] + f":{port}/0"
        )
        assert local.ping() is True
        with pytest.raises(redis.exceptions.NoPermissionError):
            local.lrange("backroom:default", 0, -1)
        bad = CliRunner().invoke(app, ["edge", "credentials", "pi*"])
        assert bad.exit_code == 2
    finally:
        redis_client.execute_command("ACL", "DELUSER", "edge-pi-cli")
