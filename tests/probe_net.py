"""Two throw-away network namespaces for the probe tests, joined by a veth pair (2001:db8::/32 only):

    app  eth0 2001:db8:S:1::10/64     the appliance: probe addresses are minted here, probes sent
    srv  eth0 2001:db8:S:1::123       chronyd (local stratum 8), the real NTP server
              2001:db8:S:1::53        dnsmasq, the pool names
              2001:db8:S:1::321       where tests put a capture socket (`Sink`)
              2001:db8:S:1::4b/5b/6b  where tests put hand-made NTP servers
              2001:db8:S:1::124       nothing listens: ICMP port unreachable

Shared by tests/test_probe.py and tests/test_prober.py: each module that uses the `net` fixture
gets its own namespaces. Code that must run in `app` (pyroute2 works on the current namespace,
sockets too) is an `in_app_*` function, here or in the test module, run there by `Net.call()` in
one long-lived interpreter. Needs root, iproute2, chronyd and dnsmasq; skips with the reason
otherwise. Namespaces and daemons are always removed, and every daemon runs under `timeout`, so
even a leaked one ends by itself.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.probe.pools import PoolLookupError, resolve_pool
from appliance.probe.send import send_probe
from tests.lab.netns import Namespaces, NetnsUnavailable

REPO = str(Path(__file__).resolve().parent.parent)
DAEMON_LIFETIME = 120  # seconds; `timeout` ends a leaked daemon after this


@dataclasses.dataclass
class Net:
    ns: object
    app: str
    srv: str
    site: str
    workdir: Path
    worker: subprocess.Popen | None = None

    def host(self, part: str, subnet: int = 1) -> str:
        return f"{self.site}:{subnet:x}::{part}"

    @property
    def prefix(self) -> str:
        return f"{self.site}:1::/64"

    @property
    def app_address(self) -> str:
        return self.host("10")

    @property
    def chrony(self) -> str:
        return self.host("123")

    @property
    def dns(self) -> str:
        return self.host("53")

    @property
    def sink(self) -> str:
        return self.host("321")

    def call(self, function: str, *args, timeout: float = 20):
        """Run `in_app_<function>(*args)` in the app namespace (by the worker there); its JSON result.

        The function is looked up in this module, then in the test module that uses `net`."""
        self.worker.stdin.write((json.dumps([function, args]) + "\n").encode())
        self.worker.stdin.flush()
        if not select.select([self.worker.stdout], [], [], timeout)[0]:
            self.worker.kill()
            raise AssertionError(f"in_app_{function}{args}: no answer within {timeout} s")
        line = self.worker.stdout.readline()
        if not line:
            raise AssertionError(f"the app worker died: {(self.workdir / 'worker.log').read_text()[-2000:]}")
        answer = json.loads(line)
        if "raised" in answer:
            raise AssertionError(f"in_app_{function}{args} raised:\n{answer['raised']}")
        return answer["ok"]

    def ip(self, *args: str) -> str:
        return self.ns.exec(self.app, ["ip", *args]).stdout

    def kernel_view(self, address: str, dev: str = "eth0") -> dict | None:
        """What `ip` says about one address on the app interface (independent of pyroute2)."""
        shown = json.loads(self.ip("-j", "-6", "addr", "show", "dev", dev) or "[]")
        for link in shown:
            for info in link.get("addr_info", []):
                if info.get("local") == address:
                    return info
        return None


DNS_RECORDS = {
    # name: records; AAAA out of numeric order and spelled long, plus an A that must be ignored
    "pool.probe.test": ["2001:db8:{s}:2:0:0:0:10", "2001:db8:{s}:2::9", "2001:db8:{s}:2::a:1", "192.0.2.10"],
    "v4only.probe.test": ["192.0.2.20"],
    # pools whose members are real servers here: chronyd and the capture address
    "ntp.probe.test": ["2001:db8:{s}:1::123", "2001:db8:{s}:1::321"],
    "chrony.probe.test": ["2001:db8:{s}:1::123"],
    "sink.probe.test": ["2001:db8:{s}:1::321"],
}


@pytest.fixture(scope="module")
def net(request, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    missing = [tool for tool in ("chronyd", "dnsmasq", "timeout") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)} (Debian packages chrony, dnsmasq-base)")
    try:
        ns = Namespaces(f"pb{secrets.token_hex(3)}")
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    workdir = tmp_path_factory.mktemp("probe-net")
    with ns:
        try:
            app, srv = ns.add("app"), ns.add("srv")
        except NetnsUnavailable as exc:
            pytest.skip(str(exc))
        site = f"2001:db8:{secrets.randbelow(0x10000):x}"
        net = Net(ns, app, srv, site, workdir)
        # Link-local addresses without duplicate address detection: a tentative one loses the
        # first neighbour solicitation now and then, and the packet waits a second for the retry.
        for where in (app, srv):
            ns.sysctl(where, "net.ipv6.conf.default.accept_dad", "0")
        ns.veth(app, "eth0", srv, "eth0")
        # From now on app does DAD, as a real LAN interface does: a probe address without NODAD
        # would be tentative, unusable, for a second.
        ns.sysctl(app, "net.ipv6.conf.eth0.accept_dad", "1")
        ns.address(app, "eth0", f"{net.app_address}/64")
        for part in ("123", "53", "321", "4b", "5b", "6b", "124"):
            ns.address(srv, "eth0", f"{net.host(part)}/64")

        conf = workdir / "chrony.conf"
        conf.write_text(
            "allow all\n"
            "local stratum 8\n"
            f"bindaddress {net.chrony}\n"
            "port 123\n"
            "cmdport 0\n"
            "bindcmdaddress /\n"  # no Unix command socket: the host's chronyd keeps its own
            f"pidfile {workdir / 'chronyd.pid'}\n"
            f"driftfile {workdir / 'chrony.drift'}\n")
        records = [f"--host-record={name},{record.format(s=site.split(':')[2])}"
                   for name, values in DNS_RECORDS.items() for record in values]
        for name, args in (
                ("chronyd", ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)]),
                ("dnsmasq", ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                             "--port=53", f"--listen-address={net.dns}", "--bind-interfaces", "--user=root",
                             f"--pid-file={workdir / 'dnsmasq.pid'}", "--local=/probe.test/",
                             "--log-facility=-", *records])):
            with open(workdir / f"{name}.log", "ab") as log:
                ns.popen(srv, ["timeout", "-k", "5", str(DAEMON_LIFETIME), *args], stdout=log, stderr=subprocess.STDOUT)
        # One interpreter in app runs every in_app_* call: importing pyroute2 and dnspython once.
        with open(workdir / "worker.log", "ab") as log:
            net.worker = ns.popen(app, ["timeout", "-k", "5", str(DAEMON_LIFETIME), sys.executable, "-c", WORKER,
                                         "tests.probe_net", f"tests.{request.path.stem}"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, cwd=REPO,
                                  env={**os.environ, "PYTHONPATH": REPO})
        ready = net.call("wait_until_served", net.chrony, net.dns, 15)
        if ready is not True:
            logs = "\n".join(f"{p.name}: {p.read_text()[-800:]}" for p in workdir.glob("*.log"))
            raise AssertionError(f"servers not ready: {ready}\n{logs}")
        yield net


# Code run inside the app namespace (by Net.call). Each returns something JSON can carry.

WORKER = r"""
import importlib, json, sys, traceback
modules = [importlib.import_module(name) for name in sys.argv[1:]]
for line in sys.stdin:  # until EOF; the fixture's teardown kills us anyway
    function, args = json.loads(line)
    try:
        found = next(getattr(m, "in_app_" + function) for m in modules if hasattr(m, "in_app_" + function))
        answer = {"ok": found(*args)}
    except Exception:
        answer = {"raised": traceback.format_exc()}
    print(json.dumps(answer), flush=True)
"""


def in_app_wait_until_served(ntp_server: str, nameserver: str, seconds: float):
    deadline = time.monotonic() + seconds
    problem = "never asked"
    while time.monotonic() < deadline:
        try:
            resolve_pool("pool.probe.test", nameservers=[nameserver], timeout=0.3)
            result = send_probe(_ordinary_source(ntp_server), ntp_server, "ntp", timeout=0.3)
            if result.reply is not None and result.reply.stratum == 8:
                return True
            problem = result.error or f"stratum {result.reply.stratum}"
        except PoolLookupError as exc:
            problem = str(exc)
        time.sleep(0.1)
    return problem


def _ordinary_source(server: str) -> str:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.connect((server, 9))
        return sock.getsockname()[0]


# ---- a capture socket and hand-made NTP servers in srv ---------------------------------------

SINK = r"""
import json, os, secrets, select, socket, struct, sys, time
UNIX_TO_NTP = 2208988800
def stamp(unix):
    return struct.pack("!II", (int(unix) + UNIX_TO_NTP) % 2**32, int((unix % 1) * 2**32))
def reply(origin, stratum, refid, ahead=0.0):
    now = time.time() + ahead
    return (bytes([0b00_100_100, stratum, 6, 0xEC]) + bytes(8) + refid + stamp(now - 1)
            + origin + stamp(now) + stamp(now + 0.0001))
spec = json.loads(sys.argv[1])
sockets = {}
for address, port, mode in spec["sockets"]:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.bind((address, port))
    sockets[sock.fileno()] = (sock, address, port, mode)
print("ready", flush=True)
deadline = time.monotonic() + spec["seconds"]
while (remaining := deadline - time.monotonic()) > 0:
    readable, _, _ = select.select([0, *sockets], [], [], remaining)
    if 0 in readable and not os.read(0, 100):
        break  # the test closed our stdin: report
    for fd in readable:
        if fd == 0:
            continue
        sock, address, port, mode = sockets[fd]
        data, peer = sock.recvfrom(4096)
        print(json.dumps({"to": [address, port], "source": peer[0], "sport": peer[1], "data": data.hex()}), flush=True)
        origin = data[40:48]
        if mode == "kod":
            sock.sendto(reply(origin, 0, b"RATE"), peer)
        elif mode == "stale":
            sock.sendto(reply(secrets.token_bytes(8), 3, bytes([192, 0, 2, 1])), peer)
        elif mode == "stale-then-good":
            sock.sendto(reply(secrets.token_bytes(8), 9, bytes([192, 0, 2, 9])), peer)
            sock.sendto(b"\x24 not even NTP", peer)
            sock.sendto(reply(origin, 3, bytes([192, 0, 2, 1]), ahead=2.5), peer)
print("end", flush=True)
"""


class Sink:
    """Sockets in srv that report every datagram they get (and answer as their mode says)."""

    def __init__(self, net: Net, sockets: list[tuple[str, int, str]], seconds: float = 15):
        self.process = net.ns.popen(net.srv, [sys.executable, "-c", SINK, json.dumps(
            {"sockets": sockets, "seconds": seconds})], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.pending = b""
        if self._line(10) != "ready":
            self.process.kill()
            raise AssertionError(f"sink did not start: {self.process.stderr.read().decode()[-800:]}")

    def _line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                return None
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def next(self, timeout: float) -> dict | None:
        """The next datagram reported, or None if none came within `timeout` seconds."""
        line = self._line(timeout)
        return None if line is None or line == "end" else json.loads(line)

    def datagrams(self, expected: int, within: float = 3.0, settle: float = 0.3) -> list[dict]:
        """What arrived: waits up to `within` s for `expected` datagrams, then `settle` s more
        for any that must not come."""
        seen = []
        deadline = time.monotonic() + within
        while len(seen) < expected and (line := self._line(max(0.0, deadline - time.monotonic()))) is not None:
            seen.append(json.loads(line))
        time.sleep(settle)
        self.process.stdin.close()  # the sink reports the rest and ends
        while (line := self._line(5)) not in (None, "end"):
            seen.append(json.loads(line))
        assert line == "end", f"sink failed: {self.process.stderr.read().decode()[-800:]}"
        self.process.wait(timeout=5)
        return seen

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
