"""What every fake shares: an aiohttp app on 127.0.0.1, call counts, and injectable failures.

Failures are queued per route name (`fail_next("send", 429, retry_after=1)`) and served
in the provider's own error shape; `hang_next` answers late (a client timeout) and
`drop_next` closes the connection without an answer. Tests drive the fakes from their own
thread, so the shared state is guarded by a lock.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Fault:
    """One queued failure of a route."""

    status: int = 500
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0
    drop: bool = False


class FakeServer:
    """Base of the fakes: subclasses add routes in `routes()` and an `error()` in their provider's shape."""

    name = "fake"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.base_url = ""

    # --- failure injection (called from tests) ---
    def fail_next(
        self,
        route: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` calls of `route` answer `status` (in the provider's error shape unless `body`)."""
        with self.lock:
            for _ in range(times):
                self.faults[route].append(Fault(status, retry_after, body, dict(headers or {})))

    def hang_next(self, route: str, seconds: float, *, times: int = 1) -> None:
        """The next `times` calls of `route` wait `seconds` before doing their work (a client timeout)."""
        with self.lock:
            for _ in range(times):
                self.faults[route].append(Fault(status=0, hang_s=seconds))

    def drop_next(self, route: str, *, times: int = 1) -> None:
        """The next `times` calls of `route` get the connection closed, with no answer."""
        with self.lock:
            for _ in range(times):
                self.faults[route].append(Fault(status=0, drop=True))

    def reset(self) -> None:
        """Forget calls, faults and state (tests call this first)."""
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.reset_state()

    def reset_state(self) -> None:
        """Subclasses forget their provider state here."""

    # --- used by handlers ---
    async def inject(self, route: str, request: web.Request) -> web.StreamResponse | None:
        """Count the call; serve a queued failure for `route` if there is one."""
        with self.lock:
            self.calls[route] += 1
            fault = self.faults[route].popleft() if self.faults[route] else None
        if fault is None:
            return None
        if fault.drop:
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        if fault.hang_s:
            await request.read()  # keep the body: the client may hang up while we wait
            await asyncio.sleep(fault.hang_s)
            return None  # then do the work: the client may have given up, the provider did it anyway
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers.setdefault("Retry-After", f"{fault.retry_after:g}")
        body = fault.body if fault.body is not None else self.error(fault.status, fault.retry_after)
        return web.json_response(body, status=fault.status, headers=headers)

    def error(self, status: int, retry_after: float | None) -> Any:
        """The provider's error body for `status`."""
        return {"error": f"fake {self.name} error {status}"}

    def routes(self) -> list[web.RouteDef]:
        """The provider's endpoints."""
        raise NotImplementedError

    def app(self) -> web.Application:
        """An aiohttp application serving `routes()`."""
        app = web.Application()
        app.add_routes(self.routes())
        return app


class FakeRunner:
    """Runs fakes on 127.0.0.1 in a background thread with an event loop of its own."""

    def __init__(self, *fakes: FakeServer, ports: dict[str, int] | None = None) -> None:
        self.fakes = fakes
        self.ports = ports or {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakes", daemon=True)
        self.runners: list[web.AppRunner] = []

    def start(self) -> FakeRunner:
        """Start every fake; each one's `base_url` is set once this returns."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        for fake in self.fakes:
            runner = web.AppRunner(fake.app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", self.ports.get(fake.name, 0))
            await site.start()
            port = runner.addresses[0][1]
            fake.base_url = f"http://127.0.0.1:{port}"
            self.runners.append(runner)

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        """Run `coroutine` on the fakes' loop (e.g. to send a webhook) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def stop(self) -> None:
        """Stop the servers and the thread."""

        async def cleanup() -> None:
            for runner in self.runners:
                await runner.cleanup()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(cleanup(), self.loop).result(timeout=30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
