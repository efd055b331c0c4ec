"""Test hosts of our own: Linux network namespaces joined by veth pairs to one bridge.

Each :class:`Host` is a namespace with its own loopback and one address on a private
/24 that exists only between these namespaces (the bridge lives in a namespace of its
own), so the processes started in them can reach each other and nothing else. Everything
is removed by :meth:`Network.close`, also after a failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

#: The test network: only these namespaces have addresses on it.
SUBNET = "10.251.7"


def can_create_namespaces() -> str | None:
    """None when this machine lets us build namespaces, else the reason it does not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"cct-probe-{os.getpid()}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", netns, "ip"] if netns else ["ip"]) + list(args)
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")


@dataclass
class Host:
    name: str       # namespace name
    address: str    # its address on the test network

    def run(self, argv: list[str]) -> list[str]:
        """``argv`` to start inside this host (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name, *argv]


class Network:
    """A bridge and hosts on it; use as a context manager."""

    def __init__(self, tag: str):
        self.tag = f"cct{tag}"[:8]
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []

    def __enter__(self) -> "Network":
        self._add_namespace(self.switch)
        _ip("link", "add", "br0", "type", "bridge", netns=self.switch)
        _ip("link", "set", "br0", "up", netns=self.switch)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("link", "set", "lo", "up", netns=name)

    def add_host(self, role: str) -> Host:
        """A new host ``role`` with the next address (``SUBNET.2``, ``.3`` ...)."""
        number = len(self.hosts) + 2
        host = Host(name=f"{self.tag}-{role}", address=f"{SUBNET}.{number}")
        self._add_namespace(host.name)
        outer, inner = f"{self.tag}o{number}", f"{self.tag}i{number}"
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", outer, "netns", self.switch)
        _ip("link", "set", outer, "master", "br0", netns=self.switch)
        _ip("link", "set", outer, "up", netns=self.switch)
        _ip("link", "set", inner, "netns", host.name)
        _ip("link", "set", inner, "name", "eth0", netns=host.name)
        _ip("addr", "add", f"{host.address}/24", "dev", "eth0", netns=host.name)
        _ip("link", "set", "eth0", "up", netns=host.name)
        self.hosts[role] = host
        return host

    def close(self) -> None:
        """Delete every namespace (their veth ends go with them)."""
        for name in reversed(self._namespaces):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self._namespaces.clear()
