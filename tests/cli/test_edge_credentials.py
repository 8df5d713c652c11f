"""`backroom edge credentials|revoke|nodes`: a credential's history survives re-issue and revocation."""

from __future__ import annotations

import json

import pytest
import redis
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()


def _url(output: str) -> str:
    return next(line.split("=", 1)[1] for line in output.splitlines() if line.startswith("REDIS_URL="))


def test_reissue_keeps_history_and_revoke_drops_the_user_and_its_connections(redis_client: redis.Redis) -> None:
    first = runner.invoke(app, ["edge", "credentials", "pi-hist"])
    second = runner.invoke(app, ["edge", "credentials", "pi-hist"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    with pytest.raises(redis.RedisError):  # the replaced password no longer logs in
        redis.Redis.from_url(_url(first.output)).ping()
    live = redis.Redis.from_url(_url(second.output))
    assert live.ping() is True
    revoked = runner.invoke(app, ["edge", "revoke", "pi-hist"])
    assert revoked.exit_code == 0 and "revoked edge-pi-hist" in revoked.output, revoked.output
    with pytest.raises(redis.RedisError):  # its open connection was dropped
        live.ping()
    assert b"edge-pi-hist" not in b" ".join(redis_client.execute_command("ACL", "USERS"))
    assert redis_client.hget("backroom:edgesigning", "pi-hist") is None  # its deliveries are refused from now on
    listed = json.loads(runner.invoke(app, ["edge", "nodes", "--json"]).output)["credentials"]
    history = [c for c in listed if c["node_id"] == "pi-hist"]
    assert [c["state"] for c in history][:2] == ["revoked", "replaced"]
    assert history[0]["revoked_by"].startswith("cli:") and history[0]["redis_user"] == "edge-pi-hist"
    table = runner.invoke(app, ["edge", "nodes"], env={"COLUMNS": "240"})
    assert "edge credentials" in table.output and "revoked" in table.output
    assert "nothing to revoke" in runner.invoke(app, ["edge", "revoke", "pi-hist"]).output


def test_the_dev_stack_gives_its_edge_node_a_credential_of_its_own(own_redis) -> None:  # type: ignore[no-untyped-def]
    from cli.devstack import dev_edge_credentials

    env = dev_edge_credentials({"REDIS_URL": own_redis.url})
    assert env["EDGE_NODE_ID"] == "dev-edge" and env["EDGE_REDIS_URL"].startswith("redis://edge-dev-edge:")
    edge = redis.Redis.from_url(env["EDGE_REDIS_URL"])
    assert edge.ping() is True
    with pytest.raises(redis.exceptions.NoPermissionError):
        edge.lrange("backroom:ingest", 0, -1)
    assert redis.Redis.from_url(own_redis.url).hexists("backroom:edgesigning", "dev-edge")
