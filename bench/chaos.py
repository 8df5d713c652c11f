"""Chaos: break workers, masters, Redis, the network and a Sentinel primary under load; count every job.

Run from the repo root with no arguments: `python bench/chaos.py` (as root, for the network
namespace of the partition scenario; without it that scenario is skipped with a line saying so).
Each scenario starts its own redis-server (append-only, as the tests do) and `backroom worker`
pools running the counting actors of bench/_chaos_actors.py, then prints: jobs, lost, doubled,
stuck, bystanders dead-lettered, reruns of jobs whose worker was lost mid-job, and the time to
settle after the disruption. Ends with one line:
`bench: chaos scenarios=.. jobs=.. lost=.. doubled=.. stuck=.. bystanders_dead=.. rerun_after_loss=.. max_settle_s=..`.
CHAOS_SCENARIOS=name,name runs only those.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(REPO))  # bench.* and the top-level packages, as bench/recovery.py does
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")  # each scenario builds its own broker
os.environ.setdefault("DATABASE_URL", "postgresql://chaos@127.0.0.1:1/unused")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("METRICS_PORT", "0")

from bench._services import say  # noqa: E402
from bench._chaos_ledger import Counts  # noqa: E402
from bench._chaos_scenarios import SCENARIOS  # noqa: E402
from config.logging import configure_logging  # noqa: E402


def main() -> None:
    """Run every scenario at bench size, one line each, then the summary line."""
    configure_logging("WARNING", "console")
    one, five, _ = os.getloadavg()
    say(f"chaos: {len(SCENARIOS)} scenarios, {os.cpu_count()} CPUs, load average {one:.1f} (1 min) {five:.1f} (5 min)")
    results: list[Counts] = []
    only = [name for name in os.environ.get("CHAOS_SCENARIOS", "").split(",") if name]
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        started = time.monotonic()
        try:
            counts = scenario()
        except Exception as error:  # a scenario that breaks is reported, and the others still run
            traceback.print_exc()
            counts = Counts(name, skipped=f"FAILED: {type(error).__name__}: {error}")
        results.append(counts)
        say(counts.line() + f" ({time.monotonic() - started:.0f}s)")
        for kind, tags in sorted(counts.details.items()):
            say(f"    {kind}: {' '.join(tags[:8])}{' ...' if len(tags) > 8 else ''}")
    ran = [c for c in results if not c.skipped]
    total = {
        key: sum(getattr(c, key) for c in ran)
        for key in ("jobs", "lost", "doubled", "stuck", "bystanders_dead", "rerun_after_loss")
    }
    print(
        f"bench: chaos scenarios={len(ran)} "
        + " ".join(f"{key}={value}" for key, value in total.items())
        + f" max_settle_s={max((c.settle_s for c in ran), default=0.0):.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
