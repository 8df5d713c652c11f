"""`python -m fakes`: run every fake on fixed ports for `make run`, print the settings, wait for Ctrl-C."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading

from fakes import Fakes

PORTS = {"stripe": 12111, "printify": 12112, "resend": 12113, "pushover": 12114, "telegram": 12115}
MARKET_PORTS = {"vinted": 12120, "grailed": 12121, "algolia": 12122, "shop": 12123}


def run_marketplace() -> None:
    """`python -m fakes marketplace`: the local marketplace on fixed ports; prints its base URLs and settings."""
    from fakes.marketplace import Marketplace

    base = int(os.environ.get("MARKET_PORT_BASE", "0"))
    ports = {name: base + i for i, name in enumerate(MARKET_PORTS)} if base else MARKET_PORTS
    market = Marketplace().start(ports)
    for name, host in market.hosts.items():
        print(f"# {name}: {host.base_url}", flush=True)
    for name, value in market.env().items():
        print(f"{name}={shlex.quote(value)}", flush=True)  # EDGE_SOURCES is JSON: quoted for shells and .env
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    market.stop()


def run_llm() -> None:
    """`python -m fakes llm`: the fake OpenAI-compatible chat server on 127.0.0.1:12130; prints its settings."""
    from fakes.base import FakeRunner
    from fakes.llm import FakeLlm

    server = FakeLlm()
    runner = FakeRunner(server, ports={"llm": int(os.environ.get("LLM_FAKE_PORT", "12130"))}).start()
    print(f"LLM_BASE_URL={server.base}\nLLM_API_KEY={server.api_key}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    runner.stop()


def main() -> None:
    """Start the fakes and print `.env` lines for them (`python -m fakes marketplace`: the marketplace)."""
    if sys.argv[1:2] == ["marketplace"]:
        return run_marketplace()
    if sys.argv[1:2] == ["llm"]:
        return run_llm()
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
