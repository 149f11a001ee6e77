"""The network-namespace lab: a home LAN behind a home router, the internet, DNS, an NTP pool with
harvesters, and the scanners they feed.

    lan (appliance, eth0) ─┐                       ┌─ dns    2001:db8:I:10::53    dnsmasq: the pool names
    cli (LAN device, eth0) ┴─ br-lan ─ rtr ─ wan0 ─ net ─┼─ ntp1   2001:db8:I:11::123   chronyd (honest)
      LAN 2001:db8:L:1::/64, RA by radvd  (the         ├─ ntp2   2001:db8:I:12::123   chronyd (honest)
      router's firewall: see ROUTER_MODES) internet)   ├─ <harvester> 2001:db8:I:1x::123  chronyd + harvester.py
                                                       ├─ scan1  2001:db8:S:21::100   first-wave scans
                                                       ├─ scan2  2001:db8:S:22::100   second wave, another /64
                                                       └─ spread 2001:db8:P:<n>::100  20 sources, 20 /64s of one /48

L, I, S and P are random per run (four different /48s). Every address is in 2001:db8::/32 and no
namespace has a route out of the lab. Every daemon runs under `timeout`, so even a leaked one stops
by itself after `lifetime` seconds. The router is a home router whose firewall can be switched
(`set_router`): open (an exposed host: everything is forwarded), closed (stateful, nothing
unsolicited in: a Fritz!Box's default), echo (stateful, ICMPv6 echo requests let in: OpenWrt's
default), upnp (echo, plus Debian's miniupnpd granting IPv6 pinholes: OpenWrt with UPnP).

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

REQUIRED_TOOLS = ("radvd", "chronyd", "chronyc", "dnsmasq", "nmap", "timeout", "miniupnpd", "ip6tables-legacy")
LAN_DEV = "eth0"  # the appliance's interface name, as on a Raspberry Pi
BRIDGE = "br-lan"
TEMP_PREFERRED_LFT = 1200  # the seed's 20-minute privacy addresses
TEMP_VALID_LFT = 2400
START_TIMEOUT = 20.0
NTP_PORT = 123

# Upstream namespaces: short name -> (subnet number inside the internet's /48, host part of its address)
UPSTREAM = {
    "dns": (0x10, "53"),
    "ntp1": (0x11, "123"),
    "ntp2": (0x12, "123"),
}
HARVESTER_SUBNETS = 0x13  # the first harvester's subnet; the next ones follow
SCANNERS = {"scan1": 0x21, "scan2": 0x22}  # in the scanners' /48
SPREAD_SOURCES = 20
ROUTER_MODES = ("open", "closed", "echo", "upnp")
WAN_DEV = "wan0"


def default_harvesters(delay1: float, delay2: float) -> dict[str, list[dict]]:
    """The lab's classic harvester: two waves of nmap scans from two /64s of one operator."""
    return {"harv": [{"delay": delay1, "scanner": "scan1", "kind": "nmap"},
                     {"delay": delay2, "scanner": "scan2", "kind": "nmap"}]}


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
                 workdir: str | Path | None = None, lifetime: float = 3600, max_targets: int = 20,
                 harvesters: dict[str, list[dict]] | None = None, router: str = "open"):
        """`harvesters`: name -> plan (the waves its sidecar makes of every source it records, see
        harvester.py); default one harvester "harv" with two nmap waves at `delay1` and `delay2`.
        `router`: the home router's firewall at start (ROUTER_MODES)."""
        if router not in ROUTER_MODES:
            raise ValueError(f"router must be one of {ROUTER_MODES}")
        self.delay1, self.delay2, self.lifetime, self.max_targets = delay1, delay2, lifetime, max_targets
        self.plans = harvesters if harvesters is not None else default_harvesters(delay1, delay2)
        self.router_mode = router
        self.ns = Namespaces(tag)
        self.tag = self.ns.tag
        self.owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"hw-lab-{self.tag}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)

        # Four different /48s: the LAN's, the internet's servers', and two scanner operators'.
        sites = secrets.SystemRandom().sample(range(1, 0x10000), 4)
        self.site, self.internet, self.scanners, self.spreader = sites
        self.site_prefix = f"2001:db8:{self.site:x}::/48"
        self.lan_prefix = self.subnet(1)
        self.router_lan_address = self.host(1, "1")
        self.wan_net = f"2001:db8:{self.internet:x}:ff00::/64"
        self.addresses = {short: self._in(self.internet, number, host) for short, (number, host) in UPSTREAM.items()}
        self.harvesters = {}
        for n, name in enumerate(self.plans):
            self.addresses[name] = self.harvesters[name] = self._in(self.internet, HARVESTER_SUBNETS + n, "123")
        for short, number in SCANNERS.items():
            self.addresses[short] = self._in(self.scanners, number, "100")
        self.spread_sources = [self._in(self.spreader, n + 1, "100") for n in range(SPREAD_SOURCES)]
        self.nameserver = self.addresses["dns"]
        self.honest = [self.addresses["ntp1"], self.addresses["ntp2"]]
        self.harvester = next(iter(self.harvesters.values()), None)
        self.scanner_nets = [self._net(self.scanners, SCANNERS["scan1"]), self._net(self.scanners, SCANNERS["scan2"])]
        self.pools = {
            "0.pool.lab.test": [self.addresses["ntp1"], *self.harvesters.values()],
            "1.pool.lab.test": [self.addresses["ntp2"], *self.harvesters.values()],
        }
        self.lan_dev = LAN_DEV
        upstream = [*UPSTREAM, *self.harvesters, *SCANNERS, "spread"]
        self.names = {short: self.ns.name(short) for short in ["rtr", "lan", "cli", "net", *upstream]}
        self.rtr_ns, self.lan_ns, self.cli_ns = self.names["rtr"], self.names["lan"], self.names["cli"]
        self.net_ns = self.names["net"]
        self.etc_netns_dirs: list[Path] = []
        self.miniupnpd: subprocess.Popen | None = None
        self.appliance_chrony: subprocess.Popen | None = None
        self.start_seconds: float | None = None
        self.closed = False

    @staticmethod
    def _in(site: int, number: int, host: str) -> str:
        return f"2001:db8:{site:x}:{number:x}::{host}"

    @staticmethod
    def _net(site: int, number: int) -> str:
        return f"2001:db8:{site:x}:{number:x}::/64"

    def subnet(self, number: int) -> str:
        """A /64 of the LAN's site."""
        return self._net(self.site, number)

    def host(self, number: int, host: str) -> str:
        return self._in(self.site, number, host)

    def journal_path(self, harvester: str | None = None) -> Path:
        return self.workdir / f"{harvester or next(iter(self.plans))}.jsonl"

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
            self.build_internet()
            self.write_resolv_conf()
            self.start_dns()
            self.start_ntp_servers()
            self.start_radvd()
            self.set_router(self.router_mode)
            self.wait_until_ready()
            self.start_harvesters()
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
        # miniupnpd listens on an interface with an IPv4 address: the LAN's, inside the lab only.
        run(["ip", "-n", rtr, "addr", "add", "192.0.2.1/24", "dev", BRIDGE])
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

    def build_internet(self) -> None:
        """`net`, the internet: one link to the router's WAN port, one to every server and scanner."""
        rtr, net = self.rtr_ns, self.ns.add("net")
        self.ns.sysctl(net, "net.ipv6.conf.all.forwarding", "1")
        self.ns.sysctl(net, "net.ipv6.conf.default.accept_dad", "0")
        wan = ipaddress.ip_network(self.wan_net)
        self.ns.veth(net, "rtr0", rtr, WAN_DEV)
        self.ns.address(net, "rtr0", f"{wan[1]}/64")
        self.ns.address(rtr, WAN_DEV, f"{wan[2]}/64")
        # The router's public IPv4 (miniupnpd wants one; 100.64.0.0/10 is as public as the lab allows).
        run(["ip", "-n", net, "addr", "add", "100.64.0.1/24", "dev", "rtr0"])
        run(["ip", "-n", rtr, "addr", "add", "100.64.0.2/24", "dev", WAN_DEV])
        run(["ip", "-n", rtr, "route", "add", "default", "via", "100.64.0.1"])
        run(["ip", "-n", rtr, "-6", "route", "add", "default", "via", str(wan[1])])
        run(["ip", "-n", net, "-6", "route", "add", self.site_prefix, "via", str(wan[2])])
        for short in [*UPSTREAM, *self.harvesters, *SCANNERS]:
            ns = self.ns.add(short)
            gateway = self.addresses[short].rsplit("::", 1)[0] + "::1"
            self.ns.veth(net, f"v-{short}"[:15], ns, "eth0")
            self.ns.address(net, f"v-{short}"[:15], f"{gateway}/64")
            self.ns.address(ns, "eth0", f"{self.addresses[short]}/64")
            run(["ip", "-n", ns, "-6", "route", "add", "default", "via", gateway])
        # The spreading scanner: one namespace, one address in each of 20 /64s of its /48.
        spread = self.ns.add("spread")
        self.ns.veth(net, "v-spread", spread, "eth0")
        link = self._in(self.spreader, 0xff00, "1")
        self.ns.address(net, "v-spread", f"{link}/64")
        self.ns.address(spread, "eth0", f"{self._in(self.spreader, 0xff00, '2')}/64")
        for source in self.spread_sources:
            self.ns.address(spread, "eth0", f"{source}/128")
        run(["ip", "-n", spread, "-6", "route", "add", "default", "via", link])
        run(["ip", "-n", net, "-6", "route", "add", f"2001:db8:{self.spreader:x}::/48", "via",
             self._in(self.spreader, 0xff00, "2")])

    def write_resolv_conf(self) -> None:
        # `ip netns exec` bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
        for ns in (self.lan_ns, self.cli_ns):
            directory = Path("/etc/netns") / ns
            directory.mkdir(parents=True, exist_ok=True)
            self.etc_netns_dirs.append(directory)
            (directory / "resolv.conf").write_text(f"nameserver {self.nameserver}\n")

    # -- the home router's firewall --

    def set_router(self, mode: str) -> None:
        """Switch the router's firewall (ROUTER_MODES); `upnp` also runs miniupnpd, the others stop it."""
        if mode not in ROUTER_MODES:
            raise ValueError(f"router must be one of {ROUTER_MODES}")
        rtr = self.rtr_ns

        def ip6t(*args: str) -> None:
            run(["ip", "netns", "exec", rtr, "ip6tables-legacy", "-w", *args])

        if self.miniupnpd is not None:
            self.miniupnpd.terminate()
            self.miniupnpd.wait(timeout=10)
            self.miniupnpd = None
        if run(["ip", "netns", "exec", rtr, "ip6tables-legacy", "-w", "-S", "HOME"], check=False).returncode:
            ip6t("-N", "HOME")
            ip6t("-N", "MINIUPNPD")
            ip6t("-A", "FORWARD", "-j", "HOME")
            for table, chains in (("nat", ("MINIUPNPD", "MINIUPNPD-POSTROUTING")), ("filter", ("MINIUPNPD",))):
                for chain in chains:  # miniupnpd's IPv4 chains: it insists on them, and maps nothing
                    run(["ip", "netns", "exec", rtr, "iptables-legacy", "-w", "-t", table, "-N", chain])
        ip6t("-F", "HOME")
        ip6t("-F", "MINIUPNPD")
        if mode != "open":
            # RFC 6092: replies come back; the LAN may go out; nothing unsolicited comes in, but...
            ip6t("-A", "HOME", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
            ip6t("-A", "HOME", "-i", BRIDGE, "-o", WAN_DEV, "-j", "ACCEPT")
            if mode in ("echo", "upnp"):  # ...OpenWrt forwards echo requests (rule Allow-ICMPv6-Forward)
                ip6t("-A", "HOME", "-i", WAN_DEV, "-p", "ipv6-icmp", "--icmpv6-type", "echo-request", "-j", "ACCEPT")
            if mode == "upnp":  # ...and what miniupnpd's pinholes let in
                ip6t("-A", "HOME", "-i", WAN_DEV, "!", "-o", WAN_DEV, "-j", "MINIUPNPD")
            ip6t("-A", "HOME", "-i", WAN_DEV, "-j", "DROP")
        if mode == "upnp":
            self.start_miniupnpd()
        self.router_mode = mode

    def start_miniupnpd(self) -> None:
        conf = self.workdir / "miniupnpd.conf"
        conf.write_text(
            f"ext_ifname={WAN_DEV}\n"
            f"listening_ip={BRIDGE}\n"
            "port=5000\n"
            "enable_upnp=yes\n"
            "enable_natpmp=yes\n"
            "secure_mode=yes\n"
            "system_uptime=yes\n"
            f"lease_file={self.workdir / 'miniupnpd.leases'}\n"
            "uuid=9a0c3c5e-6c1f-4c71-8a52-3d7f2a6b1e11\n"
            "friendly_name=HarvestWatch lab router\n"
            "allow 1024-65535 0.0.0.0/0 1024-65535\n"
            "deny 0-65535 0.0.0.0/0 0-65535\n")
        self.miniupnpd = self.daemon("rtr", ["/usr/sbin/miniupnpd", "-f", str(conf), "-d",
                                             "-P", str(self.workdir / "miniupnpd.pid")], log_name="miniupnpd")
        deadline = time.monotonic() + START_TIMEOUT
        while "HTTP listening" not in (self.workdir / "miniupnpd.log").read_text(errors="replace"):
            if self.miniupnpd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"miniupnpd did not start (see {self.workdir / 'miniupnpd.log'})")
            time.sleep(0.1)

    def pinhole_rules(self) -> list[str]:
        """The pinholes miniupnpd holds now, as ip6tables rules."""
        out = run(["ip", "netns", "exec", self.rtr_ns, "ip6tables-legacy", "-w", "-S", "MINIUPNPD"]).stdout
        return [line for line in out.splitlines() if line.startswith("-A ")]

    # -- daemons --

    def daemon(self, short: str, args: list[str], log_name: str | None = None) -> subprocess.Popen:
        """Start a foreground daemon in namespace `short`, logging to <workdir>/<log_name or short>.log."""
        log = open(self.workdir / f"{log_name or short}.log", "ab")
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
        for short in ("ntp1", "ntp2", *self.harvesters):
            conf = self.workdir / f"chrony-{short}.conf"
            conf.write_text(
                "allow all\n"
                "local stratum 8\n"
                "cmdport 0\n"
                "bindcmdaddress /\n"  # no Unix command socket either: it would be the host chronyd's path
                f"pidfile {self.workdir / f'chrony-{short}.pid'}\n")
            # -x: never touch the host's clock; -d: foreground, log to stderr; -u root: our workdir.
            self.daemon(short, ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)])

    def start_appliance_clock(self, synchronised: bool = True) -> None:
        """chronyd in the appliance's namespace, as on the Pi: its time source, which the daemon
        asks (clock.source = chrony) on the namespace's own 127.0.0.1:323. With `synchronised`
        False its only source is a host that answers no NTP, so it never synchronises."""
        self.stop_appliance_clock()
        source = self.addresses["ntp1"] if synchronised else self.nameserver
        conf = self.workdir / "chrony-appliance.conf"
        conf.write_text(
            f"server {source} iburst minpoll 0 maxpoll 2\n"
            "cmdport 323\n"
            "bindcmdaddress 127.0.0.1\n"
            "bindcmdaddress /\n"  # not the host chronyd's Unix socket
            f"pidfile {self.workdir / 'chrony-appliance.pid'}\n")
        self.appliance_chrony = self.daemon("lan", ["chronyd", "-x", "-d", "-u", "root", "-f", str(conf)],
                                            log_name="chrony-appliance")

    def stop_appliance_clock(self) -> None:
        if self.appliance_chrony is not None and self.appliance_chrony.poll() is None:
            self.appliance_chrony.terminate()
            self.appliance_chrony.wait(timeout=10)
        self.appliance_chrony = None

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

    def start_harvesters(self) -> None:
        for name, plan in self.plans.items():
            plan = [{**wave, "scanner": self.names[wave["scanner"]],
                     **({"sources": self.spread_sources} if wave.get("kind") == "spread" else {})} for wave in plan]
            # The venv's python, started with the script's path so it needs no package on sys.path.
            self.daemon(name, [
                sys.executable, str(Path(__file__).with_name("harvester.py")),
                "--journal", str(self.journal_path(name)), "--lan-prefix", self.lan_prefix, "--plan", json.dumps(plan),
                "--max-targets", str(self.max_targets), "--lifetime", str(self.lifetime)], log_name=f"{name}-sidecar")
        for name in self.plans:
            self.wait(lambda: any(line["event"] == "started" for line in self.journal(name)), f"{name}'s start")

    def wait_until_ready(self) -> None:
        self.wait(lambda: self.lan_address() and self.lan_temporary_addresses(), "SLAAC and temporary address on lan")
        self.call(self.lan_ns, "wait_for_dns", self.nameserver, list(self.pools), START_TIMEOUT)
        # Asked from the internet's side, not from lan: the harvesters must not learn the appliance's
        # address before the test or demo decides to contact them (their sidecars are not started yet).
        self.call(self.net_ns, "wait_for_ntp", self.honest + list(self.harvesters.values()), START_TIMEOUT)

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

    def journal(self, harvester: str | None = None) -> list[dict]:
        try:
            lines = self.journal_path(harvester).read_text().splitlines()
        except FileNotFoundError:
            return []
        # The last line may be half written while we read.
        return [json.loads(line) for line in lines if line.endswith("}")]

    def facts(self) -> dict:
        return {
            "tag": self.tag, "namespaces": self.names, "lan_ns": self.lan_ns, "cli_ns": self.cli_ns,
            "lan_dev": self.lan_dev, "lan_prefix": self.lan_prefix, "lan_address": self.lan_address(),
            "lan_temporary_addresses": self.lan_temporary_addresses(), "router": self.router_lan_address,
            "router_mode": self.router_mode, "nameserver": self.nameserver, "pools": self.pools,
            "honest": self.honest, "harvesters": self.harvesters, "plans": self.plans,
            "scanner_nets": self.scanner_nets, "workdir": str(self.workdir),
            "start_seconds": round(self.start_seconds or 0, 2),
        }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Start the HarvestWatch lab and keep it up until Ctrl-C / SIGTERM.")
    parser.add_argument("--tag")
    parser.add_argument("--delay1", type=float, default=5)
    parser.add_argument("--delay2", type=float, default=30)
    parser.add_argument("--lifetime", type=float, default=3600, help="tear down by itself after this many seconds")
    parser.add_argument("--router", choices=ROUTER_MODES, default="open", help="the home router's firewall")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with Lab(tag=args.tag, delay1=args.delay1, delay2=args.delay2, workdir=args.workdir,
                 lifetime=args.lifetime, router=args.router) as lab:
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
