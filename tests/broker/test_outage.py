"""A worker process's last resorts: a dead thread ends the process; so does a parent gone before boot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from broker.outage import refusal, transient

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_thread_that_dies_takes_its_process_down() -> None:
    done = run(
        "import threading, time\n"
        "from broker.outage import guard_threads\n"
        "guard_threads()\n"
        "def boom(): raise RuntimeError('a consumer thread dies')\n"
        "threading.Thread(target=boom, name='consumer').start()\n"
        "time.sleep(30)\n"
        "print('still alive')"
    )
    assert done.returncode == 70
    assert "still alive" not in done.stdout and "a consumer thread dies" in done.stderr


def test_a_process_whose_parent_is_already_gone_exits_at_once() -> None:
    done = run(
        "from broker.outage import die_with_parent\n"
        "die_with_parent(parent_pid=1)\n"  # not our parent: it "died" before the signal was armed
        "print('still alive')"
    )
    assert done.returncode == 1 and "still alive" not in done.stdout


def test_a_process_with_its_parent_alive_carries_on() -> None:
    done = run("from broker.outage import die_with_parent\ndie_with_parent()\nprint('still alive')")
    assert done.returncode == 0 and "still alive" in done.stdout


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), "full"),
        (
            redis.ResponseError(
                "Error running script (call to f_1): @user_script:27: -OOM command not allowed when "
                "used memory > 'maxmemory'."
            ),
            "full",
        ),
        (redis.exceptions.ReadOnlyError("You can't write against a read only replica."), "read-only"),
        (redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), ""),
    ],
)
def test_refusals_are_told_apart_from_other_errors(error: redis.ResponseError, why: str) -> None:
    assert refusal(error) == why
    assert transient(error) is bool(why)
    assert transient(redis.ConnectionError("Connection refused"))
