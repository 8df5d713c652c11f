"""REDIS_SENTINELS: the broker finds its primary through Redis Sentinel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from broker.setup import build_broker
from cli.stack import RedisProcess, free_port, redis_server_binary
from config.settings import get_settings
from domain.jobs import JobStatus
from actors.ops import ping
from tests.waiting import wait_until


def test_broker_enqueues_through_a_sentinel_managed_primary(tmp_path: Path) -> None:
    primary = RedisProcess(tmp_path / "primary").start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor backroom-primary 127.0.0.1 {primary.port} 1\n"
    )
    sentinel = subprocess.Popen(
        [redis_server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        probe = redis.Redis(port=port)

        def primary_known() -> bool:
            try:
                return bool(probe.execute_command("SENTINEL", "get-master-addr-by-name", "backroom-primary"))
            except redis.ConnectionError:
                return False

        wait_until(primary_known, 10, "the sentinel to start and name the primary")
        settings = get_settings().model_copy(
            update={
                "redis_url": "redis://ignored-host:1/0",
                "redis_sentinels": f"127.0.0.1:{port}",
                "redis_sentinel_master": "backroom-primary",
            }
        )
        broker = build_broker(settings)
        message = broker.enqueue(ping.message(message="via sentinel"))
        assert broker.jobs.get(message.message_id).status is JobStatus.QUEUED
        assert redis.Redis(port=primary.port).llen("backroom:default") == 1
        broker.close()
    finally:
        sentinel.kill()
        sentinel.wait()
        primary.stop(kill=True)
