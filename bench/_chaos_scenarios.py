"""The chaos scenarios: each breaks something under load and counts what happened to every job.

Each function takes its size (`n` jobs, or bystanders) and returns the scenario's `Counts`;
bench/chaos.py runs them at bench size, tests/reliability/test_chaos.py at a small size.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import redis

from bench._services import wait_until
from bench._chaos_ledger import Counts, Loss
from bench._chaos_procs import Netns, WorkerPool, alive, kill
from bench._chaos_world import World, world
from cli.stack import process_tree


def _kill_running_worker(w: World, pool: WorkerPool, *, master: bool) -> None:
    """SIGKILL a worker process running a job (or its Dramatiq master), and record the loss."""
    running = w.wait_running(pool)
    victim = max(running, key=running.__getitem__)
    parent = process_tree(pool.process.pid).get(victim, 0)
    pids = {victim, parent} if master else {victim}
    kill(parent if master else victim)
    w.losses.append(Loss(frozenset(pids), time.time()))


def worker_sigkill(n: int = 40, kills: int = 2) -> Counts:
    """SIGKILL worker processes mid-job, `kills` times, while `n` half-second jobs run on 2x2."""
    with world("worker_sigkill") as w:
        pool = w.pool(2, 2)
        for i in range(n):
            w.send(f"k{i}", 0.5)
        for _ in range(kills):
            _kill_running_worker(w, pool, master=False)
            last = time.monotonic()
            wait_until(lambda: len(pool.workers()) == 2, timeout=60, what="the pool replaces the killed worker")
        return w.settle(last)


def master_sigkill(n: int = 40) -> Counts:
    """SIGKILL a pool's Dramatiq master while its worker runs jobs; its worker must not live on."""
    with world("master_sigkill") as w:
        pool = w.pool(2, 2)
        for i in range(n):
            w.send(f"m{i}", 0.5)
        _kill_running_worker(w, pool, master=True)
        killed = time.monotonic()
        lost = [pid for loss in w.losses for pid in loss.pids]
        try:  # a worker told of its master's death may first finish what it runs: a graceful stop, which
            # may take WORKER_SHUTDOWN_TIMEOUT_S (30 s) on a loaded machine; one alive after that is an orphan
            wait_until(
                lambda: not any(alive(pid) for pid in lost), timeout=45, what="the killed master's worker to exit"
            )
        except TimeoutError:
            pass  # counted below
        counts = w.settle(killed)
        orphans = [pid for pid in lost if alive(pid)]
        w.note(f"orphaned worker processes still alive: {len(orphans)}")
        counts.stuck += len(orphans)  # an orphan still holds (and may run) work nobody supervises
        return counts


def _redis_restart(name: str, n: int, sig: int) -> Counts:
    with world(name) as w:
        pool = w.pool(2, 2)
        wait_until(lambda: len(pool.workers()) == 2, timeout=60, what="two workers")
        half = max(1, n // 2)
        for i in range(half):
            # delayed: held in the workers' memory, due before, during and after the outage
            w.send(f"d{i}", 0.1, delay=1_500 + 3_000 * i // half)
            # retrying: first attempts fail before and during the outage, so retries wait in backoff across it
            w.send(f"r{i}", 0.3 + 2.0 * i / half, fail_times=1)
        keys = w.broker.jobs.keys
        wait_until(
            lambda: w.client.llen(keys.queue("default.DQ")) == 0,
            timeout=60,
            what="the workers to fetch every delayed job",
        )
        assert w.server is not None
        if sig == signal.SIGKILL:
            w.server.stop(kill=True)
        else:
            w.server.stop()
        time.sleep(4.0)  # Redis down for a while: the outage under test
        w.server.start()
        return w.settle(time.monotonic())


def redis_sigterm(n: int = 40) -> Counts:
    """Stop Redis cleanly for 4 s while delayed and retrying jobs wait in the workers."""
    return _redis_restart("redis_sigterm", n, signal.SIGTERM)


def redis_sigkill(n: int = 40) -> Counts:
    """SIGKILL Redis for 4 s (append-only file on) while delayed and retrying jobs wait in the workers."""
    return _redis_restart("redis_sigkill", n, signal.SIGKILL)


def graceful_stop(n: int = 12, long_jobs: int = 4) -> Counts:
    """A deploy: SIGTERM a pool whose running jobs outlive WORKER_SHUTDOWN_TIMEOUT_S (2 s); a new pool takes over."""
    with world("graceful_stop") as w:
        old = w.pool(1, long_jobs, WORKER_SHUTDOWN_TIMEOUT_S="2")
        for i in range(long_jobs):
            w.send(f"long{i}", 6.0)
        w.wait_running(old, at_least=long_jobs)
        for i in range(n - long_jobs):
            w.send(f"short{i}", 0.2)
        w.losses.append(Loss(frozenset(old.pids()), time.time()))
        old.terminate()
        stopped = time.monotonic()
        w.pool(2, 2)
        wait_until(lambda: old.process.poll() is not None, timeout=60, what="the old pool to exit")
        w.note(f"old pool exited {old.process.returncode} after {time.monotonic() - stopped:.1f}s")
        return w.settle(stopped)


def poison(bystanders: int = 3) -> Counts:
    """One job that kills its worker process, beside `bystanders` ordinary 3 s jobs on one process x 4 threads."""
    with world("poison") as w:
        pool = w.pool(1, bystanders + 1)
        wait_until(lambda: len(pool.workers()) == 1, timeout=60, what="the worker")
        for i in range(bystanders):
            w.send(f"by{i}", 3.0)
        w.send_poison("poison")
        counts = w.settle(time.monotonic(), timeout=90)
        w.note(f"poison job {w.states()['poison'].status}")
        return counts


def redis_full(n: int = 30) -> Counts:
    """Fill Redis to maxmemory (noeviction) for 3 s while jobs finish, free it, then SIGKILL a worker."""
    with world("redis_full") as w:
        pool = w.pool(1, 2)
        for i in range(n):
            w.send(f"f{i}", 0.3)
        wait_until(lambda: w.done() >= n // 4, timeout=60, what="a quarter of the jobs done")
        filler = _fill(w.client)
        time.sleep(3.0)  # jobs keep finishing: their acks and records meet a full Redis
        w.client.config_set("maxmemory", 0)
        w.client.delete(*filler)
        w.settle(time.monotonic())
        _kill_any(w, pool)  # what it still holds must be finished work only: nothing may run twice
        return w.settle(time.monotonic())


def _fill(client: redis.Redis) -> list[str]:
    """Write 4 MB of filler, then set maxmemory 1 MB below what is used: every write is refused (OOM)."""
    keys = [f"chaos:filler:{i}" for i in range(64)]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, b"x" * 64 * 1024)
        pipe.execute()
    client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 1024 * 1024)
    return keys


def _kill_any(w: World, pool: WorkerPool) -> None:
    """SIGKILL a live worker process (idle or not): what it still holds must be finished work only."""
    victim = pool.workers()[0]
    kill(victim)
    w.losses.append(Loss(frozenset({victim}), time.time()))


def partition(n: int = 10, cut_s: float = 10.0) -> Counts:
    """Cut a worker host (a network namespace) off from Redis for `cut_s` while it runs 3 s jobs."""
    namespace = Netns()
    try:
        namespace.create()
    except RuntimeError as error:
        namespace.delete()
        return Counts("partition", skipped=f"network namespaces unavailable: {error}")
    try:
        with world("partition", redis_args=("--bind", "127.0.0.1", namespace.host_ip, "--protected-mode", "no")) as w:
            w.netns.append(namespace)
            assert w.server is not None
            cut_off = w.pool(1, 2, netns=namespace.name, REDIS_URL=f"redis://{namespace.host_ip}:{w.server.port}/0")
            other = w.pool(1, 2)
            wait_until(lambda: len(cut_off.workers()) == 1 and len(other.workers()) == 1, timeout=60, what="both pools")
            for i in range(n):
                w.send(f"p{i}", 3.0)
            w.wait_running(cut_off, at_least=2)
            namespace.cut()
            w.losses.append(Loss(frozenset(cut_off.pids()), time.time()))
            time.sleep(cut_s)
            namespace.heal()
            return w.settle(time.monotonic())
    finally:
        namespace.delete()


def sentinel_failover(n: int = 60, *, wait_replicas: int = 0) -> Counts:
    """SIGKILL the Sentinel-managed primary while jobs run and more are enqueued; it comes back as a replica.

    With `wait_replicas` (REDIS_WAIT_REPLICAS for the pool and the sender) every enqueue and
    outcome batch waits for a replica: a batch whose WAIT the dead primary never answered is
    written again to the new one instead of being lost with it. The heartbeat timeout is 10 s,
    above the failover's few seconds (as the default 20 s is): workers are not taken for dead,
    so a job that runs twice here lost its ack in the asynchronous-replication window.
    """
    name = "sentinel_failover" + ("_wait" if wait_replicas else "")
    with world(name, sentinels=True, wait_replicas=wait_replicas, heartbeat_ms=10_000) as w:
        assert w.sentinels is not None
        wait_until(w.sentinels.ready, timeout=60, interval=0.2, what="the Sentinels to see the replica")
        old = w.sentinels.primary.port
        pool = w.pool(2, 2)
        for i in range(n // 2):
            w.send(f"s{i}", 0.2)
        w.wait_running(pool)
        w.sentinels.primary.stop(kill=True)
        killed = time.monotonic()
        sender = threading.Thread(target=_send_through, args=(w, [f"s{i}" for i in range(n // 2, n)]))
        sender.start()
        wait_until(
            lambda: w.sentinels.primary_port() not in (None, old),
            timeout=60,
            interval=0.2,
            what="the Sentinels to promote the replica",
        )
        w.note(f"new primary after {time.monotonic() - killed:.1f}s")
        w.sentinels.primary.start()  # the old primary returns; the Sentinels make it a replica of the new one
        sender.join(timeout=120)
        return w.settle(killed)


def _send_through(w: World, tags: list[str]) -> None:
    """Enqueue `tags` through the failover: a refused enqueue is tried again under a new tag (not counted)."""
    for tag in tags:
        for attempt in range(200):
            try:
                w.send(f"{tag}.{attempt}", 0.2)
                break
            except redis.RedisError:
                time.sleep(0.1)


SCENARIOS: dict[str, Callable[[], Counts]] = {
    "worker_sigkill": worker_sigkill,
    "master_sigkill": master_sigkill,
    "redis_sigterm": redis_sigterm,
    "redis_sigkill": redis_sigkill,
    "graceful_stop": graceful_stop,
    "poison": poison,
    "redis_full": redis_full,
    "partition": partition,
    "sentinel_failover": sentinel_failover,
    "sentinel_failover_wait": lambda: sentinel_failover(wait_replicas=1),
}
