"""Dead-worker recovery: SIGKILL the worker process running a job, time until the job starts again.

Run from the repo root with no arguments: `python bench/recovery.py` (about 4.5 minutes).
It starts its own redis-server in a temp dir (like the tests), no database (the Backroom
workers only log that their pool to the dummy DATABASE_URL cannot open), and three pools:

- Backroom: `backroom worker -p 2 -t 2 --module bench._recovery_actors` with the default
  settings (WORKER_HEARTBEAT_TIMEOUT_MS 20000, reaper every 5 s). BENCH_RECOVERY_SAMPLES
  (default 5) jobs, one at a time: the job records its start (time, pid) and sleeps 30 s,
  the bench SIGKILLs the worker process running it and waits for the second start record.
- Bare Dramatiq, idle: `dramatiq bench._recovery_bare --processes 2 --threads 2` on a plain
  RedisBroker with its defaults (heartbeat_timeout 60 s, maintenance_chance 0.1%), run under
  a restart loop (Dramatiq's master exits when one of its children dies; the loop starts a
  new master, as systemd `Restart=always` would). One sample, capped at
  BENCH_RECOVERY_BARE_CAP_S (default 240 s): a cap hit is reported as `bare_s=<cap>
  bare_capped=1`, a lower bound. It runs concurrently with the Backroom samples (other
  namespace, so neither changes the other's recovery path).
- Bare Dramatiq, loaded: the same, in a third namespace, while a thread enqueues ~100 no-op
  messages/s to the victim's queue (each enqueue and fetch rolls the 0.1% maintenance).
  One sample, capped at BENCH_RECOVERY_LOADED_CAP_S (default 120 s); run after the Backroom
  samples.

The delta of a sample is (second start record's time) - (time the bench sent SIGKILL).
Ends with one line: `bench: recovery backroom_s=.. bare_s=.. bare_capped=0|1 bare_loaded_s=.. bare_loaded_capped=0|1`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/recovery.py` puts bench/ first; we import bench._recovery_*

import psutil  # noqa: E402
import redis  # noqa: E402

from bench._recovery_common import declare_bare, release_key, starts_key  # noqa: E402
from cli.stack import RedisProcess  # noqa: E402

BACKROOM_SAMPLES = int(os.environ.get("BENCH_RECOVERY_SAMPLES", "5"))
BACKROOM_CAP_S = 120.0
BARE_CAP_S = float(os.environ.get("BENCH_RECOVERY_BARE_CAP_S", "240"))
LOADED_CAP_S = float(os.environ.get("BENCH_RECOVERY_LOADED_CAP_S", "120"))
LOAD_RATE = 100.0  # no-op messages per second in the loaded bare run
JOB_SECONDS = 30.0
MIN_REDIS_UPTIME_S = 15.0  # Backroom's reaper waits 1.5 heartbeat timeouts after a Redis (re)start
DUMMY_DATABASE_URL = "postgresql://bench@127.0.0.1:1/unused"  # Settings need one; nothing listens there
NAMESPACES = {"idle": "bench_recovery_idle", "loaded": "bench_recovery_loaded"}
# the environment must not change the settings under test
SCRUB = (
    "WORKER_HEARTBEAT_TIMEOUT_MS",
    "POISON_THRESHOLD",
    "REDIS_NAMESPACE",
    "REDIS_SENTINELS",
    "SENTRY_DSN",
    "WORKER_PROCESSES",
    "WORKER_THREADS",
    "BENCH_RECOVERY_NS",
)
T0 = time.monotonic()


def say(line: str) -> None:
    """One progress line, stamped with the seconds since the bench started."""
    print(f"[{time.monotonic() - T0:6.1f}s] {line}", flush=True)


class BenchError(RuntimeError):
    """A step of the bench did not happen in time."""


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll `predicate` until truthy (returning its value) or `timeout` passes (returning None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def starts(client: redis.Redis, tag: str) -> list[dict[str, Any]]:
    """The start records of the job tagged `tag` (time, pid), oldest first."""
    return [json.loads(raw) for raw in client.lrange(starts_key(tag), 0, -1)]


def running(pid: int) -> bool:
    """True while `pid` is a live (non-zombie) process."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# --- child processes ---------------------------------------------------------------------------


class Tree:
    """A child started in a session of its own; every descendant ever seen is remembered.

    Backroom's supervisor puts each Dramatiq master in a session of its own, and a master
    whose child died may leave orphans: the final kill uses this record, not the process
    group of the leader alone (each pid is checked against its creation time first).
    """

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.seen: dict[int, float] = {}
        self.lock = threading.Lock()
        self.snapshot()

    def snapshot(self) -> None:
        """Remember the leader and all its current descendants."""
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        with self.lock:
            for proc in procs:
                try:
                    self.seen.setdefault(proc.pid, proc.create_time())
                except psutil.Error:
                    pass

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float) -> None:
        """SIGTERM the leader (it stops its children gracefully), then SIGKILL whatever is left."""
        self.snapshot()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                say(f"  {self.name}: no clean exit within {grace:.0f}s, killing")
        self.kill()

    def kill(self) -> None:
        """SIGKILL every remembered process still alive (and the process groups they lead)."""
        self.snapshot()
        with self.lock:
            items = list(self.seen.items())
        for pid, created in items:
            try:
                proc = psutil.Process(pid)
                if proc.create_time() != created:
                    continue  # the pid was reused by someone else
                try:
                    if os.getpgid(pid) == pid:
                        os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.kill()
            except psutil.Error:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            say(f"  {self.name}: pid {self.process.pid} survived SIGKILL?")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class RestartLoop:
    """Keeps one Dramatiq master running: starts a new one 0.5 s after the previous one exits."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.args, self.env, self.log = name, args, env, log
        self.trees: list[Tree] = []
        self.exits: list[tuple[float, int | None]] = []  # (wall time, exit code)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._start()
        self.thread = threading.Thread(target=self._run, name=f"restart-{name}", daemon=True)
        self.thread.start()

    def _start(self) -> None:
        with self.lock:
            if not self.stopping.is_set():
                self.trees.append(Tree(f"{self.name}#{len(self.trees)}", self.args, self.env, self.log))

    def _run(self) -> None:
        while not self.stopping.is_set():
            current = self.trees[-1]
            if current.alive():
                self.stopping.wait(0.2)
                continue
            self.exits.append((time.time(), current.process.returncode))
            if self.stopping.wait(0.5):
                break
            self._start()

    def all_trees(self) -> list[Tree]:
        with self.lock:
            return list(self.trees)

    def stop(self, grace: float) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        for tree in self.all_trees():
            tree.stop(grace) if tree.alive() else tree.kill()

    def tail(self) -> str:
        return self.trees[-1].tail() if self.trees else ""


class Snapshotter(threading.Thread):
    """Records the descendants of every tree twice a second (so orphans can still be killed)."""

    def __init__(self, sources: Callable[[], list[Tree]]) -> None:
        super().__init__(name="snapshotter", daemon=True)
        self.sources = sources
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for tree in self.sources():
                tree.snapshot()


# --- Backroom ----------------------------------------------------------------------------------


@dataclass
class Sample:
    """One kill and its recovery."""

    label: str
    tag: str
    victim_pid: int
    killed_at: float
    seconds: float | None = None  # kill -> re-run start; None when capped
    cap: float = 0.0
    rerun_pid: int | None = None
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def capped(self) -> bool:
        return self.seconds is None

    @property
    def value(self) -> float:
        return self.cap if self.seconds is None else self.seconds


def backroom_live(client: redis.Redis) -> dict[int, str]:
    """pid -> broker id of every Backroom worker process that describes itself and runs."""
    out = {}
    for key in client.scan_iter("backroom:worker:*", count=1000):
        pid = client.hget(key, "pid")
        if pid and running(int(pid)):
            out[int(pid)] = key.decode().rsplit(":", 1)[1]
    return out


def backroom_sample(client: redis.Redis, index: int, pool: Tree) -> Sample:
    from bench._recovery_actors import broker, recovery_victim

    if not wait_for(lambda: len(backroom_live(client)) >= 2, 90, 0.2):
        raise BenchError(f"the Backroom pool did not have 2 live workers within 90s\n{pool.tail()}")
    tag = f"backroom-{index}"
    message = recovery_victim.send(tag, JOB_SECONDS)
    first = wait_for(lambda: starts(client, tag), 60, 0.05)
    if not first:
        raise BenchError(f"the Backroom job {tag} did not start within 60s\n{pool.tail()}")
    pid = int(first[0]["pid"])
    broker_id = backroom_live(client).get(pid)
    beat = client.zscore("backroom:__heartbeats__", broker_id) if broker_id else None
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    sample = Sample("backroom", tag, pid, killed, cap=BACKROOM_CAP_S)
    if beat is not None:
        sample.notes.append(f"last heartbeat {killed - beat / 1000:.1f}s before the kill")
    pool_back: float | None = None
    deadline = time.monotonic() + BACKROOM_CAP_S
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = starts(client, tag)
        if pool_back is None and len([p for p in backroom_live(client) if p != pid]) >= 2:
            pool_back = time.time() - killed
        if len(records) >= 2:
            break
        time.sleep(0.2)
    client.set(release_key(tag), 1, ex=3600)
    if len(records) >= 2:
        sample.seconds = records[1]["t"] - killed
        sample.rerun_pid = int(records[1]["pid"])
    else:
        sample.problems.append(f"no re-run within {BACKROOM_CAP_S:.0f}s")
    if pool_back is not None:
        sample.notes.append(f"pool back to 2 live workers after {pool_back:.1f}s")
    # the job record: one recovery, one crash, two attempts, succeeded
    final = {"succeeded", "failed", "dead", "cancelled"}
    record = wait_for(lambda: (r := broker.jobs.get(message.message_id)) and r.status.value in final and r, 20, 0.1)
    if record is None:
        current = broker.jobs.get(message.message_id)
        sample.problems.append(
            f"job record not final 20s after release: {current.status.value if current else 'missing'}"
        )
    else:
        if record.recovered_at is not None:
            sample.notes.append(f"reaped {record.recovered_at.timestamp() - killed:.1f}s after the kill")
        sample.notes.append(
            f"record {record.status.value} attempts={record.attempts} "
            f"recoveries={record.recoveries} crashes={record.crashes}"
        )
        if (record.status.value, record.attempts, record.recoveries, record.crashes) != ("succeeded", 2, 1, 1):
            sample.problems.append(
                f"unexpected job record: {record.status.value} attempts={record.attempts} "
                f"recoveries={record.recoveries} crashes={record.crashes}"
            )
    if sample.seconds is not None and sample.seconds > 60:
        sample.problems.append(f"recovery took {sample.seconds:.1f}s (> 60s)")
    return sample


# --- bare Dramatiq -----------------------------------------------------------------------------


class Loader(threading.Thread):
    """Enqueues no-op messages at a steady rate through a bare broker (each send is a dispatch call)."""

    def __init__(self, actor: Any, rate: float) -> None:
        super().__init__(name="loader", daemon=True)
        self.actor, self.rate = actor, rate
        self.stopping = threading.Event()
        self.sent = self.errors = 0
        self.started_at = self.stopped_at = 0.0

    def run(self) -> None:
        self.started_at = start = time.monotonic()
        scheduled = 0
        while not self.stopping.is_set():
            delay = start + scheduled / self.rate - time.monotonic()
            if delay > 0:
                if self.stopping.wait(delay):
                    break
            elif delay < -1.0:  # far behind (CPU starved): do not burst to catch up
                start, scheduled = time.monotonic(), 0
            try:
                self.actor.send()
                self.sent += 1
            except Exception:  # noqa: BLE001 - keep loading; counted
                self.errors += 1
                self.stopping.wait(0.5)
            scheduled += 1
        self.stopped_at = time.monotonic()

    def achieved(self) -> float:
        elapsed = (self.stopped_at or time.monotonic()) - self.started_at
        return self.sent / elapsed if elapsed > 0 else 0.0


def bare_sample(
    client: redis.Redis, redis_url: str, label: str, loop: RestartLoop, cap: float, load_rate: float = 0.0
) -> Sample:
    from dramatiq.brokers.redis import RedisBroker

    namespace = NAMESPACES[label]
    fresh = lambda: client.zcount(f"{namespace}:__heartbeats__", (time.time() - 3) * 1000, "+inf")  # noqa: E731
    # only the workers heartbeat so far: nothing in this process has used the namespace yet
    if not wait_for(lambda: fresh() >= 2, 90, 0.2):
        raise BenchError(f"the bare {label} pool did not heartbeat from 2 processes within 90s\n{loop.tail()}")
    broker = RedisBroker(url=redis_url, namespace=namespace)  # the sender: defaults, like the workers
    victim, noop = declare_bare(broker)
    loader = Loader(noop, load_rate) if load_rate else None
    try:
        if loader is not None:
            loader.start()
            time.sleep(2.0)
        tag = f"bare-{label}"
        victim.send(tag, JOB_SECONDS)
        first = wait_for(lambda: starts(client, tag), 60, 0.05)
        if not first:
            raise BenchError(f"the bare {label} job did not start within 60s\n{loop.tail()}")
        pid = int(first[0]["pid"])
        exits_before = len(loop.exits)
        os.kill(pid, signal.SIGKILL)
        killed = time.time()
        sample = Sample(f"bare-{label}", tag, pid, killed, cap=cap)
        say(f"bare {label}: killed pid {pid}; waiting up to {cap:.0f}s for the re-run")
        records = wait_for(lambda: (r := starts(client, tag)) and len(r) >= 2 and r, cap, 0.25)
        client.set(release_key(tag), 1, ex=3600)
        if records:
            sample.seconds = records[1]["t"] - killed
            sample.rerun_pid = int(records[1]["pid"])
        if len(loop.exits) > exits_before:
            when, code = loop.exits[exits_before]
            sample.notes.append(f"master exited (code {code}) {when - killed:.1f}s after the kill; restarted")
        if loader is not None:
            loader.stopping.set()
            loader.join(timeout=5)
            sample.notes.append(f"load {loader.achieved():.0f} msg/s ({loader.sent} sent, {loader.errors} errors)")
        return sample
    finally:
        if loader is not None:
            loader.stopping.set()
            loader.join(timeout=5)
        broker.close()


# --- the run -----------------------------------------------------------------------------------


def describe(sample: Sample) -> str:
    if sample.capped:
        head = f"no re-run within {sample.cap:.0f}s (capped)"
    else:
        head = f"re-run started on pid {sample.rerun_pid} {sample.seconds:.2f}s after the kill"
    extra = "; ".join(sample.notes + [f"PROBLEM: {p}" for p in sample.problems])
    return f"{sample.label}: killed pid {sample.victim_pid} -> {head}" + (f" ({extra})" if extra else "")


def child_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUB and not k.startswith("dramatiq_")}
    env.update(
        REDIS_URL=redis_url,
        DATABASE_URL=DUMMY_DATABASE_URL,
        METRICS_PORT="0",
        LOG_LEVEL="WARNING",
        LOG_FORMAT="console",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
    )
    env.update(extra)
    return env


def main() -> int:
    """Run the bench; the `bench:` line is printed last, after every child and service stopped."""
    line: list[str] = []
    code = run(line)
    say(f"total run time {time.monotonic() - T0:.0f}s")
    if line:
        print(line[0], flush=True)
    return code


def run(out: list[str]) -> int:
    root = Path(tempfile.mkdtemp(prefix="backroom-bench-recovery-"))
    server: RedisProcess | None = None
    supervisor: Tree | None = None
    loops: dict[str, RestartLoop] = {}
    snapshotter: Snapshotter | None = None
    client: redis.Redis | None = None
    tags: list[str] = []
    backroom: list[Sample] = []
    bare: dict[str, Sample | BaseException] = {}
    try:
        server = RedisProcess(root / "redis").start()
        client = redis.Redis.from_url(server.url)
        # the bench process reads the same settings as the workers (imports bench._recovery_actors)
        for name in SCRUB:
            os.environ.pop(name, None)
        os.environ.update(child_env(server.url))
        from config.settings import get_settings

        settings = get_settings()
        say(
            f"redis {server.url}; Backroom settings:"
            f" WORKER_HEARTBEAT_TIMEOUT_MS={settings.worker_heartbeat_timeout_ms} "
            f"POISON_THRESHOLD={settings.poison_threshold} namespace={settings.redis_namespace}"
        )
        if settings.worker_heartbeat_timeout_ms != 20_000:
            say("WARNING: the heartbeat timeout is not the default 20000 ms (.env?)")

        supervisor = Tree(
            "backroom-worker",
            [sys.executable, "-m", "cli.main", "worker", "-p", "2", "-t", "2", "--module", "bench._recovery_actors"],
            child_env(server.url),
            root / "backroom-worker.log",
        )
        for label, namespace in NAMESPACES.items():
            loops[label] = RestartLoop(
                f"bare-{label}",
                [sys.executable, "-m", "dramatiq", "bench._recovery_bare", "--processes", "2", "--threads", "2"],
                child_env(server.url, BENCH_RECOVERY_NS=namespace),
                root / f"bare-{label}.log",
            )
        snapshotter = Snapshotter(lambda: [supervisor, *(t for loop in loops.values() for t in loop.all_trees())])
        snapshotter.start()
        say("started: backroom worker -p 2 -t 2; dramatiq bench._recovery_bare -p 2 -t 2 (x2, restart loops)")

        def run_bare(label: str, cap: float, rate: float) -> None:
            tags.append(f"bare-{label}")
            try:
                bare[label] = bare_sample(client, server.url, label, loops[label], cap, rate)
            except BaseException as error:  # noqa: BLE001 - reported by the main thread
                bare[label] = error

        idle = threading.Thread(target=run_bare, args=("idle", BARE_CAP_S, 0.0), name="bare-idle", daemon=True)
        idle.start()

        uptime = lambda: int(client.info("server")["uptime_in_seconds"])  # noqa: E731
        if not wait_for(lambda: uptime() >= MIN_REDIS_UPTIME_S, MIN_REDIS_UPTIME_S + 5, 0.5):
            raise BenchError("redis uptime did not grow?")
        for index in range(BACKROOM_SAMPLES):
            tags.append(f"backroom-{index}")
            sample = backroom_sample(client, index, supervisor)
            backroom.append(sample)
            say(describe(sample))

        run_bare("loaded", LOADED_CAP_S, LOAD_RATE)
        if isinstance(bare["loaded"], Sample):
            say(describe(bare["loaded"]))
        idle.join(timeout=BARE_CAP_S + 200)
        if idle.is_alive():
            raise BenchError("the bare idle sample did not finish")
        if isinstance(bare.get("idle"), Sample):
            say(describe(bare["idle"]))

        # nothing ran twice, nothing is left behind
        time.sleep(1.0)
        problems = [f"{s.tag}: {p}" for s in backroom for p in s.problems]
        for sample in backroom:
            count = client.llen(starts_key(sample.tag))
            if count != 2:
                problems.append(f"{sample.tag} started {count} times (expected 2)")
        leftover = wait_for(lambda: client.hlen("backroom:default.msgs") == 0, 10, 0.2)
        if not leftover:
            problems.append(f"backroom:default.msgs still holds {client.hlen('backroom:default.msgs')} message(s)")
        for label, result in bare.items():
            if isinstance(result, BaseException):
                problems.append(f"bare {label}: {type(result).__name__}: {result}")
            elif (count := client.llen(starts_key(result.tag))) != (1 if result.capped else 2):
                problems.append(f"bare {label} started {count} times")
        restarts = (root / "backroom-worker.log").read_text(errors="replace").count("restarting")

        values = [s.value for s in backroom]
        say(
            f"backroom: samples {', '.join(f'{v:.2f}' for v in values)} s; median {statistics.median(values):.2f} s; "
            f"min {min(values):.2f} max {max(values):.2f}; supervisor restarted {restarts} worker(s)"
        )
        for label, result in bare.items():
            if isinstance(result, Sample):
                say(f"bare {label}: {'>=' if result.capped else ''}{result.value:.1f} s")
        say("no problems found" if not problems else "PROBLEMS:\n  " + "\n  ".join(problems))
        line = f"bench: recovery backroom_s={statistics.median(values):.1f}"
        for label, key in (("idle", "bare"), ("loaded", "bare_loaded")):
            result = bare.get(label)
            if isinstance(result, Sample):
                shown = f"{result.cap:g}" if result.capped else f"{result.value:.1f}"
                line += f" {key}_s={shown} {key}_capped={int(result.capped)}"
        out.append(line)
        return 1 if any(isinstance(r, BaseException) for r in bare.values()) else 0
    except BenchError as error:
        say(f"FAILED: {error}")
        return 1
    finally:
        if client is not None:
            for tag in tags:
                try:
                    client.set(release_key(tag), 1, ex=3600)
                except redis.RedisError:
                    pass
        stoppers = []
        if supervisor is not None:
            stoppers.append(threading.Thread(target=supervisor.stop, args=(40.0,), daemon=True))
        stoppers += [threading.Thread(target=loop.stop, args=(15.0,), daemon=True) for loop in loops.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(timeout=70)
        if snapshotter is not None:
            snapshotter.stopping.set()
        if client is not None:
            client.close()
        if server is not None:
            try:
                server.stop(kill=True)
            except Exception as error:  # noqa: BLE001
                say(f"redis-server stop: {error}")
        shutil.rmtree(root, ignore_errors=True)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: every child is stopped


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
