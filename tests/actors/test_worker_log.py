"""A worker's log is for people: a successful job writes its job record, not a log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from dramatiq import Worker

import actors
from actors.ops import ping
from actors.watch import check_edge_nodes, watch_dead_letters
from config.logging import configure_logging
from config.settings import Settings
from domain.jobs import JobStatus
from tests.actors.helpers import wait_for_status

JOBS = 3


@pytest.fixture()
def process_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What a worker process prints on stderr, with the default log settings."""
    defaults = Settings.model_fields
    configure_logging(defaults["log_level"].default, defaults["log_format"].default)
    stream = io.StringIO()
    monkeypatch.setattr(logging.getLogger().handlers[0], "stream", stream)
    yield stream


def test_successful_jobs_log_nothing(worker: Worker, process_log: io.StringIO) -> None:
    # each returns a value: Dramatiq warns about it once per job, unless config.logging drops the warning
    job_ids = [ping.send(message=f"quiet {i}").message_id for i in range(JOBS)]
    watches = [
        check_edge_nodes.send().message_id,
        watch_dead_letters.send().message_id,
    ]  # every 5 minutes in `make run`
    actors.broker.join("default", timeout=60_000)
    worker.join()
    for i, job_id in enumerate(job_ids):  # the value is kept, in the job record, not discarded
        assert wait_for_status(job_id, JobStatus.SUCCEEDED).result == {"message": f"quiet {i}"}
    assert all(wait_for_status(job_id, JobStatus.SUCCEEDED).result is not None for job_id in watches)
    assert process_log.getvalue().splitlines() == []
