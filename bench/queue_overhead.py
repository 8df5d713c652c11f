"""What Backroom costs on top of bare Dramatiq: drain rate, enqueue throughput via the API, pickup latency.

Run from the repo root with no arguments: `python bench/queue_overhead.py`. It starts its own
redis-server and embedded Postgres (like the tests), real `dramatiq` worker processes and a
real hypercorn, and ends with one `bench: queue_overhead ...` line. BENCH_JOBS overrides the
backlog size (default 30000) and BENCH_ROUNDS the number of drain rounds (default 3).
Section 4 attaches a replica (`--replicaof`) and measures what REDIS_WAIT_REPLICAS=1 costs.
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
import uuid
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
from broker.replication import replica_wait  # noqa: E402
from cli.stack import RedisProcess, free_port  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "30000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SEND_SECONDS = 5.0
API_TURNS = 3  # raw send() and API load measured in turns (see main)
API_CONCURRENCY = 32
PICKUPS = 200
ENQUEUE_THREADS = 4
NAMESPACES = {"backroom": "bench_backroom", "bare": "bench_bare"}
MODULES = {"backroom": "_noop_backroom", "bare": "_noop_bare"}
PING_KWARGS = {"message": "pong", "fail": False, "sleep_ms": 0}  # what `POST /v1/jobs/ping {}` enqueues

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
        self.extra_env: dict[str, str] = {}  # for the workers and API servers started next (section 4)

    def worker(self, kind: str, processes: int) -> Child:
        """Start `dramatiq MODULE --processes P --threads 8 --queues bench`."""
        args = [str(BIN / "dramatiq"), MODULES[kind], "--path", str(BENCH_DIR),
                "--processes", str(processes), "--threads", "8", "--queues", "bench"]
        return self.stack.spawn(f"worker-{kind}", args, self.stack.env(**self.extra_env))

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
            done = wait_until(lambda: self.count_succeeded(keys=[f"{ns}:jobs"], args=[f"{ns}:job:"]) == jobs,
                              timeout=60, interval=0.02, what="every job record to read 'succeeded'")
            say(f"  backroom: last job record written {1000 * (done - acked):.0f} ms after the last ack")
        dead = self.client.zcard(f"{ns}:bench.XQ")
        child.stop()
        if dead:
            raise RuntimeError(f"{kind}: {dead} no-op jobs were dead-lettered")
        assert first_ack is not None
        rate = jobs / (done - first_ack)
        say(f"  {kind}: drained {jobs} in {done - first_ack:.2f}s from the first ack = {rate:,.0f} jobs/s "
            f"({jobs / (done - spawned):,.0f} jobs/s counting the {first_ack - spawned:.2f}s worker start-up)")
        return rate

    # -- 2. enqueue throughput -----------------------------------------------------------------
    def raw_send(self) -> float:
        """`ping.send_with_options()` in a loop on one thread, as the API handler calls it; returns jobs/s."""
        import actors  # noqa: F401  (builds the API's broker from the same settings)
        from actors.ops import ping

        self.client.flushdb()
        for _ in range(200):  # warm-up: connections, script loading
            ping.send_with_options(kwargs=PING_KWARGS, request_id=uuid.uuid4().hex)
        sent, started = 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < SEND_SECONDS:
            ping.send_with_options(kwargs=PING_KWARGS, request_id=uuid.uuid4().hex)
            sent += 1
        self.client.flushdb()
        return sent / elapsed

    @contextmanager
    def api_server(self, workers: int) -> Iterator[tuple[str, Child]]:
        """hypercorn with `workers` processes, as the Procfile's `web` runs it; yields its base URL."""
        port = free_port()
        args = [str(BIN / "hypercorn"), "web.asgi:app", "--worker-class", "uvloop", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--read-timeout", "60"]  # as the Procfile's `web` runs it
        child = self.stack.spawn(f"api-{workers}w", args, self.stack.env(**self.extra_env))
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _healthy(base) or not child.alive(), timeout=60, interval=0.2, what="API /healthz")
            if not child.alive():
                raise RuntimeError(f"hypercorn exited:\n{child.tail()}")
            yield base, child
        finally:
            child.stop()

    def api_load(self, base: str, child: Child, token: str, workers: int) -> float:
        """Count 202s per second under load (`API_CONCURRENCY` requests in flight)."""
        self.client.flushdb()
        # wrk (C) when installed: the load generator then costs the 2 cores far less than aiohttp does
        hammer = _wrk if shutil.which("wrk") else _hammer
        counts, elapsed, latencies = asyncio.run(hammer(f"{base}/v1/jobs/ping", token))
        rate = counts[202] / elapsed
        others = {status: n for status, n in counts.items() if status != 202}
        say(f"  api --workers {workers}: {rate:,.0f} 202/s over {elapsed:.1f}s with {API_CONCURRENCY} in flight, "
            f"latency p50 {latencies[0]:.1f} ms p99 {latencies[1]:.1f} ms"
            + (f", other answers (0 = no answer) {others}" if others else ""))
        if others:
            say(f"  end of the API log:\n{child.tail()}")
        self.client.flushdb()
        return rate

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
        say(f"  {kind}: pickup p50 {percentile(waits, 50):.1f} ms, p90 {percentile(waits, 90):.1f} ms, "
            f"p99 {percentile(waits, 99):.1f} ms, max {max(waits):.1f} ms over {len(waits)} jobs")
        return waits


    # -- 4. waiting for a replica -------------------------------------------------------------
    def replica_cost(self, token: str) -> dict[str, float]:
        """Raw send(), the API and the drain rate without and with REDIS_WAIT_REPLICAS=1, in turns."""
        import actors

        assert self.stack.redis is not None
        replica = RedisProcess(self.stack.root / "replica",
                               extra_args=("--replicaof", "127.0.0.1", str(self.stack.redis.port))).start()
        figures: dict[str, list[float]] = {}
        try:
            link = redis.Redis.from_url(replica.url)
            wait_until(lambda: link.info("replication")["master_link_status"] == "up", timeout=60, what="replica")
            link.close()
            for turn in range(2):
                for replicas in ((0, 1) if turn == 0 else (1, 0)):
                    actors.broker.replica_wait = replica_wait(replicas, 500)
                    self.extra_env = {"REDIS_WAIT_REPLICAS": str(replicas)}
                    self.client.config_resetstat()
                    figures.setdefault(f"send{replicas}", []).append(self.raw_send())
                    figures.setdefault(f"drain{replicas}", []).append(self.drain("backroom", max(1000, JOBS // 5)))
                    with self.api_server(2) as (base, child):
                        figures.setdefault(f"api{replicas}", []).append(self.api_load(base, child, token, 2))
                    waits = self.client.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
                    say(f"  REDIS_WAIT_REPLICAS={replicas}: raw send() {figures[f'send{replicas}'][-1]:,.0f} jobs/s; "
                        f"{waits} WAIT(s) in this turn (send, drain and API)")
        finally:
            actors.broker.replica_wait = None
            self.extra_env = {}
            replica.stop(kill=True)
        return {name: statistics.mean(values) for name, values in figures.items()}


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
        out = subprocess.run([*args[:1], "-d", f"{SEND_SECONDS:.0f}s", *args[1:]], capture_output=True, text=True,
                             check=True).stdout
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
                except (aiohttp.ClientError, asyncio.TimeoutError):
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


def main() -> None:
    """Run the three measurements side by side and print the summary line last."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")  # pgserver's platformdirs, harmless
    say(f"queue_overhead: {JOBS} no-op jobs x {ROUNDS} rounds, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, dramatiq {dramatiq.__version__}, {_load()}")
    stack = Stack()
    try:
        say("starting redis-server and embedded Postgres ...")
        stack.start_redis()
        stack.start_postgres()
        token = create_token(stack.database_url)
        os.environ.update(stack.env(REDIS_NAMESPACE=NAMESPACES["backroom"], BENCH_BARE_NAMESPACE=NAMESPACES["bare"]))
        bench = Bench(stack)

        say("1. drain rate: 2 worker processes x 8 threads, backlog enqueued first; Backroom = build_broker() "
            "with JobTracking, Retries(bounded), AsyncIO, CurrentMessage, Periodiq; Prometheus off (METRICS_PORT=0)")
        rates: dict[str, list[float]] = {"backroom": [], "bare": []}
        for round_ in range(ROUNDS):
            for kind in (("backroom", "bare") if round_ % 2 == 0 else ("bare", "backroom")):
                rates[kind].append(bench.drain(kind, JOBS))
        backroom_s, bare_s = (statistics.mean(rates[k]) for k in ("backroom", "bare"))
        say(f"  => backroom {backroom_s:,.0f} jobs/s, bare {bare_s:,.0f} jobs/s, ratio {backroom_s / bare_s:.2f} "
            f"(target >= 0.8; mean of {ROUNDS} round(s))")

        say("2. enqueue throughput: raw send() on one thread vs POST /v1/jobs/ping "
            f"(load from {'wrk' if shutil.which('wrk') else 'aiohttp (install wrk for a lighter load generator)'})")
        # The API is CPU-bound and raw send() bound by round trips, so a slow spell of the shared machine
        # hits them unequally: they are measured in turns (raw, API, raw, ... raw) on one API server,
        # and each figure is the mean of its turns.
        raws, apis = [], []
        with bench.api_server(2) as (base, child):
            for _ in range(API_TURNS):
                raws.append(bench.raw_send())
                say(f"  raw send(): {raws[-1]:,.0f} jobs/s")
                apis.append(bench.api_load(base, child, token, 2))
            raws.append(bench.raw_send())
        say(f"  raw send(): {raws[-1]:,.0f} jobs/s")
        with bench.api_server(1) as (base, child):
            api_1 = bench.api_load(base, child, token, 1)
        raw_s, api_2 = statistics.mean(raws), statistics.mean(apis)
        say(f"  => api (2 workers, the Procfile default) {api_2:,.0f} 202/s (mean of {API_TURNS}), raw send() "
            f"{raw_s:,.0f} jobs/s (mean of {len(raws)}): {api_2 / raw_s:.2f} (target >= 0.5); "
            f"turn by turn {' '.join(f'{a / r:.2f}' for a, r in zip(apis, raws))}; "
            f"with --workers 1: {api_1 / raw_s:.2f}")

        say("3. pickup latency: one idle worker process, one job every 20-50 ms")
        waits = {kind: bench.pickup(kind) for kind in ("backroom", "bare")}

        say("4. REDIS_WAIT_REPLICAS=1 against 0, a replica (--replicaof) on this host, in turns (mean of 2)")
        wait = bench.replica_cost(token)
        say(f"  => with WAIT: raw send() {wait['send1']:,.0f} vs {wait['send0']:,.0f} jobs/s "
            f"({wait['send1'] / wait['send0']:.2f}), API {wait['api1']:,.0f} vs {wait['api0']:,.0f} 202/s "
            f"({wait['api1'] / wait['api0']:.2f}), drain {wait['drain1']:,.0f} vs {wait['drain0']:,.0f} jobs/s "
            f"({wait['drain1'] / wait['drain0']:.2f})")
        say(f"done, {_load()}")
    finally:
        say("stopping children and services ...")
        stack.stop()

    p50, p99 = percentile(waits["backroom"], 50), percentile(waits["backroom"], 99)
    print(f"bench: queue_overhead backroom_jobs_s={backroom_s:.0f} bare_jobs_s={bare_s:.0f} "
          f"ratio={backroom_s / bare_s:.2f} api_202_s={api_2:.0f} raw_send_s={raw_s:.0f} "
          f"api_ratio={api_2 / raw_s:.2f} pickup_p50_ms={p50:.1f} pickup_p99_ms={p99:.1f} "
          f"wait_send_ratio={wait['send1'] / wait['send0']:.2f} wait_api_ratio={wait['api1'] / wait['api0']:.2f} "
          f"wait_drain_ratio={wait['drain1'] / wait['drain0']:.2f}", flush=True)


if __name__ == "__main__":
    main()
