"""Throw-away network namespaces for tests and the lab: unique names per run, always deleted.

Every namespace made here has a name starting with `hw-<tag>-` (tag random per `Namespaces`),
so several runs, and other programs, can share one machine. Addresses are the caller's to pick,
from 2001:db8::/32 only.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

TIMEOUT = 20


class NetnsUnavailable(RuntimeError):
    """This machine does not allow what the lab needs (not root, no `ip`, netns refused)."""


def require_root_and_ip() -> None:
    if os.geteuid() != 0:
        raise NetnsUnavailable("needs root (network namespaces)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("`ip` (iproute2) is not on PATH")


def run(args: list[str], *, check: bool = True, timeout: float = TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, timeout=timeout, capture_output=True, text=True, **kwargs)


class Namespaces:
    """A set of namespaces `hw-<tag>-<name>`; `close()` kills what runs in them and deletes them."""

    def __init__(self, tag: str | None = None):
        require_root_and_ip()
        self.tag = tag or secrets.token_hex(3)
        self.created: list[str] = []
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> "Namespaces":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def name(self, short: str) -> str:
        return f"hw-{self.tag}-{short}"

    def add(self, short: str) -> str:
        ns = self.name(short)
        done = run(["ip", "netns", "add", ns], check=False)
        if done.returncode != 0:
            raise NetnsUnavailable(f"`ip netns add` refused: {done.stderr.strip()}")
        self.created.append(ns)
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return ns

    def veth(self, ns_a: str, dev_a: str, ns_b: str, dev_b: str) -> None:
        """A veth pair between two namespaces, both ends up. Names live inside the namespaces."""
        run(["ip", "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b])
        run(["ip", "-n", ns_a, "link", "set", dev_a, "up"])
        run(["ip", "-n", ns_b, "link", "set", dev_b, "up"])

    def address(self, ns: str, dev: str, cidr: str, *, nodad: bool = True) -> None:
        run(["ip", "-n", ns, "addr", "add", cidr, "dev", dev] + (["nodad"] if nodad else []))

    def sysctl(self, ns: str, key: str, value: str) -> None:
        run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"])

    def exec(self, ns: str, args: list[str], **kwargs) -> subprocess.CompletedProcess:
        return run(["ip", "netns", "exec", ns] + args, **kwargs)

    def python(self, ns: str, code: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Run Python code inside `ns` with this interpreter (the project's venv)."""
        return self.exec(ns, [sys.executable, "-c", code, *args], **kwargs)

    def popen(self, ns: str, args: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        process = subprocess.Popen(["ip", "netns", "exec", ns] + args, start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, 15)
                    process.wait(timeout=5)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(process.pid, 9)
                        process.wait(timeout=5)
                    except (ProcessLookupError, subprocess.TimeoutExpired):
                        pass
        for ns in reversed(self.created):
            # Anything still running inside (a daemon that forked) goes with the namespace.
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", ns], check=False)
        self.created.clear()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
