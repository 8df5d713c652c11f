"""Processes the chaos scenarios start and break: worker pools (optionally in a network namespace),
a namespace's link to the host, and a Sentinel-managed primary with its replica.

Shared by bench/chaos.py and tests/reliability/test_chaos.py; everything here is stopped by its
`stop()` (the scenarios call it in `finally`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import redis

from cli.stack import RedisProcess, free_port, process_tree, redis_server_binary, stop_tree

REPO = Path(__file__).resolve().parent.parent
ACTORS_MODULE = "bench._chaos_actors"


class WorkerPool:
    """A `backroom worker` tree (supervisor -> one Dramatiq master per process -> its worker process)."""

    def __init__(
        self, log: Path, env: dict[str, str], *, processes: int, threads: int, netns: str | None = None
    ) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []  # `ip netns exec` execs: same pid
        command = [
            *prefix,
            sys.executable,
            "-m",
            "cli.main",
            "worker",
            "-p",
            str(processes),
            "-t",
            str(threads),
            "--module",
            ACTORS_MODULE,
        ]
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.log = log

    def masters(self) -> list[int]:
        """Pids of the pool's Dramatiq masters (the supervisor's children)."""
        return [pid for pid, parent in process_tree(self.process.pid).items() if parent == self.process.pid]

    def workers(self) -> list[int]:
        """Pids of the pool's worker processes (the masters' children)."""
        masters = set(self.masters())
        return [pid for pid, parent in process_tree(self.process.pid).items() if parent in masters]

    def pids(self) -> set[int]:
        """Every live process of the tree."""
        return set(process_tree(self.process.pid))

    def terminate(self) -> None:
        """SIGTERM the supervisor, as a deploy does (it stops its masters gracefully); does not wait."""
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Kill whatever is left of the tree."""
        if self.process.poll() is None:
            stop_tree(self.process)
        else:
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        """The end of the pool's log, for error messages."""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def kill(pid: int, sig: int = signal.SIGKILL) -> bool:
    """Send `sig` to `pid`; False when it is already gone."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def run(*args: str) -> None:
    """Run a command (ip), raising with its output when it fails."""
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")


class Netns:
    """A network namespace joined to the host by a veth pair: host end `<name>h`, namespace end `<name>n`.

    The host end carries `10.231.<index>.1` (bind Redis there), the namespace end `.2`.
    `cut()` sets the host end down: the namespace's TCP connections stall as on a partitioned host.
    """

    def __init__(self, index: int | None = None) -> None:
        # per process by default: two chaos runs at once (two worktrees) get different links and subnets
        index = 20 + os.getpid() % 200 if index is None else index
        self.name = f"brchaos{os.getpid() % 10000}x{index}"
        self.host_if, self.ns_if = f"bc{os.getpid() % 10000}x{index}h", f"bc{os.getpid() % 10000}x{index}n"
        self.host_ip, self.ns_ip = f"10.231.{index}.1", f"10.231.{index}.2"
        self.created = False

    def create(self) -> Netns:
        """Create the namespace and its link (raises RuntimeError when namespaces are unavailable)."""
        run("ip", "netns", "add", self.name)
        self.created = True
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        run("ip", "link", "set", self.ns_if, "netns", self.name)
        run("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.host_if)
        run("ip", "link", "set", self.host_if, "up")
        for args in (
            ("addr", "add", f"{self.ns_ip}/24", "dev", self.ns_if),
            ("link", "set", self.ns_if, "up"),
            ("link", "set", "lo", "up"),
        ):
            run("ip", "netns", "exec", self.name, "ip", *args)
        return self

    def cut(self) -> None:
        """Take the link down (packets to and from the namespace are dropped)."""
        run("ip", "link", "set", self.host_if, "down")

    def heal(self) -> None:
        """Bring the link back up."""
        run("ip", "link", "set", self.host_if, "up")

    def delete(self) -> None:
        """Remove the link and the namespace (processes still inside should be stopped first)."""
        if self.created:
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.created = False


class SentinelSet:
    """A primary, one replica and three Sentinels (`redis-server --sentinel`), all on 127.0.0.1."""

    MASTER = "mymaster"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary = RedisProcess(root / "primary").start()
        self.replica = RedisProcess(
            root / "replica", extra_args=("--replicaof", "127.0.0.1", str(self.primary.port))
        ).start()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen] = []
        for index, port in enumerate(self.sentinel_ports):
            directory = root / f"sentinel{index}"
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "sentinel.conf"  # Sentinel rewrites its config file: one each
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\nlogfile {directory / 'sentinel.log'}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                f"sentinel failover-timeout {self.MASTER} 10000\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [redis_server_binary(), str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    @property
    def addresses(self) -> str:
        """REDIS_SENTINELS for this set."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def primary_port(self) -> int | None:
        """The port the Sentinels currently name as primary (None until they agree on one)."""
        try:
            with redis.Redis(port=self.sentinel_ports[0], socket_timeout=2) as client:
                found = client.sentinel_get_master_addr_by_name(self.MASTER)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def ready(self) -> bool:
        """True once every Sentinel knows the replica and the other Sentinels (a failover can then happen)."""
        try:
            for port in self.sentinel_ports:
                with redis.Redis(port=port, socket_timeout=2) as client:
                    master = client.sentinel_master(self.MASTER)
                    if int(master.get("num-slaves", 0)) < 1 or int(master.get("num-other-sentinels", 0)) < 2:
                        return False
            return True
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """Stop the Sentinels and both servers."""
        for sentinel in self.sentinels:
            sentinel.kill()
            sentinel.wait(timeout=10)
        for server in (self.replica, self.primary):
            server.stop(kill=True)
