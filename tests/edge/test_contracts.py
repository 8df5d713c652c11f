"""domain.contracts names real actors on the queues it says: server actors here, edge actors in an edge process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import actors
from domain import contracts

ROOT = Path(__file__).resolve().parents[2]
EDGE_ACTORS_SCRIPT = (
    "import json, edge.worker as w; print(json.dumps({n: a.queue_name for n, a in w.broker.actors.items()}))"
)


def test_server_actors_in_the_contract_are_declared_on_their_queues() -> None:
    for name in contracts.SERVER_ACTORS:
        assert actors.broker.get_actor(name).queue_name == contracts.queue_of(name), name
    assert not contracts.EDGE_ACTORS & set(actors.broker.actors)  # edge work never runs on a server worker


def test_edge_actors_in_the_contract_are_declared_by_the_edge_worker(tmp_path: Path) -> None:
    env = {**os.environ, "EDGE_OUTBOX_PATH": str(tmp_path / "outbox.db"), "LOG_LEVEL": "ERROR"}
    env.pop("DATABASE_URL", None)  # the edge process holds no database credentials
    out = subprocess.run(
        [sys.executable, "-c", EDGE_ACTORS_SCRIPT],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    declared = json.loads(out.strip().splitlines()[-1])
    for name in contracts.EDGE_ACTORS:
        assert declared.get(name) == contracts.queue_of(name), name
    assert set(declared.values()) == {contracts.EDGE_QUEUE}  # an edge worker consumes nothing else
    assert not contracts.SERVER_ACTORS & set(declared)
