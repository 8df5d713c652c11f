"""`backroom dev`: embedded Postgres + Redis (unless configured), migrate, token, honcho."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from cli.stack import PostgresProcess, RedisProcess

console = Console()


def run_dev_stack(data_dir: Path, processes: list[str]) -> int:
    """Start what is missing, migrate, mint a dev admin token, run the Procfile; returns an exit code."""
    started: list[RedisProcess | PostgresProcess] = []
    market: Any = None
    env = dict(os.environ)
    # the Procfile names console scripts (hypercorn, backroom): use this interpreter's
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    try:
        if not env.get("DATABASE_URL"):
            postgres = PostgresProcess(data_dir / "postgres").start()
            started.append(postgres)
            env["DATABASE_URL"] = postgres.database_url("backroom")
            console.print(f"embedded PostgreSQL (pgserver, pgvector) in {data_dir / 'postgres'}")
        if not env.get("REDIS_URL"):
            redis_process = RedisProcess(data_dir / "redis", port=int(env.get("DEV_REDIS_PORT", "6390"))).start()
            started.append(redis_process)
            env["REDIS_URL"] = redis_process.url
            console.print(f"embedded Redis (append-only) at {redis_process.url}, data in {data_dir / 'redis'}")
        # notifications without a configured provider land in var/outbox.jsonl instead of failing
        env.setdefault("NOTIFY_FALLBACK", "console")
        # one admin-session key for every web process of this run (each would pick its own otherwise)
        env.setdefault("ADMIN_SESSION_SECRET", secrets.token_hex(32))
        env.setdefault("MEDIA_DIR", str(data_dir / "media"))  # rehosted images live beside the dev data
        env.setdefault("EVENTS_ALLOW_ADDRESSES", "loopback")  # storefronts under development run on localhost
        market = start_marketplace(env)
        os.environ.update(env)
        from cli.main import create_token
        from db.migrate import migrate

        applied = asyncio.run(migrate(env["DATABASE_URL"]))
        console.print(f"migrations applied: {len(applied)}")
        token = asyncio.run(create_token(env["DATABASE_URL"], name="dev", scopes=["admin"]))
        if "edge" in processes and not env.get("EDGE_REDIS_URL"):
            env.update(dev_edge_credentials(env))
        port = env.setdefault("API_PORT", "8000")
        console.rule("[bold green]Backroom is starting")
        console.print(f"API:     http://127.0.0.1:{port}/   (docs: http://127.0.0.1:{port}/docs)")
        console.print(f"token:   {token}   (scope admin; made for this run)", highlight=False)
        console.print(
            f"try:     curl -X POST -H 'Authorization: Bearer {token}' "
            f"-H 'Content-Type: application/json' -d '{{}}' http://127.0.0.1:{port}/v1/jobs/ping",
            highlight=False,
            soft_wrap=True,
        )
        if not env.get("MODEL_DIR"):
            console.print(
                "[bold yellow]embeddings: MODEL_DIR is unset, so workers use the tiny TEST model; its vectors are "
                "NOT semantic (set MODEL_DIR to a `backroom models export` directory)[/bold yellow]"
            )
        if market is not None:
            from cli.demo import start_demo_cycle

            start_demo_cycle(env, market, processes, console)
        console.rule()
        honcho = subprocess.Popen([sys.executable, "-m", "honcho", "-f", "Procfile", "start", *processes], env=env)
        # SIGTERM (a supervisor, `timeout`) stops honcho's processes before the services go
        signal.signal(signal.SIGTERM, lambda *_: honcho.terminate())
        return honcho.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if market is not None:
            market.stop()
        for service in reversed(started):
            service.stop()


def dev_edge_credentials(env: dict[str, str]) -> dict[str, str]:
    """The local edge node's own least-privilege credential (its results are refused without one)."""
    import redis

    from cli.edge import create_edge_credentials

    node = env.get("EDGE_NODE_ID") or "dev-edge"
    url = redis.connection.parse_url(env["REDIS_URL"])
    client = redis.Redis.from_url(env["REDIS_URL"])
    try:
        made = create_edge_credentials(
            client,
            env.get("REDIS_NAMESPACE", "backroom"),
            node,
            host=url.get("host") or "127.0.0.1",
            port=url.get("port") or 6379,
            db=int(url.get("db") or 0),
            tls=env["REDIS_URL"].startswith("rediss://"),
        )
    finally:
        client.close()
    console.print(f"edge:    node {node} runs as Redis user {made.user} (least privilege)")
    return {"EDGE_REDIS_URL": made.redis_url, "EDGE_NODE_ID": node}


def start_marketplace(env: dict[str, str]) -> Any:
    """The local marketplace (fakes/marketplace) for the demo scrape cycle; sources not set already point at it."""
    if env.get("DEV_MARKETPLACE", "1") == "0":
        return None
    if not fakes_available():
        console.print(
            "local marketplace: not started (fakes/ is not in the wheel: run `make run` from a clone "
            "of the repository to get it; DEV_MARKETPLACE=0 silences this)",
            highlight=False,
            soft_wrap=True,
        )
        return None
    from fakes.marketplace import HOSTS, Marketplace

    base = int(env.get("DEV_MARKETPLACE_PORT", "6400"))  # 0: any free ports
    market = Marketplace().start({host: base + i for i, host in enumerate(HOSTS)} if base else None)
    for name, value in market.env().items():
        env.setdefault(name, value)
    console.print(
        f"local marketplace: vinted {market.vinted_url}, grailed {market.grailed_url}, shop {market.shop_url} "
        "(sources vinted, grailed, shop; DEV_MARKETPLACE=0 turns it off)",
        highlight=False,
    )
    return market


def fakes_available() -> bool:
    """True when the local fakes import: in a source checkout, whose root then goes on sys.path."""
    # fakes/ ships in no wheel; `backroom dev` runs as a console script, so the checkout (the
    # directory holding this cli/ next to fakes/) is not on sys.path by itself
    root = Path(__file__).resolve().parent.parent
    if (root / "fakes" / "marketplace" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.append(str(root))
    return importlib.util.find_spec("fakes") is not None
