"""`backroom worker --edge` on a Pi's memory: a stdlib-only supervisor over one master-less worker process."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import redis

from broker.edge_registry import live_edge_nodes, send_edge_message
from broker.keys import Keys
from broker.redis import BackroomBroker
from cli.stack import RedisProcess
from cli.stack import descendants
from tests.edge.conftest import EdgeWorker
from tests.waiting import wait_until

NS = "backroom"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _python_children(pid: int) -> list[int]:
    return [child for child in descendants(pid) if "python" in _cmdline(child)]


def _succeeded(client: redis.Redis, job_id: str) -> bool:
    return client.hget(f"{NS}-edge:job:{job_id}", "status") == b"succeeded"  # edge jobs live in the edge namespace


def test_two_python_processes_and_a_dead_worker_process_is_replaced(
    own_redis: RedisProcess, edge_workers: Callable[..., EdgeWorker]
) -> None:
    admin = redis.Redis.from_url(own_redis.url)
    server = BackroomBroker(url=own_redis.url, namespace=NS, job_retention_s=3600, maintenance_chance=0)
    worker = edge_workers(own_redis.url, EDGE_NODE_ID="pi-layout")
    wait_until(lambda: live_edge_nodes(admin, Keys(NS), ttl_s=10), 30, f"the node never beat\n{worker.output()}")
    first = send_edge_message(server, "deliver_probe", {"delivery_id": "layout-1"}, ttl_s=10)
    wait_until(lambda: _succeeded(admin, first.message_id), 30, f"the first job never ran\n{worker.output()}")

    supervisor = worker.process.pid
    assert " -m cli.worker " in _cmdline(supervisor)  # the CLI exec'd the lean supervisor in its place
    maps = Path(f"/proc/{supervisor}/maps").read_text()
    assert "site-packages" not in maps, "the supervisor loaded more than the standard library"
    [process] = _python_children(supervisor)  # one worker process, no Dramatiq master between
    assert "-m cli.worker_process edge.worker tests.edge.edge_probe --queues edge" in _cmdline(process)

    os.kill(process, signal.SIGKILL)
    replaced = wait_until(
        lambda: [p for p in _python_children(supervisor) if p != process],
        30,
        f"the dead worker process was not replaced\n{worker.output()}",
    )
    second = send_edge_message(server, "deliver_probe", {"delivery_id": "layout-2"}, ttl_s=10)
    wait_until(
        lambda: _succeeded(admin, second.message_id), 30, f"the new worker process ran nothing\n{worker.output()}"
    )

    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in replaced)
