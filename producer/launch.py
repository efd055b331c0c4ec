"""Run chestct processes locally: free ports, waiting for a listener, stopping process groups.

Shared by the demo, the tests and the benchmarks, which all start producers and consumers
as subprocesses and must leave no process or port behind, also on failure or Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

#: The folder holding producer/ and consumer/: children started from anywhere import it.
TREE = Path(__file__).resolve().parents[1]


def tree_env(**extra: str) -> dict[str, str]:
    """This process's environment with :data:`TREE` first on ``PYTHONPATH``, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TREE), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether 127.0.0.1:``port`` can be bound."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Wait until something listens on 127.0.0.1:``port``.

    Raises
    ------
    RuntimeError
        If ``proc`` exits first, or nothing listens within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listened on port {port} within {timeout:.0f}s")


class Processes:
    """Subprocesses in their own process groups; :meth:`stop_all` always frees everything."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], log: Path | None = None, **kw) -> subprocess.Popen:
        """Start ``args`` in a new session; output goes to ``log`` when given, else is inherited."""
        if log is None:
            proc = subprocess.Popen(args, start_new_session=True, **kw)
        else:
            with open(log, "ab") as handle:
                proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    @staticmethod
    def kill(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process's whole group (a JVM and Spark's Python workers too)."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, proc: subprocess.Popen, grace: float = 15.0) -> None:
        """SIGTERM the group, wait up to ``grace`` seconds, then SIGKILL what is left."""
        if proc.poll() is None:
            self.kill(proc, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Children (a JVM, Spark's Python workers) may outlive the leader: end the group.
        self.kill(proc, signal.SIGKILL)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)
