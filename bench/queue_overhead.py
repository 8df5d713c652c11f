"""What Backroom costs on top of bare Dramatiq: drain rate, its enqueue API against a minimal one, pickup latency.

Run from the repo root with no arguments: `python bench/queue_overhead.py`. It starts its own
redis-server and embedded Postgres (like the tests), real `dramatiq` worker processes and two
real hypercorns on the same settings: Backroom's API (`web.asgi:app`, as the Procfile runs it)
and `bench/_minimal_api.py` (what a user would write instead: Quart, pydantic, bare Dramatiq's
`send()`). It ends with one `bench: queue_overhead ...` line. BENCH_JOBS overrides the backlog
size (default 30000) and BENCH_ROUNDS the number of drain rounds (default 3).
"""

from __future__ import annotations

import asyncio
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

# `python bench/x.py` puts bench/ on the path; the repo root too, so top-level packages the
# editable install does not map yet (e.g. a freshly added one) still import
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import dramatiq  # noqa: E402
import redis  # noqa: E402

from _noop_actors import PICKUP_KEY  # noqa: E402
from _services import BENCH_DIR, BIN, Child, Stack, create_token, percentile, say, wait_until  # noqa: E402
from cli.stack import free_port  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "30000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SEND_SECONDS = 5.0
API_TURNS = 3  # the two APIs are loaded in alternating turns (see main)
API_CONCURRENCY = 32
API_WORKERS = 2  # hypercorn --workers, as the Procfile's `web` runs it
APPS = {"backroom": "web.asgi:app", "minimal": "_minimal_api:app"}
PICKUPS = 200
ENQUEUE_THREADS = 4
NAMESPACES = {"backroom": "bench_backroom", "bare": "bench_bare"}
MODULES = {"backroom": "_noop_backroom", "bare": "_noop_bare"}

# Counts the job records the tracking middleware has marked succeeded (run only once the queue is drained).
COUNT_SUCCEEDED = """
local ids = redis.call('zrange', KEYS[1], 0, -1)
local n = 0
for i = 1, #ids do
  if redis.call('hget', ARGV[1] .. ids[i], 'status') == 'succeeded' then n = n + 1 end
end
return n
"""


class Bench:
    """One bench run: the services, the brokers (imported after the environment is set) and the figures."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = redis.Redis.from_url(stack.redis.url)  # type: ignore[union-attr]
        self.count_succeeded = self.client.register_script(COUNT_SUCCEEDED)
        import _noop_backroom
        import _noop_bare

        self.actors = {"backroom": _noop_backroom, "bare": _noop_bare}

    def worker(self, kind: str, processes: int) -> Child:
        """Start `dramatiq MODULE --processes P --threads 8 --queues bench`."""
        args = [
            str(BIN / "dramatiq"),
            MODULES[kind],
            "--path",
            str(BENCH_DIR),
            "--processes",
            str(processes),
            "--threads",
            "8",
            "--queues",
            "bench",
        ]
        return self.stack.spawn(f"worker-{kind}", args, self.stack.env())

    # -- 1. drain rate -------------------------------------------------------------------------
    def drain(self, kind: str, jobs: int) -> float:
        """Enqueue `jobs` no-ops, then time real worker processes draining them; returns jobs/s."""
        self.client.flushdb()
        ns = NAMESPACES[kind]
        noop: dramatiq.Actor = self.actors[kind].noop
        started = time.monotonic()
        with ThreadPoolExecutor(ENQUEUE_THREADS) as pool:  # not timed; threads only shorten the run
            list(pool.map(lambda share: [noop.send() for _ in range(share)], _shares(jobs, ENQUEUE_THREADS)))
        say(f"  {kind}: enqueued {jobs} in {time.monotonic() - started:.1f}s; starting 2x8 workers")
        messages, queue = f"{ns}:bench.msgs", f"{ns}:bench"
        assert self.client.hlen(messages) == jobs, "backlog not fully enqueued"

        child = self.worker(kind, processes=2)
        spawned = time.monotonic()
        first_ack = acked = None
        deadline, report = spawned + max(120.0, jobs / 100), spawned + 3
        while acked is None:
            # a message leaves `.msgs` only when acked, i.e. after the actor and every after_* hook ran
            left = self.client.hlen(messages)
            now = time.monotonic()
            if first_ack is None and left < jobs:
                first_ack = now
            if left == 0 and self.client.llen(queue) == 0:
                acked = now
            elif not child.alive():
                raise RuntimeError(f"{kind} worker exited early:\n{child.tail()}")
            elif now > deadline:
                raise TimeoutError(f"{kind}: {left} of {jobs} jobs still unacked after {now - spawned:.0f}s")
            elif now > report:
                say(f"  {kind}: {jobs - left}/{jobs} done after {now - spawned:.1f}s")
                report = now + 3
            time.sleep(0.01)
        done = acked
        if kind == "backroom":
            done = wait_until(
                lambda: self.count_succeeded(keys=[f"{ns}:jobs"], args=[f"{ns}:job:"]) == jobs,
                timeout=60,
                interval=0.02,
                what="every job record to read 'succeeded'",
            )
            say(f"  backroom: last job record written {1000 * (done - acked):.0f} ms after the last ack")
        dead = self.client.zcard(f"{ns}:bench.XQ")
        child.stop()
        if dead:
            raise RuntimeError(f"{kind}: {dead} no-op jobs were dead-lettered")
        assert first_ack is not None
        rate = jobs / (done - first_ack)
        say(
            f"  {kind}: drained {jobs} in {done - first_ack:.2f}s from the first ack = {rate:,.0f} jobs/s "
            f"({jobs / (done - spawned):,.0f} jobs/s counting the {first_ack - spawned:.2f}s worker start-up)"
        )
        return rate

    # -- 2. the enqueue API against a minimal one ------------------------------------------------
    @contextmanager
    def api_server(self, kind: str) -> Iterator[tuple[str, Child]]:
        """hypercorn serving `APPS[kind]` with the Procfile's `web` settings; yields its base URL."""
        port = free_port()
        args = [
            str(BIN / "hypercorn"),
            APPS[kind],
            "--worker-class",
            "uvloop",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(API_WORKERS),
            "--read-timeout",
            "60",
        ]  # as the Procfile's `web` runs it
        child = self.stack.spawn(f"api-{kind}", args, self.stack.env())
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _healthy(base) or not child.alive(), timeout=60, interval=0.2, what="API /healthz")
            if not child.alive():
                raise RuntimeError(f"hypercorn exited:\n{child.tail()}")
            yield base, child
        finally:
            child.stop()

    def api_load(self, kind: str, base: str, child: Child, token: str) -> float:
        """Count 202s per second at peak (`API_CONCURRENCY` requests in flight, each sent when one is answered)."""
        self.client.flushdb()
        # wrk (C) when installed: the load generator then costs the 2 cores far less than aiohttp does
        hammer = _wrk if shutil.which("wrk") else _hammer
        counts, elapsed, latencies = asyncio.run(hammer(f"{base}/v1/jobs/ping", token))
        rate = counts[202] / elapsed
        others = {status: n for status, n in counts.items() if status != 202}
        say(
            f"  {kind}: {rate:,.0f} 202/s over {elapsed:.1f}s with {API_CONCURRENCY} in flight, "
            f"latency p50 {latencies[0]:.1f} ms p99 {latencies[1]:.1f} ms"
            + (f", other answers (0 = no answer) {others}" if others else "")
        )
        if others:
            say(f"  end of the API log:\n{child.tail()}")
        self.client.flushdb()
        return rate

    def paced_load(self, kind: str, base: str, child: Child, token: str, rate: float) -> list[float]:
        """Send `rate` requests a second whatever the answers (open loop); returns the 202s' latencies in ms."""
        self.client.flushdb()
        counts, latencies = asyncio.run(_paced(f"{base}/v1/jobs/ping", token, rate))
        others = {status: n for status, n in counts.items() if status != 202}
        say(
            f"  {kind} at {rate:,.0f} requests/s: p50 {percentile(latencies, 50):.1f} ms, "
            f"p99 {percentile(latencies, 99):.1f} ms, max {max(latencies, default=float('nan')):.1f} ms "
            f"over {len(latencies)} 202s" + (f", other answers (0 = no answer) {others}" if others else "")
        )
        if others:
            say(f"  end of the API log:\n{child.tail()}")
        self.client.flushdb()
        return latencies

    # -- 3. pickup latency ---------------------------------------------------------------------
    def pickup(self, kind: str) -> list[float]:
        """Trickle jobs at one idle worker process; returns send-to-start latencies in ms."""
        self.client.flushdb()
        pickup: dramatiq.Actor = self.actors[kind].pickup
        child = self.worker(kind, processes=1)
        try:
            # ready once a job round-trips; then let it go idle (consumers back off when idle)
            probe_deadline = time.monotonic() + 60
            while self.client.llen(PICKUP_KEY) == 0:
                if not child.alive() or time.monotonic() > probe_deadline:
                    raise RuntimeError(f"{kind} worker never picked up the probe job:\n{child.tail()}")
                pickup.send(time.time())
                time.sleep(0.5)
            time.sleep(1.0)
            self.client.delete(PICKUP_KEY)
            gaps = random.Random(20240501)
            for _ in range(PICKUPS):
                pickup.send(time.time())
                time.sleep(gaps.uniform(0.02, 0.05))
            wait_until(lambda: self.client.llen(PICKUP_KEY) >= PICKUPS, timeout=30, what=f"{PICKUPS} pickups")
            waits = [float(raw) * 1000 for raw in self.client.lrange(PICKUP_KEY, 0, -1)]
        finally:
            child.stop()
        say(
            f"  {kind}: pickup p50 {percentile(waits, 50):.1f} ms, p90 {percentile(waits, 90):.1f} ms, "
            f"p99 {percentile(waits, 99):.1f} ms, max {max(waits):.1f} ms over {len(waits)} jobs"
        )
        return waits


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min)"


def _shares(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


async def _wrk(url: str, token: str, warmup: float = 1.0) -> tuple[Counter[int], float, tuple[float, float]]:
    """The same load as `_hammer` (`API_CONCURRENCY` connections posting `{}`), generated by wrk."""
    script = BENCH_DIR / ".wrk_post.lua"
    script.write_text(WRK_SCRIPT.replace("TOKEN", token))
    try:
        args = ["wrk", "-t", "1", "-c", str(API_CONCURRENCY), "-s", str(script), url]
        subprocess.run([*args[:1], "-d", f"{warmup:.0f}s", *args[1:]], capture_output=True, check=True)
        out = subprocess.run(
            [*args[:1], "-d", f"{SEND_SECONDS:.0f}s", *args[1:]], capture_output=True, text=True, check=True
        ).stdout
    finally:
        script.unlink(missing_ok=True)
    found = re.search(r"BENCH (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    requests, duration_us, non_2xx, socket_errors, p50_us, p99_us = (int(x) for x in found.groups())
    # wrk counts non-2xx/3xx answers; the only 2xx this endpoint gives is 202
    counts: Counter[int] = Counter({202: requests - non_2xx, -1: non_2xx, 0: socket_errors})
    return +counts, duration_us / 1e6, (p50_us / 1000, p99_us / 1000)


async def _hammer(url: str, token: str, warmup: float = 1.0) -> tuple[Counter[int], float, tuple[float, float]]:
    """POST `{}` with `API_CONCURRENCY` requests in flight; count answers finished inside the window."""
    import aiohttp

    counts: Counter[int] = Counter()
    latencies: list[float] = []
    state = {"measuring": False, "stop": False}
    headers = {"Authorization": f"Bearer {token}"}
    connector = aiohttp.TCPConnector(limit=API_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def client() -> None:
            while not state["stop"]:
                started = time.perf_counter()
                try:
                    async with session.post(url, json={}, headers=headers) as response:
                        await response.read()
                    status = response.status
                except (TimeoutError, aiohttp.ClientError):
                    status = 0  # no HTTP answer at all
                    await asyncio.sleep(0.01)
                if state["measuring"]:
                    counts[status] += 1
                    latencies.append((time.perf_counter() - started) * 1000)

        tasks = [asyncio.create_task(client()) for _ in range(API_CONCURRENCY)]
        await asyncio.sleep(warmup)
        state["measuring"], started = True, time.monotonic()
        await asyncio.sleep(SEND_SECONDS)
        state["measuring"], elapsed = False, time.monotonic() - started
        state["stop"] = True
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    return counts, elapsed, (percentile(latencies, 50), percentile(latencies, 99))


async def _paced(url: str, token: str, rate: float, warmup: float = 1.0) -> tuple[Counter[int], list[float]]:
    """POST `{}` `rate` times a second for `warmup` + SEND_SECONDS s, each on schedule whether or not earlier ones
    were answered (an open loop: a slow answer does not slow the load, as with real clients); counts answers and
    times the 202s after the warm-up, from when each request was due."""
    import aiohttp

    counts: Counter[int] = Counter()
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def one(due: float, measured: bool) -> None:
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                async with session.post(url, data=b"{}", headers=headers) as response:
                    await response.read()
                status = response.status
            except (TimeoutError, aiohttp.ClientError):
                status = 0  # no HTTP answer at all
            if measured:
                counts[status] += 1
                if status == 202:
                    latencies.append((loop.time() - due) * 1000)

        start, warm = loop.time() + 0.1, int(rate * warmup)
        await asyncio.gather(*(one(start + i / rate, i >= warm) for i in range(int(rate * (warmup + SEND_SECONDS)))))
    return counts, latencies


def main() -> None:
    """Run the three measurements side by side and print the summary line last."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # pgserver's platformdirs, harmless
    say(
        f"queue_overhead: {JOBS} no-op jobs x {ROUNDS} rounds, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, dramatiq {dramatiq.__version__}, {_load()}"
    )
    stack = Stack()
    try:
        say("starting redis-server and embedded Postgres ...")
        stack.start_redis()
        stack.start_postgres()
        token = create_token(stack.database_url)
        os.environ.update(stack.env(REDIS_NAMESPACE=NAMESPACES["backroom"], BENCH_BARE_NAMESPACE=NAMESPACES["bare"]))
        bench = Bench(stack)

        say(
            "1. drain rate: 2 worker processes x 8 threads, backlog enqueued first; Backroom = build_broker() "
            "with JobTracking, Retries(bounded), AsyncIO, CurrentMessage, Periodiq; Prometheus off (METRICS_PORT=0)"
        )
        rates: dict[str, list[float]] = {"backroom": [], "bare": []}
        for round_ in range(ROUNDS):
            for kind in ("backroom", "bare") if round_ % 2 == 0 else ("bare", "backroom"):
                rates[kind].append(bench.drain(kind, JOBS))
        backroom_s, bare_s = (statistics.mean(rates[k]) for k in ("backroom", "bare"))
        say(
            f"  => backroom {backroom_s:,.0f} jobs/s, bare {bare_s:,.0f} jobs/s, ratio {backroom_s / bare_s:.2f} "
            f"(target >= 0.8; mean of {ROUNDS} round(s))"
        )

        say(
            f"2. POST /v1/jobs/ping {{}}: Backroom's API (bearer token, validation, job record) against "
            f"bench/_minimal_api.py (pydantic, bare Dramatiq send()), both on hypercorn --worker-class uvloop "
            f"--workers {API_WORKERS}; load from "
            f"{'wrk' if shutil.which('wrk') else 'aiohttp (install wrk for a lighter load generator)'}"
        )
        # The shared machine's slow spells would favour whichever API ran in a quiet one, so both
        # servers stay up and take turns (backroom, minimal, minimal, backroom, ...); each figure is
        # the mean of its turns.
        peaks: dict[str, list[float]] = {"backroom": [], "minimal": []}
        half: dict[str, list[float]] = {"backroom": [], "minimal": []}
        with bench.api_server("backroom") as backroom_api, bench.api_server("minimal") as minimal_api:
            servers = {"backroom": backroom_api, "minimal": minimal_api}
            for turn in range(API_TURNS):
                for kind in ("backroom", "minimal") if turn % 2 == 0 else ("minimal", "backroom"):
                    peaks[kind].append(bench.api_load(kind, *servers[kind], token))
            api_s, minimal_s = statistics.mean(peaks["backroom"]), statistics.mean(peaks["minimal"])
            say(
                f"  => peak: backroom {api_s:,.0f} 202/s, minimal {minimal_s:,.0f} 202/s (means of {API_TURNS}): "
                f"{api_s / minimal_s:.2f} (target >= 1.0); turn by turn "
                f"{' '.join(f'{a / m:.2f}' for a, m in zip(peaks['backroom'], peaks['minimal']))}"
            )
            paced = api_s / 2
            say(f"  latency at half of Backroom's peak ({paced:,.0f} requests/s, open loop, from when each was due)")
            for kind in ("backroom", "minimal", "minimal", "backroom"):
                half[kind] += bench.paced_load(kind, *servers[kind], token, paced)
        p99_half = percentile(half["backroom"], 99)
        say(
            f"  => p99 at {paced:,.0f} requests/s: backroom {p99_half:.1f} ms (target <= 20), "
            f"minimal {percentile(half['minimal'], 99):.1f} ms (2 turns each, pooled)"
        )

        say("3. pickup latency: one idle worker process, one job every 20-50 ms")
        waits = {kind: bench.pickup(kind) for kind in ("backroom", "bare")}
        say(f"done, {_load()}")
    finally:
        say("stopping children and services ...")
        stack.stop()

    p50, p99 = percentile(waits["backroom"], 50), percentile(waits["backroom"], 99)
    print(
        f"bench: queue_overhead backroom_jobs_s={backroom_s:.0f} bare_jobs_s={bare_s:.0f} "
        f"ratio={backroom_s / bare_s:.2f} api_202_s={api_s:.0f} minimal_202_s={minimal_s:.0f} "
        f"api_vs_minimal={api_s / minimal_s:.2f} api_p99_half_ms={p99_half:.1f} "
        f"pickup_p50_ms={p50:.1f} pickup_p99_ms={p99:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
