"""One Dramatiq worker process with no master: what `backroom worker --edge` supervises.

Dramatiq's CLI runs each worker process under a master that only relays its logs and
signals; on a 4 GB Pi that master is one more Python process (~25 MB RSS, bench/scrape.py)
for nothing, since `cli.worker` already supervises and restarts. So the edge runs this:
import the broker module and the extra modules, emit `process_boot`, consume with
`--threads` threads until SIGTERM/SIGINT/SIGHUP, then stop gracefully (running jobs get
`--shutdown-timeout-s`), as Dramatiq's own `worker_process` does; a second signal exits at
once. Middleware `forks` (Prometheus's exposition server) are not run: the edge has none.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from typing import Any

log = logging.getLogger("backroom.worker")
RET_KILLED = 1  # Dramatiq's exit codes
RET_IMPORT = 2


def command(
    broker_module: str, modules: list[str], queues: list[str], threads: int, shutdown_timeout_s: int
) -> list[str]:
    """The command line that runs one such process."""
    return [
        sys.executable,
        "-m",
        "cli.worker_process",
        broker_module,
        *modules,
        "--queues",
        *queues,
        "--threads",
        str(threads),
        "--shutdown-timeout-s",
        str(shutdown_timeout_s),
    ]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m cli.worker_process", description=__doc__.splitlines()[0])
    parser.add_argument("broker", help="module that builds and installs the broker (e.g. edge.worker)")
    parser.add_argument("modules", nargs="*", help="further modules declaring actors")
    parser.add_argument("--queues", nargs="+", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shutdown-timeout-s", type=float, default=30.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Boot the broker and a Worker in this process; run until signalled; stop gracefully."""
    args = _parse(argv)
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stopping.is_set():
            log.warning("second signal: exiting without waiting for running jobs")
            sys.exit(RET_KILLED)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)  # before the imports: a signal during boot still stops us cleanly

    import dramatiq

    try:
        module = importlib.import_module(args.broker)
        broker = getattr(module, "broker", None) or dramatiq.get_broker()
        broker.emit_after("process_boot")
        for name in args.modules:
            importlib.import_module(name)
    except ImportError:
        log.exception("failed to import the worker's modules")
        return RET_IMPORT
    worker = dramatiq.Worker(broker, queues=args.queues, worker_threads=args.threads)
    worker.start()
    log.info("worker process ready", extra={"queues": args.queues, "threads": args.threads})
    while not stopping.wait(0.5):  # a timed wait: the signal handler runs on this (the main) thread
        pass
    worker.stop(timeout=int(args.shutdown_timeout_s * 1000))
    broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
