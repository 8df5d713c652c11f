"""`python -m fakes`: run every fake on fixed ports for `make run`, print the settings, wait for Ctrl-C."""
from __future__ import annotations

import os
import signal
import threading

from fakes import Fakes

PORTS = {"stripe": 12111, "printify": 12112, "resend": 12113, "pushover": 12114, "telegram": 12115}


def main() -> None:
    """Start the fakes and print `.env` lines for them."""
    base = int(os.environ.get("FAKES_PORT_BASE", "0"))
    ports = {name: base + i for i, name in enumerate(PORTS)} if base else PORTS
    fakes = Fakes().start(ports)
    print("# fakes running; put these in .env (or export them) before `make run`:", flush=True)
    for name, value in fakes.env().items():
        print(f"{name}={value}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    fakes.stop()


if __name__ == "__main__":
    main()
