"""The network-namespace lab: a home LAN behind a router, DNS, an NTP pool with one harvester, two scanners.

    lan (appliance, eth0) ─┐                         ┌─ dns   2001:db8:N:10::53   dnsmasq: the pool names
    cli (LAN device, eth0) ┴─ br-lan ─ rtr ─ veths ──┼─ ntp1  2001:db8:N:11::123  chronyd (honest)
      LAN 2001:db8:N:1::/64, RA by radvd             ├─ ntp2  2001:db8:N:12::123  chronyd (honest)
                                                     ├─ harv  2001:db8:N:13::123  chronyd + harvester.py
                                                     ├─ scan1 2001:db8:N:21::100  first-wave nmap
                                                     └─ scan2 2001:db8:N:22::100  second-wave nmap

N is random per run. Every address is in 2001:db8::/32 and no namespace has a route out of the lab.
Every daemon runs under `timeout`, so even a leaked one stops by itself after `lifetime` seconds.

    python -m tests.lab.lab      # start it, print its facts, wait for Ctrl-C / SIGTERM, clean up
"""
from __future__ import annotations

import ipaddress
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.lab.netns import Namespaces, NetnsUnavailable, repo_root, run

REQUIRED_TOOLS = ("radvd", "chronyd", "dnsmasq", "nmap", "timeout")
LAN_DEV = "eth0"  # the appliance's interface name, as on a Raspberry Pi
BRIDGE = "br-lan"
TEMP_PREFERRED_LFT = 1200  # the seed's 20-minute privacy addresses
TEMP_VALID_LFT = 2400
START_TIMEOUT = 20.0
NTP_PORT = 123

# Upstream namespaces: short name -> (subnet number inside the /48, host part of its address)
UPSTREAM = {
    "dns": (0x10, "53"),
    "ntp1": (0x11, "123"),
    "ntp2": (0x12, "123"),
    "harv": (0x13, "123"),
    "scan1": (0x21, "100"),
    "scan2": (0x22, "100"),
}


def missing_tools() -> list[str]:
    return [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]


# ---- Small probes; they run inside a namespace through Lab.call() and return JSON-able values ----

def ntp_request() -> bytes:
    # 48 bytes: LI 0, version 4, mode 3 (client); the rest may be zero for a server to answer.
    return bytes([0b00_100_011]) + bytes(47)


def ntp_reply_mode(server: str, timeout: float = 1.0, source: str | None = None) -> int | None:
    """Send one NTP client request; return the mode of the reply (4 = server), None if no answer."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        if source:
            sock.bind((source, 0))
        sock.settimeout(timeout)
        sock.sendto(ntp_request(), (server, NTP_PORT))
        try:
            reply, _ = sock.recvfrom(512)
        except socket.timeout:
            return None
    return reply[0] & 0b111 if len(reply) >= 48 else None


def resolve_aaaa(nameserver: str, name: str, timeout: float = 1.0) -> list[str]:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver]
    resolver.lifetime = timeout
    return sorted(record.address for record in resolver.resolve(name, "AAAA"))


def send_udp(source: str | None, destination: str, port: int, payload: str = "") -> None:
    """One UDP datagram (empty unless told otherwise) from `source`, or from the kernel's choice."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        if source:
            sock.bind((source, 0))
        sock.sendto(payload.encode(), (destination, port))


def udp_port_state(destination: str, port: int, timeout: float = 1.0) -> str:
    """'open' (answered), 'closed' (ICMP port unreachable came back) or 'silent': proves reachability."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((destination, port))
        sock.send(b"")
        try:
            sock.recv(512)
            return "open"
        except ConnectionRefusedError:
            return "closed"
        except socket.timeout:
            return "silent"


def wait_for_ntp(servers: list[str], seconds: float) -> float:
    """Until every server answers a client request; returns the seconds it took."""
    start = time.monotonic()
    waiting = list(servers)
    while waiting:
        if time.monotonic() - start > seconds:
            raise TimeoutError(f"no NTP answer from {waiting} within {seconds} s")
        waiting = [server for server in waiting if ntp_reply_mode(server, timeout=0.3) != 4]
    return time.monotonic() - start


def wait_for_dns(nameserver: str, names: list[str], seconds: float) -> float:
    start = time.monotonic()
    for name in names:
        while True:
            try:
                resolve_aaaa(nameserver, name, timeout=0.3)
                break
            except Exception as error:  # noqa: BLE001 - any failure means "not yet"
                if time.monotonic() - start > seconds:
                    raise TimeoutError(f"dnsmasq did not answer {name} within {seconds} s: {error}")
                time.sleep(0.1)
    return time.monotonic() - start


# ---- The lab ----

class Lab:
    def __init__(self, tag: str | None = None, delay1: float = 5, delay2: float = 30,
                 workdir: str | Path | None = None, lifetime: float = 3600, max_targets: int = 20):
        self.delay1, self.delay2, self.lifetime, self.max_targets = delay1, delay2, lifetime, max_targets
        self.ns = Namespaces(tag)
        self.tag = self.ns.tag
        self.owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"hw-lab-{self.tag}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.journal_path = self.workdir / "harvester.jsonl"

        self.site = secrets.randbelow(0x10000)
        self.site_prefix = f"2001:db8:{self.site:x}::/48"
        self.lan_prefix = self.subnet(1)
        self.router_lan_address = self.host(1, "1")
        self.addresses = {short: self.host(number, host) for short, (number, host) in UPSTREAM.items()}
        self.nameserver = self.addresses["dns"]
        self.honest = [self.addresses["ntp1"], self.addresses["ntp2"]]
        self.harvester = self.addresses["harv"]
        self.scanner_nets = [self.subnet(UPSTREAM["scan1"][0]), self.subnet(UPSTREAM["scan2"][0])]
        self.pools = {
            "0.pool.lab.test": [self.addresses["ntp1"], self.harvester],
            "1.pool.lab.test": [self.addresses["ntp2"], self.harvester],
        }
        self.lan_dev = LAN_DEV
        self.names = {short: self.ns.name(short) for short in ["rtr", "lan", "cli", *UPSTREAM]}
        self.rtr_ns, self.lan_ns, self.cli_ns = self.names["rtr"], self.names["lan"], self.names["cli"]
        self.etc_netns_dirs: list[Path] = []
        self.start_seconds: float | None = None
        self.closed = False

    def subnet(self, number: int) -> str:
        return f"2001:db8:{self.site:x}:{number:x}::/64"

    def host(self, number: int, host: str) -> str:
        return f"2001:db8:{self.site:x}:{number:x}::{host}"

    # -- lifecycle --

    def __enter__(self) -> "Lab":
        # `with Lab(...).start() as lab:` is fine too: a started lab is not started twice.
        return self if self.start_seconds is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> "Lab":
        missing = missing_tools()
        if missing:
            raise NetnsUnavailable(f"missing tools: {', '.join(missing)}")
        began = time.monotonic()
        try:
            self.build_router_and_lan()
            self.build_upstream()
            self.write_resolv_conf()
            self.start_dns()
            self.start_ntp_servers()
            self.start_radvd()
            self.wait_until_ready()
            self.start_harvester()
        except BaseException:
            self.close()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.ns.close()
        for directory in self.etc_netns_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- building --

    def build_router_and_lan(self) -> None:
        rtr = self.ns.add("rtr")
        self.ns.sysctl(rtr, "net.ipv6.conf.all.forwarding", "1")
        # The router's own addresses are static and unique by construction: no DAD wait for radvd.
        self.ns.sysctl(rtr, "net.ipv6.conf.default.accept_dad", "0")
        run(["ip", "-n", rtr, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0", "mcast_snooping", "0"])
        run(["ip", "-n", rtr, "link", "set", BRIDGE, "up"])
        self.ns.address(rtr, BRIDGE, f"{self.router_lan_address}/64")
        for short, port in (("lan", "p-lan"), ("cli", "p-cli")):
            ns = self.ns.add(short)
            # Privacy addresses must be configured before the first RA arrives: set them on
            # `default` before the interface exists (it inherits them), then on the interface too.
            self.privacy_addresses(ns, "default")
            self.ns.veth(rtr, port, ns, LAN_DEV)
            self.privacy_addresses(ns, LAN_DEV)
            run(["ip", "-n", rtr, "link", "set", port, "master", BRIDGE])

    def privacy_addresses(self, ns: str, conf: str) -> None:
        self.ns.sysctl(ns, f"net.ipv6.conf.{conf}.use_tempaddr", "2")
        self.ns.sysctl(ns, f"net.ipv6.conf.{conf}.temp_prefered_lft", str(TEMP_PREFERRED_LFT))
        self.ns.sysctl(ns, f"net.ipv6.conf.{conf}.temp_valid_lft", str(TEMP_VALID_LFT))

    def build_upstream(self) -> None:
        rtr = self.rtr_ns
        for short, (number, _) in UPSTREAM.items():
            ns = self.ns.add(short)
            self.ns.veth(rtr, f"v-{short}", ns, "eth0")
            self.ns.address(rtr, f"v-{short}", f"{self.host(number, '1')}/64")
            self.ns.address(ns, "eth0", f"{self.addresses[short]}/64")
            run(["ip", "-n", ns, "-6", "route", "add", "default", "via", self.host(number, "1")])

    def write_resolv_conf(self) -> None:
        # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
        for ns in (self.lan_ns, self.cli_ns):
            directory = Path("/etc/netns") / ns
            directory.mkdir(parents=True, exist_ok=True)
            self.etc_netns_dirs.append(directory)
            (directory / "resolv.conf").write_text(f"nameserver {self.nameserver}\n")

    # -- daemons --

    def daemon(self, short: str, args: list[str]) -> subprocess.Popen:
        """Start a foreground daemon in namespace `short`, logging to <workdir>/<short>.log."""
        log = open(self.workdir / f"{short}.log", "ab")
        try:
            bounded = ["timeout", "-k", "5", str(int(self.lifetime)), *args]
            return self.ns.popen(self.names[short], bounded, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def start_dns(self) -> None:
        records = [f"--host-record={name},{address}" for name, members in self.pools.items() for address in members]
        self.daemon("dns", [
            "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
            f"--listen-address={self.nameserver}", "--bind-interfaces", "--user=root",
            f"--pid-file={self.workdir / 'dnsmasq.pid'}", "--local=/lab.test/", "--log-facility=-",
            *records])

    def start_ntp_servers(self) -> None:
        for short in ("ntp1", "ntp2", "harv"):
            conf = self.workdir / f"chrony-{short}.conf"
            conf.write_text(
                "allow all\n"
                "local stratum 8\n"
                "cmdport 0\n"
                "bindcmdaddress /\n"  # no Unix command socket either: it would be the host chronyd's path
                f"pidfile {self.workdir / f'chrony-{short}.pid'}\n")
            # -x: never touch the host's clock; -d: foreground, log to stderr; -u root: our workdir.
            self.daemon(short, ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)])

    def start_radvd(self) -> None:
        conf = self.workdir / "radvd.conf"
        conf.write_text(
            f"interface {BRIDGE} {{\n"
            "    AdvSendAdvert on;\n"
            "    MinRtrAdvInterval 3;\n"
            "    MaxRtrAdvInterval 10;\n"
            f"    prefix {self.lan_prefix} {{ AdvOnLink on; AdvAutonomous on; }};\n"
            f"    RDNSS {self.nameserver} {{ }};\n"
            "};\n")
        conf.chmod(0o644)  # radvd refuses a config others can write
        self.daemon("rtr", ["radvd", "--nodaemon", "--config", str(conf), "--pidfile",
                            str(self.workdir / "radvd.pid"), "--logmethod", "stderr"])

    def start_harvester(self) -> None:
        # The venv's python, started with the script's path so it needs no package on sys.path.
        self.daemon("harv", [
            sys.executable, str(Path(__file__).with_name("harvester.py")),
            "--journal", str(self.journal_path), "--lan-prefix", self.lan_prefix,
            "--scanner1", self.names["scan1"], "--scanner2", self.names["scan2"],
            "--delay1", str(self.delay1), "--delay2", str(self.delay2),
            "--max-targets", str(self.max_targets), "--lifetime", str(self.lifetime)])
        self.wait(lambda: any(line["event"] == "started" for line in self.journal()), "harvester start")

    def wait_until_ready(self) -> None:
        self.wait(lambda: self.lan_address() and self.lan_temporary_addresses(), "SLAAC and temporary address on lan")
        self.call(self.lan_ns, "wait_for_dns", self.nameserver, list(self.pools), START_TIMEOUT)
        # Asked from the router, not from lan: the harvester must not learn the appliance's address
        # before the test or demo decides to contact it (the sidecar is not started yet anyway).
        self.call(self.rtr_ns, "wait_for_ntp", self.honest + [self.harvester], START_TIMEOUT)

    def wait(self, condition, what: str, seconds: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"lab {self.tag}: no {what} within {seconds} s (logs in {self.workdir})")
            time.sleep(0.1)

    # -- facts and helpers for tests and the demo --

    def call(self, ns: str, function: str, *args, timeout: float = 30):
        """Run one of this module's probe functions inside namespace `ns`; return its result."""
        code = ("import json, sys; sys.path.insert(0, sys.argv[1]); from tests.lab import lab; "
                "print(json.dumps(getattr(lab, sys.argv[2])(*json.loads(sys.argv[3]))))")
        done = self.ns.python(ns, code, str(repo_root()), function, json.dumps(args), timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{function}{args} in {ns} failed: {done.stderr.strip()[-800:]}")
        return json.loads(done.stdout)

    def lan_addresses(self) -> list[dict]:
        shown = run(["ip", "-n", self.lan_ns, "-j", "-6", "addr", "show", "dev", LAN_DEV, "scope", "global"])
        infos = [info for link in json.loads(shown.stdout or "[]") for info in link.get("addr_info", [])]
        prefix = ipaddress.ip_network(self.lan_prefix)
        return [info for info in infos if "local" in info and ipaddress.ip_address(info["local"]) in prefix
                and not info.get("tentative") and not info.get("dadfailed")]

    def lan_address(self) -> str | None:
        """The SLAAC global address (stable, the one privacy addresses are made beside)."""
        for info in self.lan_addresses():
            # A /64 from the RA; the appliance's minted probe addresses are /128s.
            if info.get("dynamic") and info["prefixlen"] == 64 and not info.get("temporary"):
                return info["local"]
        return None

    def lan_temporary_addresses(self) -> list[str]:
        return [info["local"] for info in self.lan_addresses() if info.get("temporary")]

    def journal(self) -> list[dict]:
        try:
            lines = self.journal_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        # The last line may be half written while we read.
        return [json.loads(line) for line in lines if line.endswith("}")]

    def facts(self) -> dict:
        return {
            "tag": self.tag, "namespaces": self.names, "lan_ns": self.lan_ns, "cli_ns": self.cli_ns,
            "lan_dev": self.lan_dev, "lan_prefix": self.lan_prefix, "lan_address": self.lan_address(),
            "lan_temporary_addresses": self.lan_temporary_addresses(), "router": self.router_lan_address,
            "nameserver": self.nameserver, "pools": self.pools, "honest": self.honest,
            "harvester": self.harvester, "scanner_nets": self.scanner_nets, "delay1": self.delay1,
            "delay2": self.delay2, "journal_path": str(self.journal_path), "workdir": str(self.workdir),
            "start_seconds": round(self.start_seconds or 0, 2),
        }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Start the HarvestWatch lab and keep it up until Ctrl-C / SIGTERM.")
    parser.add_argument("--tag")
    parser.add_argument("--delay1", type=float, default=5)
    parser.add_argument("--delay2", type=float, default=30)
    parser.add_argument("--lifetime", type=float, default=3600, help="tear down by itself after this many seconds")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with Lab(tag=args.tag, delay1=args.delay1, delay2=args.delay2, workdir=args.workdir,
                 lifetime=args.lifetime) as lab:
            print(json.dumps(lab.facts(), indent=2), flush=True)
            time.sleep(args.lifetime)
    except KeyboardInterrupt:
        pass
    except NetnsUnavailable as error:
        print(f"lab unavailable: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
