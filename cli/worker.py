"""`backroom worker`: a pool of Dramatiq worker processes that replaces any that dies.

Dramatiq's master stops every worker process and exits when one of them dies (and
honcho then stops the whole stack). Here each worker process runs under its own
one-process Dramatiq master, and this supervisor starts a new one in its place; the
dead one's in-flight jobs are re-queued by the reaper of any live worker.

`backroom worker --edge` execs `python -m cli.worker` (`lean_supervise`): the same supervisor
with only the standard library loaded (~10 MB instead of the CLI's ~45), over single
Dramatiq processes without a master (`cli.worker_process`): two Python processes, not three.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("backroom.worker")
SERVER_MODULES = ("actors", "schedules")
BOOT_REAP_GRACE_S = 1.5  # longer than the master's own 1 s join loop, once it runs


@dataclass
class Slot:
    """One supervised Dramatiq master (one worker process) and its restart history."""

    index: int
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started: float = 0.0
    failures: int = 0
    not_before: float = 0.0
    restarts: int = field(default=0)
    orphaned_since: float | None = None

    def start(self) -> None:
        """Start (or restart) the master in a session of its own (see `_detach`)."""
        self.process = subprocess.Popen(self.command, env=self.env, preexec_fn=_detach)
        self.started = time.monotonic()
        self.orphaned_since = None

    def check_boot(self, now: float) -> None:
        """Kill a Dramatiq master whose worker process died while booting (it would wait ~30 s for it).

        Dramatiq's master waits up to its fork timeout for the boot signal of a worker that
        may already be dead, with its signals blocked; its only child then stays unreaped.
        Its join loop reaps a child within a second of booting, so a longer wait means boot.
        """
        if self.process is None or self.process.poll() is not None or "dramatiq" not in self.command[:3]:
            return
        if not _only_child_dead(self.process.pid):
            self.orphaned_since = None
        elif self.orphaned_since is None:
            self.orphaned_since = now
        elif now - self.orphaned_since > BOOT_REAP_GRACE_S:
            log.warning("worker %d died while booting; replacing it", self.index)
            self.process.kill()  # SIGKILL: a booting master blocks SIGTERM, and it holds no job

    def reap(self, now: float) -> bool:
        """True when the process exited; schedules its restart with a crash-loop backoff."""
        if self.process is None or self.process.poll() is None:
            return False
        code = self.process.returncode
        self.failures = self.failures + 1 if now - self.started < 10 else 1
        self.not_before = now + min(30.0, 0.5 * 2 ** (self.failures - 1)) if self.failures > 1 else now
        log.warning("worker %d (pid %d) exited with %s; restarting", self.index, self.process.pid, code)
        self.process = None
        self.restarts += 1
        return True


def _only_child_dead(pid: int) -> bool:
    """True when `pid`'s only child has exited and is not reaped yet (a zombie; Linux /proc)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            children = listing.read().split()
        if len(children) != 1:
            return False
        with open(f"/proc/{children[0]}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _detach() -> None:
    """Run in the child before exec: its own session, and SIGTERM when the supervisor dies.

    A supervisor (honcho, systemd) that signals our whole process group would otherwise
    hit each Dramatiq process twice (directly and via its master), and Dramatiq treats a
    second SIGTERM as "kill now", abandoning running jobs. Only this supervisor signals them.
    """
    supervisor = os.getppid()
    os.setsid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != supervisor:  # the supervisor died before the death signal was armed
        os._exit(1)


def expose_metrics(settings: Any) -> None:
    """Tell Dramatiq's metrics server where to listen (METRICS_PORT on API_HOST).

    The server is a process each master forks from a bare import of Dramatiq's Prometheus
    module: it never builds the broker, so only the environment it inherits reaches it
    (otherwise it listens on 0.0.0.0:9191 whatever the settings say).
    """
    if settings.metrics_port:
        os.environ.setdefault("dramatiq_prom_host", settings.api_host)
        os.environ.setdefault("dramatiq_prom_port", str(settings.metrics_port))


def dramatiq_command(modules: list[str], queues: list[str], threads: int, shutdown_timeout_s: int) -> list[str]:
    """The command of one single-process Dramatiq master."""
    return [
        sys.executable,
        "-m",
        "dramatiq",
        *modules,
        "--processes",
        "1",
        "--threads",
        str(threads),
        "--queues",
        *queues,
        "--worker-shutdown-timeout",
        str(shutdown_timeout_s * 1000),
    ]


def lean_supervise(command: list[str], processes: int) -> None:
    """Replace this process by `python -m cli.worker PROCESSES COMMAND...` (same pid, signals and env)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "cli.worker", str(processes), *command])


def supervise(command: list[str], processes: int, extra: tuple[list[str], ...] = ()) -> int:
    """Run `processes` copies of `command` and one of each `extra` command, replacing any that exits,
    until SIGTERM/SIGINT."""
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _: stopping.append(signum))
    commands = [command] * processes + list(extra)
    slots = [
        Slot(i, c, {**os.environ, "BACKROOM_METRICS_EXPOSE": "1" if i == 0 else "0"}) for i, c in enumerate(commands)
    ]
    for slot in slots:
        slot.start()
    while not stopping:
        now = time.monotonic()
        for slot in slots:
            slot.check_boot(now)
            slot.reap(now)
            if slot.process is None and now >= slot.not_before and not stopping:
                slot.start()
        time.sleep(0.2)
    return _stop(slots)


def _stop(slots: list[Slot]) -> int:
    """Ask every master to shut down gracefully (they finish running jobs) and wait."""
    for slot in slots:
        if slot.process is not None and slot.process.poll() is None:
            slot.process.send_signal(signal.SIGTERM)
    for slot in slots:
        if slot.process is not None:
            slot.process.wait()
    return 0


if __name__ == "__main__":  # lean_supervise's target: nothing but the standard library is imported
    sys.exit(supervise(sys.argv[2:], int(sys.argv[1])))
