"""The parser on netfilter LOG lines printed by the running kernel itself (not hand-written samples).

Two throw-away network namespaces joined by a veth pair (2001:db8:ee::/64 only, nothing outside
the namespaces is touched), an ip6tables LOG rule on INPUT in one and on OUTPUT in the other, some
UDP, a TCP SYN and an ICMPv6 echo request between them; the records are read back from /dev/kmsg
and parsed, then re-wrapped as classic syslog lines and parsed again.

Needs root, iproute2 and ip6tables (Debian package `iptables`, which `make test` installs); skips
with the reason where the machine does not allow it. Logging from a namespace other than the
initial one needs the global sysctl net.netfilter.nf_log_all_netns=1: it is set for the test and
always put back, and the namespaces are always deleted.
"""
from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest

from appliance.parse.clock import LineClock
from appliance.parse.netfilter import INBOUND, OUTBOUND, NetfilterParser

ADDR_A, ADDR_B = "2001:db8:ee::1", "2001:db8:ee::2"
EXPANDED_A = "2001:0db8:00ee:0000:0000:0000:0000:0001"
EXPANDED_B = "2001:0db8:00ee:0000:0000:0000:0000:0002"
UDP_PORTS = list(range(1000, 1010))
TCP_PORT = 1100  # nothing listens: the SYN is answered with a RST
ICMPV6_ECHO_REQUEST = 128
NF_LOG_ALL_NETNS = "/proc/sys/net/netfilter/nf_log_all_netns"
# The sysctl is global: parallel runs of this test take turns, so that one run's restore does not
# switch logging off under another.
LOCK_PATH = "/tmp/harvestwatch-test-kernel-lines.lock"
LOCK_WAIT = 60.0
KMSG_WAIT = 3.0
TIMEOUT = 10
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

# Runs inside namespace a: UDP to each port, one TCP connect to a closed port and, when `ping`
# is missing, one ICMPv6 echo request from a raw socket (the kernel fills in the checksum).
SENDER = r"""
import socket, sys
dst, tcp_port, raw_ping = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
udp_ports = [int(p) for p in sys.argv[4:]]
with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
    for port in udp_ports:
        udp.sendto(b"harvestwatch kernel-lines test", (dst, port))
with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
    tcp.settimeout(2.0)
    try:
        tcp.connect((dst, tcp_port))
    except OSError:
        pass  # refused (RST) is the expected outcome
if raw_ping:
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as icmp:
        icmp.sendto(bytes([128, 0, 0, 0, 0x48, 0x57, 0, 1]) + b"harvestwatch", (dst, 0))
"""


def _run(args, **kwargs):
    return subprocess.run(args, check=True, timeout=TIMEOUT, capture_output=True, text=True, **kwargs)


def _try(args):
    """Run a command whose failure means "this machine does not allow it": (ok, error text)."""
    try:
        done = subprocess.run(args, timeout=TIMEOUT, capture_output=True, text=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return done.returncode == 0, (done.stderr or done.stdout).strip()


def _take_lock():
    handle = open(LOCK_PATH, "a")
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                pytest.fail(f"another run held {LOCK_PATH} for more than {LOCK_WAIT:.0f} s")
            time.sleep(0.2)


@pytest.fixture
def lab():
    """Namespaces a and b joined by veth, LOG rules in both; cleaned up whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, ip6tables, /dev/kmsg, a global sysctl)")
    if shutil.which("ip") is None:
        pytest.skip("`ip` (iproute2) is not on PATH")
    if shutil.which("ip6tables") is None:
        pytest.skip("`ip6tables` is not on PATH (Debian package `iptables`; `make test` installs it)")
    if not os.path.exists(NF_LOG_ALL_NETNS):
        pytest.skip(f"{NF_LOG_ALL_NETNS} missing: this kernel cannot log from a network namespace")
    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg is not readable here")

    tag = secrets.token_hex(3)
    ns_a, ns_b = f"hwk-a-{tag}", f"hwk-b-{tag}"
    prefix_in, prefix_out = f"HWTI{tag} ", f"HWTO{tag} "  # unique per run, well under 29 chars
    lock = _take_lock()
    created: list[str] = []
    old_sysctl = None
    try:
        ok, error = _try(["ip", "netns", "add", ns_a])
        if not ok:
            pytest.skip(f"`ip netns add` is not allowed here: {error}")
        created.append(ns_a)
        _run(["ip", "netns", "add", ns_b])
        created.append(ns_b)
        # Interface names live inside the namespaces, so they need not be unique.
        _run(["ip", "-n", ns_a, "link", "add", "hwk-va", "type", "veth", "peer", "name", "hwk-vb",
              "netns", ns_b])
        for ns, dev, addr in ((ns_a, "hwk-va", ADDR_A), (ns_b, "hwk-vb", ADDR_B)):
            _run(["ip", "-n", ns, "addr", "add", f"{addr}/64", "dev", dev, "nodad"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "-n", ns, "link", "set", dev, "up"])

        ok, error = _try(["ip", "netns", "exec", ns_b, "ip6tables", "-A", "INPUT", "-j", "LOG",
                          "--log-prefix", prefix_in])
        if not ok:
            pytest.skip(f"ip6tables cannot add a LOG rule here (kernel support?): {error}")
        _run(["ip", "netns", "exec", ns_a, "ip6tables", "-A", "OUTPUT", "-j", "LOG",
              "--log-prefix", prefix_out])

        with open(NF_LOG_ALL_NETNS) as sysctl:
            old_sysctl = sysctl.read().strip()
        try:
            with open(NF_LOG_ALL_NETNS, "w") as sysctl:
                sysctl.write("1\n")
        except OSError as exc:
            old_sysctl = None
            pytest.skip(f"cannot set net.netfilter.nf_log_all_netns=1 here: {exc}")

        # Both ends up with carrier (bounded), so the first packets are not held for neighbour
        # discovery longer than needed.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            links = (_run(["ip", "-n", ns_a, "-o", "link", "show", "hwk-va"]).stdout
                     + _run(["ip", "-n", ns_b, "-o", "link", "show", "hwk-vb"]).stdout)
            if links.count("LOWER_UP") == 2:
                break
            time.sleep(0.05)

        yield {"a": ns_a, "b": ns_b, "in": prefix_in, "out": prefix_out}
    finally:
        try:
            if old_sysctl is not None:
                with open(NF_LOG_ALL_NETNS, "w") as sysctl:
                    sysctl.write(old_sysctl + "\n")
        finally:
            for ns in reversed(created):  # takes the veth pair and the rules with it
                subprocess.run(["ip", "netns", "del", ns], timeout=TIMEOUT, capture_output=True)
            lock.close()


def _read_kmsg(fd, prefixes, wanted, deadline):
    """Records (first line, as /dev/kmsg gives them) starting with one of `prefixes`, until `wanted`
    records of the test traffic (a -> b) arrived or the deadline passed."""
    records = []
    ours = 0
    while ours < wanted and time.monotonic() < deadline:
        try:
            data = os.read(fd, 16384)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        except OSError as exc:
            if exc.errno == errno.EPIPE:  # records overwritten before we read them: go on
                continue
            raise
        record = data.decode("utf-8", "replace").split("\n", 1)[0]
        message = record.partition(";")[2]
        if any(message.startswith(prefix) for prefix in prefixes):
            records.append(record)
            ours += f"SRC={EXPANDED_A} DST={EXPANDED_B} " in message
    return records


def _syslog_line(record, wall):
    """A /dev/kmsg record as rsyslog would write it to kern.log: `Jan 13 19:33:10 host kernel:
    [ 1234.567890] message`."""
    head, _, message = record.partition(";")
    usec = int(head.split(",")[2])
    t = time.gmtime(wall)
    stamp = f"{MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{stamp} testhost kernel: [{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] {message}"


def _flow(packet):
    return packet.src, packet.dst, packet.proto, packet.sport, packet.dport, packet.direction, packet.prefix


def test_kernel_log_lines_parse(lab):
    ns_a, prefix_in, prefix_out = lab["a"], lab["in"], lab["out"]
    ping = shutil.which("ping")
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        started = time.time()
        _run(["ip", "netns", "exec", ns_a, sys.executable, "-c", SENDER, ADDR_B, str(TCP_PORT),
              "0" if ping else "1", *map(str, UDP_PORTS)])
        if ping:
            _run(["ip", "netns", "exec", ns_a, ping, "-6", "-c1", "-W1", ADDR_B])
        # Each packet once in b's INPUT and once in a's OUTPUT (plus whatever neighbour discovery
        # and MLD the link adds, which must parse too).
        wanted = 2 * (len(UDP_PORTS) + 2)
        records = _read_kmsg(fd, (prefix_in, prefix_out), wanted, time.monotonic() + KMSG_WAIT)
    finally:
        os.close(fd)
    now = time.time()
    assert records, ("no LOG records from the namespaces reached /dev/kmsg "
                     "(net.netfilter.nf_log_all_netns not honoured?)")

    # The kernel prints IPv6 addresses fully expanded; the parser compresses them.
    ours = [r for r in records if f"SRC={EXPANDED_A} DST={EXPANDED_B} " in r]
    assert ours, f"no record for {ADDR_A} -> {ADDR_B}: {records[:3]}"

    parser = NetfilterParser(LineClock())  # boot time from /proc/stat btime, as for live reads
    packets = parser.parse_text("\n".join(records) + "\n")
    assert parser.skipped == Counter(), (parser.skipped, records)
    assert len(packets) == len(records)

    for packet, record in zip(packets, records):
        assert packet.prefix in (prefix_in.strip(), prefix_out.strip()), record
        assert packet.direction == (INBOUND if packet.prefix == prefix_in.strip() else OUTBOUND), record
        for address in (packet.src, packet.dst):
            assert address == ipaddress.ip_address(address).compressed, record
        assert started - 5 < packet.ts < now + 5, (packet.ts, started, record)

    def flows(direction, proto):
        return [p for p in packets
                if p.direction == direction and p.proto == proto and (p.src, p.dst) == (ADDR_A, ADDR_B)]

    for direction in (INBOUND, OUTBOUND):
        udp = flows(direction, "UDP")
        assert sorted(p.dport for p in udp) == UDP_PORTS, (direction, udp)
        assert all(isinstance(p.sport, int) and p.sport > 0 for p in udp), udp
        assert len({p.sport for p in udp}) == 1, udp  # one socket sent them all
        tcp = flows(direction, "TCP")
        assert tcp and {p.dport for p in tcp} == {TCP_PORT}, (direction, tcp)
        echo = [p for p in flows(direction, "ICMPv6") if p.dport == ICMPV6_ECHO_REQUEST]
        assert len(echo) == 1 and echo[0].sport is None, (direction, flows(direction, "ICMPv6"))

    # The same records as a kern.log file would hold them parse to the same packets.
    syslog_lines = [_syslog_line(record, now) for record in records]
    file_parser = NetfilterParser(LineClock(reference=now))
    from_file = file_parser.parse_text("\n".join(syslog_lines) + "\n")
    assert file_parser.skipped == Counter(), (file_parser.skipped, syslog_lines)
    assert [_flow(p) for p in from_file] == [_flow(p) for p in packets]
    for live, filed in zip(packets, from_file):
        assert abs(live.ts - filed.ts) < 5, (live, filed)
