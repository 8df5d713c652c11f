"""The chaos scenarios of bench/chaos.py at a small size: nothing lost, doubled, stuck or wrongly dead-lettered.

Each scenario starts its own redis-server and worker pools and counts every job's effects in a
ledger outside Redis (bench/_chaos_ledger.py); reruns of jobs that were running on a worker
when it was lost are allowed (at-least-once), a job started after its worker lost Redis is not.
"""

from __future__ import annotations

import pytest

from bench import _chaos_scenarios as scenarios
from bench._chaos_ledger import Counts

pytestmark = pytest.mark.reliability


def assert_clean(counts: Counts) -> None:
    if counts.skipped:
        pytest.skip(counts.skipped)
    assert counts.jobs > 0
    assert (counts.lost, counts.doubled, counts.stuck, counts.bystanders_dead) == (0, 0, 0, 0), (
        f"{counts.line()}\n{dict(counts.details)}"
    )


def test_sigkilled_workers_lose_and_double_nothing() -> None:
    counts = scenarios.worker_sigkill(n=12, kills=1)
    assert_clean(counts)
    assert counts.rerun_after_loss <= 2  # at most what the killed process was running (2 threads)


def test_a_sigkilled_master_leaves_no_orphan_and_loses_nothing() -> None:
    assert_clean(scenarios.master_sigkill(n=12))


def test_a_redis_sigterm_strands_no_delayed_or_retrying_job() -> None:
    assert_clean(scenarios.redis_sigterm(n=40))


def test_a_redis_sigkill_strands_no_delayed_or_retrying_job() -> None:
    assert_clean(scenarios.redis_sigkill(n=40))


def test_a_graceful_stop_hands_back_jobs_longer_than_the_deadline() -> None:
    counts = scenarios.graceful_stop(n=4, long_jobs=2)
    assert_clean(counts)
    assert counts.rerun_after_loss == 2  # both long jobs ran again on the new pool


def test_a_poison_job_is_dead_lettered_and_its_bystanders_are_not() -> None:
    counts = scenarios.poison(bystanders=2)
    assert_clean(counts)
    assert "poison job dead" in counts.notes


def test_a_full_redis_runs_no_finished_job_twice() -> None:
    assert_clean(scenarios.redis_full(n=12))


def test_a_partitioned_host_starts_nothing_it_holds_once_cut_off() -> None:
    assert_clean(scenarios.partition(n=8, cut_s=8.0))


def test_a_sentinel_failover_under_load_loses_and_doubles_nothing() -> None:
    assert_clean(scenarios.sentinel_failover(n=20))


def test_a_sentinel_failover_waiting_for_replicas_loses_and_doubles_nothing() -> None:
    assert_clean(scenarios.sentinel_failover(n=20, wait_replicas=1))
