"""Scraping throughput and memory: a real edge worker with real Chromium against the local marketplace.

Run from the repo root with no arguments: `python bench/scrape.py` (1-3 minutes).
It starts its own redis-server in a temp dir (like the tests), the local marketplace
(fakes/marketplace) in this process, and for each of EDGE_PAGES_IN_FLIGHT = 1 and 4 one
`backroom worker --edge -p 1 -t BENCH_THREADS` (default 4: jobs run side by side, so
pages in flight is the bound). Each run first scrapes once to launch Chromium (not timed),
then enqueues BENCH_JOBS (default 12) scrape_source jobs at once, two in three for the
generic shop (a search page, then every product page for its JSON-LD) and one in three for
Vinted with VINTED_ITEM_DETAILS=true (session page, svc-catalogue, then every item page),
BENCH_LIMIT (default 12) listings each, and waits until every job's listings are on the
`ingest` queue: the node runs with its own ACL credential (`backroom edge credentials`) and
delivers signed results to `results`, which an edge gateway process checks and forwards.
listings/minute = listings delivered / (last delivery - first enqueue).

Memory: every 0.2 s the RSS and the PSS (/proc/<pid>/smaps_rollup) of every process in the
edge worker's tree (the supervisor, the worker process, the Playwright driver, every Chromium
process) are summed. rss_mb is the peak summed RSS of the 4-pages run: the figure the issue's
target (<= 600 MB) is about, and an upper bound, since RSS counts a page shared by several
processes (Chromium's code, the zygote's forked pages) once per process. pss_mb, the peak
summed PSS of the same run, splits each shared page between its sharers: the memory the tree
really occupies. Every run prints both, with the share of each process kind at the RSS peak.
Chromium is EDGE_CHROMIUM_PATH when set, else chromium-headless-shell when installed (what
deploy/edge/setup-pi.sh installs), else /usr/bin/chromium.
Jobs holding a browser context at once: EDGE_CONTEXTS_IN_FLIGHT (the setting's default when unset);
a third run, for reference, has 4 pages and one more context in flight (lpm_4_cN, rss_cN_mb).
Ends with one line:
`bench: scrape lpm_1=.. lpm_4=.. rss_mb=.. pss_mb=.. rss_1_mb=.. pss_1_mb=.. contexts=.. lpm_4_cN=.. rss_cN_mb=..
browser=..`.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis  # noqa: E402
from dramatiq.message import Message  # noqa: E402

from bench._services import BIN, Stack, say, wait_until  # noqa: E402
from broker.redis import BackroomBroker  # noqa: E402
from cli import worker_process  # noqa: E402
from cli.edge import create_edge_credentials  # noqa: E402
from cli.stack import process_tree  # noqa: E402
from config.settings import EdgeSettings, default_chromium  # noqa: E402
from domain import contracts  # noqa: E402
from domain.jobs import JobStatus  # noqa: E402
from fakes.marketplace import Marketplace  # noqa: E402
from fakes.marketplace.data import BRANDS  # noqa: E402

JOBS = int(os.environ.get("BENCH_JOBS", "12"))
LIMIT = int(os.environ.get("BENCH_LIMIT", "12"))
THREADS = int(os.environ.get("BENCH_THREADS", "4"))
CONTEXTS = os.environ.get("EDGE_CONTEXTS_IN_FLIGHT") or str(
    EdgeSettings.model_fields["edge_contexts_in_flight"].default
)
SCRUB = ("REDIS_NAMESPACE", "REDIS_SENTINELS", "SENTRY_DSN", "EDGE_SOURCES", "EDGE_PAGES_IN_FLIGHT")


def cmdline(pid: int) -> str:
    """A process's command line ('' once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kind(pid: int, parent: int) -> str:
    """What a process of the tree is: Chromium's process type, the Playwright driver, or which Python."""
    raw = cmdline(pid)
    if not raw:
        return "gone"
    if "chromium" in raw:
        match = re.search(r"--type=(\S+)", raw)
        return f"chromium-{match.group(1)}" if match else "chromium-browser"
    if "driver/node" in raw:
        return "playwright-node"
    if re.search(r"-m cli\.worker |backroom worker", raw):  # the supervisor (its argv holds its child's)
        return "python-supervisor"
    if "-m dramatiq" in raw:  # Dramatiq's own CLI: a master and the worker process it forked
        return "python-worker" if "-m dramatiq" in cmdline(parent) else "python-dramatiq-master"
    return "python-worker" if "cli.worker_process" in raw else "python"


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in kB; zeros when it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        return int(fields["Rss"].split()[0]), int(fields["Pss"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0, 0


class Sampler(threading.Thread):
    """Samples the summed RSS and PSS of a process tree until stopped; keeps the peaks and the most processes."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peak_rss_kb = self.peak_pss_kb = self.most_processes = 0
        self.at_peak: dict[str, list[int]] = {}  # kind -> [processes, rss kB, pss kB] when the RSS sum peaked
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            family = process_tree(self.root)
            kinds = {pid: kind(pid, parent) for pid, parent in family.items()}  # before a process can go
            sizes = {pid: memory_kb(pid) for pid in family}
            rss, pss = sum(r for r, _ in sizes.values()), sum(p for _, p in sizes.values())
            if rss > self.peak_rss_kb:
                self.peak_rss_kb, self.at_peak = rss, {}
                for pid, (one_rss, one_pss) in sizes.items():
                    entry = self.at_peak.setdefault(kinds[pid], [0, 0, 0])
                    entry[0], entry[1], entry[2] = entry[0] + 1, entry[1] + one_rss, entry[2] + one_pss
            self.peak_pss_kb = max(self.peak_pss_kb, pss)
            self.most_processes = max(self.most_processes, len(family))


def chromium_path() -> str:
    """EDGE_CHROMIUM_PATH, else the edge worker's default (the headless shell when installed)."""
    return os.environ.get("EDGE_CHROMIUM_PATH") or default_chromium()


def send(broker: BackroomBroker, source: str, query: str, limit: int) -> Message:
    """Enqueue scrape_source on `edge` by name."""
    message = Message(
        queue_name=contracts.EDGE_QUEUE,
        actor_name=contracts.SCRAPE_SOURCE,
        args=(),
        kwargs={"source": source, "query": query, "limit": limit},
        options={"max_retries": 0},
    )
    broker.enqueue(message)
    return message


def delivered(client: redis.Redis) -> list[dict]:
    """The ingest messages waiting on `ingest`."""
    ids = client.lrange(f"backroom:{contracts.INGEST_QUEUE}", 0, -1)
    return [json.loads(client.hget(f"backroom:{contracts.INGEST_QUEUE}.msgs", i)) for i in ids]


def check_jobs(broker: BackroomBroker, messages: list[Message]) -> None:
    """Fail loudly when a job died (blocked or error) instead of waiting for its delivery forever."""
    for message in messages:
        record = broker.jobs.get(message.message_id)
        if record is not None and record.status in (JobStatus.DEAD, JobStatus.RETRYING):
            raise RuntimeError(f"job {message.kwargs} failed: {record.last_error}")


def run(stack: Stack, market: Marketplace, pages: int, contexts: str = CONTEXTS) -> tuple[float, Sampler]:
    """One edge worker with `pages` pages and `contexts` contexts in flight: (listings/minute, its memory sampler)."""
    assert stack.redis is not None
    client = redis.Redis.from_url(stack.redis.url)
    client.flushdb()
    # edge work goes to the edge namespace; the node runs with its own ACL credential, and its signed
    # deliveries reach `ingest` through the edge gateway, as in production
    broker = BackroomBroker(url=stack.redis.url, namespace="backroom-edge", job_retention_s=3600, maintenance_chance=0)
    node = f"bench-{pages}-{contexts}"
    creds = create_edge_credentials(client, "backroom", node, host="127.0.0.1", port=stack.redis.port)
    env = stack.env(
        **market.env(),
        EDGE_PAGES_IN_FLIGHT=str(pages),
        VINTED_ITEM_DETAILS="true",
        EDGE_CHROMIUM_PATH=chromium_path(),
        EDGE_CONTEXTS_IN_FLIGHT=contexts,
        EDGE_OUTBOX_PATH=str(stack.root / f"outbox-{pages}-{contexts}.db"),
        EDGE_NODE_ID=node,
        REDIS_URL=creds.redis_url,
        PYTHONPATH=str(REPO),
    )  # not bench/: its module names must not shadow the stdlib's
    gateway = stack.spawn(
        f"gateway-{pages}-{contexts}",
        worker_process.command("broker.gateway_worker", [], [contracts.RESULTS_QUEUE], 2, 10),
        stack.env(PYTHONPATH=str(REPO)),
    )
    child = stack.spawn(
        f"edge-{pages}-{contexts}", [str(BIN / "backroom"), "worker", "--edge", "-p", "1", "-t", str(THREADS)], env
    )
    sampler = Sampler(child.process.pid)
    sampler.start()
    try:
        warm = send(broker, "shop", "", 1)
        wait_until(
            lambda: (check_jobs(broker, [warm]) or len(delivered(client)) == 1) or not child.alive(),
            timeout=120,
            what="the warm-up scrape",
        )
        if not child.alive():
            raise RuntimeError(f"edge worker exited:\n{child.tail()}")
        client.delete(f"backroom:{contracts.INGEST_QUEUE}", f"backroom:{contracts.INGEST_QUEUE}.msgs")
        brands = [name.split()[0] for name, _ in BRANDS]
        started = time.monotonic()
        messages = [
            send(
                broker,
                "vinted" if n % 3 == 2 else "shop",
                f"brand:{BRANDS[n % len(BRANDS)][1]}" if n % 3 == 2 else brands[n % len(brands)],
                LIMIT,
            )
            for n in range(JOBS)
        ]
        finished = wait_until(
            lambda: check_jobs(broker, messages) or len(delivered(client)) == JOBS,
            timeout=900,
            what=f"{JOBS} deliveries",
        )
        listings = sum(len(m["kwargs"]["listings"]) for m in delivered(client))
    finally:
        child.stop()
        gateway.stop()
        sampler.stopping.set()
        sampler.join()
    rate = listings / ((finished - started) / 60)
    say(
        f"  pages_in_flight={pages} contexts_in_flight={contexts}:"
        f" {listings} listings in {finished - started:.1f}s = {rate:.0f}/min; "
        f"peak tree rss={sampler.peak_rss_kb / 1024:.0f} MB pss={sampler.peak_pss_kb / 1024:.0f} MB "
        f"({sampler.most_processes} processes)"
    )
    say(
        "    at the rss peak (rss/pss MB): "
        + ", ".join(
            f"{name} x{n} {rss / 1024:.0f}/{pss / 1024:.0f}"
            for name, (n, rss, pss) in sorted(sampler.at_peak.items(), key=lambda item: -item[1][1])
        )
    )
    return rate, sampler


def main() -> None:
    """The three runs, then the summary line."""
    for name in SCRUB:
        os.environ.pop(name, None)
    stack = Stack()
    market = Marketplace(seed=7, per_source=240, slow_s=30.0, promoted=False)
    try:
        stack.start_redis()
        market.start()
        say(
            f"bench scrape: {JOBS} jobs x {LIMIT} listings, {THREADS} worker threads, {CONTEXTS} contexts in flight, "
            f"real {chromium_path()}"
        )
        lpm_1, one = run(stack, market, 1)
        lpm_4, four = run(stack, market, 4)
        more = str(int(CONTEXTS) + 1)  # for reference: what one more context in flight buys and costs
        lpm_more, wider = run(stack, market, 4, more)
    finally:
        market.stop()
        stack.stop()
    rss, pss = four.peak_rss_kb / 1024, four.peak_pss_kb / 1024
    say(
        f"4 pages in flight: peak summed RSS {rss:.0f} MB (shared pages once per process), peak summed PSS "
        f"{pss:.0f} MB (shared pages split); target rss <= 600 MB: {'met' if rss <= 600 else 'MISSED'}"
    )
    say(
        f"bench: scrape lpm_1={lpm_1:.0f} lpm_4={lpm_4:.0f} rss_mb={rss:.0f} pss_mb={pss:.0f} "
        f"rss_1_mb={one.peak_rss_kb / 1024:.0f} pss_1_mb={one.peak_pss_kb / 1024:.0f} "
        f"contexts={CONTEXTS} lpm_4_c{more}={lpm_more:.0f} rss_c{more}_mb={wider.peak_rss_kb / 1024:.0f} "
        f"browser={Path(chromium_path()).name}"
    )


if __name__ == "__main__":
    main()
