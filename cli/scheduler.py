"""`backroom scheduler`: fire the periodic actors' ticks; run as many as you like, one leads."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schedules.runner import SchedulerRunner

log = logging.getLogger("backroom.scheduler")


def run_scheduler() -> int:
    """Run the scheduler until SIGTERM or SIGINT; returns the process exit status."""
    import schedules  # noqa: F401  (builds the server broker and declares the periodic actors)
    from actors import broker
    from config.settings import get_settings
    from schedules.runner import SchedulerRunner
    from schedules.settings import scheduler_settings

    settings = get_settings()
    overrides, loader = scheduler_settings(settings.database_url, settings.scheduler_settings_ttl_s)
    try:
        runner = SchedulerRunner(
            broker,
            catchup_minutes=settings.scheduler_catchup_minutes,
            leader_ttl_ms=settings.scheduler_leader_ttl_ms,
            settings=overrides,
        )
    except ValueError as error:  # a periodic actor with a bad cron spec: refuse to start
        print(f"backroom scheduler: {error}", file=sys.stderr)
        loader.close()
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        runner.stop()

    # The loop runs in a thread: setting its Event from a handler interrupting the same
    # thread's Event.wait could deadlock on the Event's lock.
    crashed: list[BaseException] = []
    thread = threading.Thread(target=_run, args=(runner, crashed), name="backroom-scheduler")
    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        thread.start()
        thread.join()
    finally:
        broker.close()
        loader.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 1 if crashed else 0


def _run(runner: SchedulerRunner, crashed: list[BaseException]) -> None:
    try:
        runner.run()
    except BaseException as error:
        log.exception("scheduler %s crashed", runner.owner)
        crashed.append(error)


if __name__ == "__main__":
    raise SystemExit(run_scheduler())
