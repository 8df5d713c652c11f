"""A worker host as a network namespace joined to this one by a veth link, for partition tests.

`Host` makes the namespace and link, cuts the link (`cut`: the host end goes down) or makes
it drop every packet silently (`blackhole`: each end's neighbour entry for the other points at
a MAC address no one has, so frames vanish without an error or a reset; netem and iptables
are not available in every kernel), and heals it. `redis_for(host)` starts a redis-server
that listens on loopback and on the host end of the link. Needs root and `ip` (iproute2);
`unavailable()` says why a test must skip. Used by tests/reliability and bench/chaos.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass

import redis

from cli.stack import RedisProcess, redis_server_binary
from tests.waiting import wait_until

BOGUS_MAC = "02:00:00:00:00:01"


def _ip(*args: str, netns: str = "") -> str:
    prefix = ["ip", "netns", "exec", netns, "ip"] if netns else ["ip"]
    return subprocess.run([*prefix, *args], check=True, capture_output=True, text=True).stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be used here (None: they can)."""
    if shutil.which("ip") is None:
        return "needs `ip` (iproute2) for network namespaces"
    if os.geteuid() != 0:
        return "needs root for network namespaces (ip netns)"
    probe = f"br-probe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except subprocess.CalledProcessError as error:
        return f"`ip netns add` failed: {error.stderr.strip()}"
    return None


class Host:
    """A network namespace with one veth link to this namespace (a /30: .1 here, .2 there)."""

    def __init__(self, index: int = 0) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"br-{tag}"
        self.here, self.there = f"brh{tag}", f"brn{tag}"  # interface names (<= 15 characters)
        octet = 16 + (int(tag, 16) + index * 4) % 200
        self.host_ip, self.ns_ip = f"10.213.{octet}.1", f"10.213.{octet}.2"

    def create(self) -> Host:
        """Make the namespace and bring the link up."""
        _ip("netns", "add", self.name)
        _ip("link", "add", self.here, "type", "veth", "peer", "name", self.there)
        _ip("link", "set", self.there, "netns", self.name)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.here)
        _ip("link", "set", self.here, "up")
        _ip("addr", "add", f"{self.ns_ip}/30", "dev", self.there, netns=self.name)
        _ip("link", "set", self.there, "up", netns=self.name)
        _ip("link", "set", "lo", "up", netns=self.name)
        return self

    def wrap(self) -> list[str]:
        """The command prefix that runs a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """Take the link down (the namespace's end sees its carrier go)."""
        _ip("link", "set", self.here, "down")

    def blackhole(self) -> None:
        """Keep the link up but let every packet vanish silently, both ways."""
        _ip("neigh", "replace", self.ns_ip, "lladdr", BOGUS_MAC, "nud", "permanent", "dev", self.here)
        _ip(
            "neigh",
            "replace",
            self.host_ip,
            "lladdr",
            BOGUS_MAC,
            "nud",
            "permanent",
            "dev",
            self.there,
            netns=self.name,
        )

    def heal(self) -> None:
        """Undo `cut` or `blackhole`."""
        _ip("link", "set", self.here, "up")
        for args, netns in (((self.ns_ip, "dev", self.here), ""), ((self.host_ip, "dev", self.there), self.name)):
            try:
                _ip("neigh", "del", *args, netns=netns)
            except subprocess.CalledProcessError:
                pass  # no entry: the link was only cut

    def remove(self) -> None:
        """Delete the namespace (its end of the link, and so the link, go with it)."""
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        subprocess.run(["ip", "link", "del", self.here], capture_output=True)


@dataclass
class LinkedRedis(RedisProcess):
    """A redis-server that namespaced hosts reach at the host end of their link (and tests at 127.0.0.1)."""

    host: Host | None = None

    @property
    def remote_url(self) -> str:
        """The URL a process inside `host`'s namespace uses."""
        assert self.host is not None
        return f"redis://{self.host.host_ip}:{self.port}/0"

    def start(self, *, appendonly: bool = False, timeout: float = 10.0) -> LinkedRedis:
        """Start it bound to loopback and the link (no persistence), and wait until it answers."""
        assert self.host is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            self.host.host_ip,
            "--protected-mode",
            "no",
            "--dir",
            str(self.directory),
            "--appendonly",
            "no",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        try:
            wait_until(lambda: self.process.poll() is not None or _answers(client), timeout, "redis-server starts")
        finally:
            client.close()
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server did not start (see {self.directory / 'redis.log'})")
        return self


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
