"""NFLOG capture: decoding of hand-built nfnetlink_log messages, then the real kernel.

The kernel tests build two throw-away network namespaces, `app` and `peer`, joined by a veth pair
(2001:db8:4e::/64 only; nothing outside the namespaces is touched), put ip6tables-legacy NFLOG
rules on INPUT and OUTPUT in `app`, run the reader inside `app` as a subprocess that prints what it
decodes as JSON lines, and send from `peer` (and from `app` outward). Needs root, iproute2 and
ip6tables-legacy; skips with the reason otherwise. The namespaces are always deleted.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.capture.nflog import _NLMSGHDR, NFULNL_MSG_PACKET, NflogError, NflogReader, decode_message
from appliance.parse.netfilter import FORWARDED, INBOUND, OUTBOUND, Packet
from tests.lab.netns import Namespaces, NetnsUnavailable

APP, PEER = "2001:db8:4e::1", "2001:db8:4e::2"
NOW = 1_700_000_000.0


# -- building messages as the kernel does ---------------------------------------------------

def attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def message(payload: bytes, *, family=socket.AF_INET6, prefix=b"HW-IN ", indev=2, outdev=None,
            seq=None, stamp=None, hook=1) -> bytes:
    attrs = attr(1, struct.pack("!HBB", 0x86DD if family == socket.AF_INET6 else 0x0800, hook, 0))
    if prefix is not None:
        attrs += attr(10, prefix + b"\0")
    if indev is not None:
        attrs += attr(4, struct.pack("!I", indev))
    if outdev is not None:
        attrs += attr(5, struct.pack("!I", outdev))
    if stamp is not None:
        attrs += attr(3, struct.pack("!QQ", int(stamp), round(stamp % 1 * 1e6)))
    if seq is not None:
        attrs += attr(12, struct.pack("!I", seq))
    attrs += attr(9, payload)
    body = struct.pack("!BBH", family, 0, 7) + attrs
    return _NLMSGHDR.pack(16 + len(body), NFULNL_MSG_PACKET, 0, 0, 0) + body


def ipv6(next_header: int, rest: bytes, src=PEER, dst=APP) -> bytes:
    return (struct.pack("!IHBB", 6 << 28, len(rest), next_header, 64)
            + socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + rest)


def ipv4(proto: int, rest: bytes, *, frag_offset=0, src="192.0.2.2", dst="192.0.2.1") -> bytes:
    return (struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(rest), 1, frag_offset, 64, proto, 0)
            + socket.inet_aton(src) + socket.inet_aton(dst) + rest)


def tcp_syn(sport: int, dport: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)


def udp(sport: int, dport: int, data=b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


# -- unit tests on built messages -----------------------------------------------------------

def test_ipv6_tcp_inbound_with_kernel_timestamp():
    packet = decode_message(message(ipv6(6, tcp_syn(40000, 22)), stamp=NOW - 0.25), NOW)
    assert packet == Packet(NOW - 0.25, PEER, APP, "TCP", 40000, 22, INBOUND, "HW-IN")


def test_ipv6_udp_outbound_without_timestamp_uses_receipt_time():
    packet = decode_message(message(ipv6(17, udp(5555, 123), src=APP, dst=PEER), prefix=b"HW-OUT ",
                                    indev=None, outdev=2, hook=3), NOW)
    assert packet == Packet(NOW, APP, PEER, "UDP", 5555, 123, OUTBOUND, "HW-OUT")


def test_forwarded_and_untrusted_timestamp():
    packet = decode_message(message(ipv6(17, udp(1, 2)), outdev=3, stamp=12.5), NOW)
    assert packet.direction == FORWARDED
    assert packet.ts == NOW  # a stamp decades away from our clock is not believed


def test_addresses_are_spelled_as_the_log_parser_spells_them():
    from appliance.parse.netfilter import normalize_address
    for address in ("::ffff:192.0.2.7", "2001:db8:0:0:1:0:0:1", "fe80::1"):
        expanded = ":".join(socket.inet_pton(socket.AF_INET6, address).hex()[i:i + 4] for i in range(0, 32, 4))
        packet = decode_message(message(ipv6(17, udp(1, 2), src=address)), NOW)
        assert packet.src == normalize_address(expanded)


def test_icmpv6_type_is_the_dport():
    packet = decode_message(message(ipv6(58, bytes([128, 0, 0, 0, 0, 1, 0, 1]))), NOW)
    assert (packet.proto, packet.sport, packet.dport) == ("ICMPv6", None, 128)


def test_short_transport_headers_give_no_ports_like_log_incomplete():
    assert decode_message(message(ipv6(6, tcp_syn(1, 2)[:12])), NOW)[3:6] == ("TCP", None, None)
    assert decode_message(message(ipv6(17, b"\0\1\0")), NOW)[3:6] == ("UDP", None, None)
    assert decode_message(message(ipv6(58, bytes([128, 0, 0, 0]))), NOW)[3:6] == ("ICMPv6", None, None)


def test_ipv4_packets():
    packet = decode_message(message(ipv4(17, udp(5000, 321)), family=socket.AF_INET), NOW)
    assert packet == Packet(NOW, "192.0.2.2", "192.0.2.1", "UDP", 5000, 321, INBOUND, "HW-IN")
    icmp = decode_message(message(ipv4(1, bytes([8, 0, 0, 0, 0, 1, 0, 1])), family=socket.AF_INET), NOW)
    assert icmp[3:6] == ("ICMP", None, 8)
    later_fragment = ipv4(6, tcp_syn(1, 2), frag_offset=185)
    assert decode_message(message(later_fragment, family=socket.AF_INET), NOW)[3:6] == ("TCP", None, None)


def test_protocol_names_follow_the_log_target():
    # nf_log_syslog.c names TCP, UDP, UDPLITE, ICMP(v6), ESP, AH; all else is printed as a number.
    assert decode_message(message(ipv6(136, udp(7, 9))), NOW)[3:6] == ("UDPLITE", 7, 9)
    assert decode_message(message(ipv6(132, b"\0" * 12)), NOW)[3:6] == ("132", None, None)  # SCTP
    assert decode_message(message(ipv6(33, b"\0" * 12)), NOW)[3:6] == ("33", None, None)  # DCCP
    assert decode_message(message(ipv6(59, b"")), NOW)[3:6] == ("59", None, None)
    assert decode_message(message(ipv6(50, b"\0" * 8)), NOW)[3:6] == ("ESP", None, None)


def test_extension_headers_are_walked():
    hop_by_hop = bytes([60, 0]) + b"\1\4\0\0\0\0"            # 8 bytes, next: destination options
    destination = bytes([43, 1]) + b"\0" * 14                # 16 bytes, next: routing
    routing = bytes([44, 0, 0, 0]) + b"\0" * 4               # 8 bytes, next: fragment
    first_fragment = bytes([17, 0]) + struct.pack("!HI", 0x0001, 99)  # offset 0, more fragments
    chain = hop_by_hop + destination + routing + first_fragment
    assert decode_message(message(ipv6(0, chain + udp(4000, 123))), NOW)[3:6] == ("UDP", 4000, 123)
    authentication = bytes([6, 1, 0, 0]) + b"\0" * 8         # (1 + 2) * 4 = 12 bytes
    assert decode_message(message(ipv6(51, authentication + tcp_syn(9, 443))), NOW)[3:6] == ("TCP", 9, 443)


def test_non_first_fragment_has_no_ports():
    later = bytes([6, 0]) + struct.pack("!HI", 1480, 99)
    assert decode_message(message(ipv6(44, later + tcp_syn(1, 2))), NOW)[3:6] == ("TCP", None, None)
    later_then_options = bytes([60, 0]) + struct.pack("!HI", 1480, 99)
    assert decode_message(message(ipv6(44, later_then_options + b"\0" * 16)), NOW)[3:6] == ("60", None, None)


def test_truncated_and_foreign_messages_are_refused():
    assert decode_message(message(ipv6(6, tcp_syn(1, 2)))[:60], NOW) is None  # cut inside an attribute
    assert decode_message(message(ipv6(0, bytes([17]))), NOW) is None  # extension header cut off
    assert decode_message(message(ipv6(44, bytes([17, 0, 0]))), NOW) is None  # fragment header cut off
    # An extension header whose length runs past the data: LOG prints "PROTO=UDP INCOMPLETE".
    assert decode_message(message(ipv6(0, bytes([17, 4]))), NOW)[3:6] == ("UDP", None, None)
    assert decode_message(message(ipv6(17, udp(1, 2))[:30]), NOW) is None  # short IPv6 header
    assert decode_message(message(ipv4(17, udp(1, 2)), family=socket.AF_INET6), NOW) is None
    assert decode_message(b"", NOW) is None
    assert decode_message(_NLMSGHDR.pack(16, 2, 0, 0, 0), NOW) is None  # an NLMSG_ERROR


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    decode_message(data, NOW)
    decode_message(message(data), NOW)
    decode_message(message(ipv6(data[0] if data else 0, data[1:])), NOW)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.integers(0, 400))
def test_damaged_real_messages_never_raise(noise, cut):
    real = message(ipv6(0, bytes([17, 0]) + b"\0" * 6 + udp(1, 2)), seq=3, stamp=NOW)
    decode_message(real[:cut] + noise, NOW)
    damaged = bytearray(real)
    for index, byte in enumerate(noise[:40]):
        damaged[(index * 37 + cut) % len(damaged)] = byte
    decode_message(bytes(damaged), NOW)


# -- the real kernel ------------------------------------------------------------------------

GROUP = 7
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

READER = r"""
import json, selectors, sys, time
from appliance.capture.nflog import NflogReader, NflogError
group, rcvbuf, hold = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "hold"
try:
    reader = NflogReader(group, rcvbuf=rcvbuf)
except NflogError as exc:
    print(json.dumps({"error": str(exc)}), flush=True)
    sys.exit(3)
print(json.dumps({"ready": True}), flush=True)
selector = selectors.DefaultSelector()
selector.register(sys.stdin, selectors.EVENT_READ, "control")
if not hold:
    selector.register(reader, selectors.EVENT_READ, "nflog")

def emit():
    packets = reader.read_available()
    now = time.time()
    for packet in packets:
        print(json.dumps({"packet": list(packet), "at": now}))
    sys.stdout.flush()

deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    for key, _ in selector.select(timeout=1):
        if key.data == "nflog":
            emit()
            continue
        command = sys.stdin.readline().strip()
        if command == "read" and hold:
            hold = False
            selector.register(reader, selectors.EVENT_READ, "nflog")
            emit()
        elif command in ("stop", ""):
            emit()
            print(json.dumps({"summary": {"lost": reader.lost, "overruns": reader.overruns,
                                          "malformed": reader.malformed, "received": reader.received,
                                          "events": reader.take_events()}}), flush=True)
            sys.exit(0)
"""

SENDER = r"""
import socket, struct, sys, time
target, udp_ports, tcp_ports, echo = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "echo"
def ports(text):
    if not text:
        return []
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)
started = time.time()
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.bind(("::", 0))
for port in ports(udp_ports):
    udp.sendto(b"", (target, port))
raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 16)  # the kernel fills the TCP checksum
for port in ports(tcp_ports):
    raw.sendto(struct.pack("!HHIIBBHHH", 40000, port, 1, 0, 5 << 4, 0x02, 65535, 0, 0), (target, 0))
if echo:
    icmp = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    icmp.sendto(bytes([128, 0, 0, 0, 0x12, 0x34, 0, 1]), (target, 0))
print(udp.getsockname()[1], started, time.time())
"""


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, ip6tables, CAP_NET_ADMIN for NFLOG)")
    if shutil.which("ip6tables-legacy") is None:
        pytest.skip("ip6tables-legacy is not installed (Debian package iptables)")
    try:
        ns = Namespaces()
    except NetnsUnavailable as exc:
        pytest.skip(str(exc))
    with ns:
        try:
            app, peer = ns.add("app"), ns.add("peer")
        except NetnsUnavailable as exc:
            pytest.skip(str(exc))
        ns.veth(app, "hw0", peer, "hw1")
        ns.address(app, "hw0", APP + "/64")
        ns.address(peer, "hw1", PEER + "/64")
        rules = [
            # Neighbour discovery stays out of the log, so the test sees only its own packets.
            ["-A", "INPUT", "-p", "ipv6-icmp", "--icmpv6-type", "135", "-j", "ACCEPT"],
            ["-A", "INPUT", "-p", "ipv6-icmp", "--icmpv6-type", "136", "-j", "ACCEPT"],
            ["-A", "INPUT", "-j", "NFLOG", "--nflog-group", str(GROUP), "--nflog-prefix", "HW-IN "],
            ["-A", "INPUT", "-j", "DROP"],
            ["-A", "OUTPUT", "-p", "ipv6-icmp", "-j", "ACCEPT"],
            ["-A", "OUTPUT", "-j", "NFLOG", "--nflog-group", str(GROUP), "--nflog-prefix", "HW-OUT "],
        ]
        for rule in rules:
            done = ns.exec(app, ["ip6tables-legacy", *rule], check=False)
            if done.returncode != 0:
                pytest.skip(f"ip6tables-legacy refused {' '.join(rule)}: {done.stderr.strip()}")
        # Resolve the neighbours once, so the first test packet is not held for it.
        ns.python(peer, f"import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'', ('{APP}', 9))")
        time.sleep(0.2)
        yield ns, app, peer


class ReaderProcess:
    """The reader running inside a namespace; its JSON lines arrive on a queue."""

    def __init__(self, ns, where: str, *, rcvbuf: int = 8 << 20, hold: bool = False):
        self.process = ns.popen(where, [sys.executable, "-c", READER, str(GROUP), str(rcvbuf),
                                        "hold" if hold else "go"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self.next(10)
        if "error" in first:
            raise NflogError(first["error"])
        assert first == {"ready": True}, first
        self.packets: list[tuple[Packet, float]] = []

    def _pump(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout: float) -> dict:
        item = self.lines.get(timeout=timeout)
        if item is None:
            raise AssertionError(f"reader exited: {self.process.stderr.read()}")
        return item

    def collect(self, wanted, timeout: float = 10) -> None:
        """Read packets until `wanted(self.packets)` holds or the time is up."""
        deadline = time.monotonic() + timeout
        while not wanted(self.packets) and time.monotonic() < deadline:
            try:
                item = self.next(max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if "packet" in item:
                self.packets.append((Packet(*item["packet"]), item["at"]))

    def command(self, text: str) -> None:
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def stop(self) -> dict:
        self.command("stop")
        while True:
            item = self.next(15)
            if "summary" in item:
                self.process.wait(timeout=10)
                return item["summary"]
            self.packets.append((Packet(*item["packet"]), item["at"]))


def send(ns, where: str, target: str, *, udp_ports="", tcp_ports="", echo=False) -> tuple[int, float, float]:
    done = ns.python(where, SENDER, target, udp_ports, tcp_ports, "echo" if echo else "-")
    port, started, ended = done.stdout.split()
    return int(port), float(started), float(ended)


def ours(packets):
    """Only the test's own traffic (nothing else should be logged, but be sure)."""
    return [(p, at) for p, at in packets if {p.src, p.dst} == {APP, PEER}]


def test_live_packets_decode_field_for_field(lab):
    ns, app, peer = lab
    reader = ReaderProcess(ns, app)
    try:
        udp_port, started, _ = send(ns, peer, APP, udp_ports="1000-1004", tcp_ports="1100", echo=True)
        out_port, _, _ = send(ns, app, PEER, udp_ports="123")
        reader.collect(lambda got: len(ours(got)) >= 9)
        summary = reader.stop()
    finally:
        if reader.process.poll() is None:
            reader.process.kill()
    packets = [p for p, _ in ours(reader.packets)]
    inbound = sorted((p for p in packets if p.direction == INBOUND), key=lambda p: (p.proto, p.dport))
    expected_inbound = sorted(
        [(PEER, APP, "UDP", udp_port, port, INBOUND, "HW-IN") for port in range(1000, 1005)]
        + [(PEER, APP, "TCP", 40000, 1100, INBOUND, "HW-IN"),
           (PEER, APP, "ICMPv6", None, 128, INBOUND, "HW-IN"),
           # the peer's answer to the outbound packet: ICMPv6 destination (port) unreachable
           (PEER, APP, "ICMPv6", None, 1, INBOUND, "HW-IN")], key=lambda p: (p[2], p[4]))
    assert [tuple(p[1:]) for p in inbound] == expected_inbound
    assert [tuple(p[1:]) for p in packets if p.direction == OUTBOUND] == [
        (APP, PEER, "UDP", out_port, 123, OUTBOUND, "HW-OUT")]
    for packet in packets:  # kernel stamps (inbound) and receipt times (outbound) alike
        assert started - 1 < packet.ts < time.time()
    assert summary["lost"] == summary["overruns"] == summary["malformed"] == 0, summary
    # Queue threshold 1 and flush timeout 0 took effect: the default batching would add ~1 s.
    latencies = [at - p.ts for p, at in ours(reader.packets) if p.direction == INBOUND]
    assert max(latencies) < 0.5, latencies


def test_burst_of_2000_new_ports_loses_nothing(lab):
    ns, app, peer = lab
    reader = ReaderProcess(ns, app)
    try:
        _, started, ended = send(ns, peer, APP, udp_ports="20000-20999", tcp_ports="30000-30999")
        reader.collect(lambda got: len(ours(got)) >= 2000, timeout=20)
        summary = reader.stop()
    finally:
        if reader.process.poll() is None:
            reader.process.kill()
    seen = {(p.proto, p.dport) for p, _ in ours(reader.packets) if p.direction == INBOUND}
    expected = {("UDP", port) for port in range(20000, 21000)} | {("TCP", port) for port in range(30000, 31000)}
    assert expected <= seen, f"missing {len(expected - seen)}: {sorted(expected - seen)[:10]}"
    assert summary["lost"] == 0 and summary["overruns"] == 0 and summary["malformed"] == 0, summary
    last_arrival = max(at for _, at in reader.packets)
    print(f"burst: 2000 packets sent in {ended - started:.3f} s, all read "
          f"{last_arrival - ended:.3f} s after the last send; lost {summary['lost']}")


def test_second_reader_on_the_group_is_refused_clearly(lab):
    ns, app, _ = lab
    reader = ReaderProcess(ns, app)
    try:
        with pytest.raises(NflogError, match="busy"):
            ReaderProcess(ns, app)
    finally:
        reader.stop()


def test_overrun_is_reported_never_silent(lab):
    ns, app, peer = lab
    reader = ReaderProcess(ns, app, rcvbuf=4096, hold=True)  # a tiny buffer, not read for now
    try:
        send(ns, peer, APP, udp_ports="40000-40999")
        reader.command("read")
        reader.collect(lambda got: False, timeout=0.5)
        send(ns, peer, APP, udp_ports="41000")  # its number reveals the loss at the burst's end
        reader.collect(lambda got: any(p.dport == 41000 for p, _ in got), timeout=5)
        summary = reader.stop()
    finally:
        if reader.process.poll() is None:
            reader.process.kill()
    received = len(reader.packets)
    assert summary["overruns"] >= 1, summary
    assert summary["lost"] > 0, summary
    assert received + summary["lost"] >= 1001  # every packet is read or counted as lost
    kinds = {kind for _, kind, _ in summary["events"]}
    assert kinds == {"overrun", "seq-gap"}, summary["events"]
    assert sum(n for _, kind, n in summary["events"] if kind == "seq-gap") == summary["lost"]


GARBAGE = r"""
import json, os, socket, struct, time
from appliance.capture.nflog import NflogReader, NFULNL_MSG_PACKET, _NLMSGHDR
from tests.test_nflog import message, ipv6, udp, PEER, APP
reader = NflogReader(9)
port = reader._sock.getsockname()[0]
sender = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
sender.bind((0, 0))
good = message(ipv6(17, udp(1, 2)), seq=1)
datagrams = [
    os.urandom(3),                                               # shorter than a header
    _NLMSGHDR.pack(10, NFULNL_MSG_PACKET, 0, 0, 0) + b"\0" * 12,   # length below a header
    _NLMSGHDR.pack(900, NFULNL_MSG_PACKET, 0, 0, 0) + b"\0" * 12,  # length past the datagram
    message(b"\x45" + os.urandom(5), seq=0),                     # numbered, but no IP inside
    good[:16] + b"\xff" * (len(good) - 16),                      # attributes that do not fit
    good + message(ipv6(6, b"\0" * 20), seq=2),                  # two messages in one datagram
]
for datagram in datagrams:
    sender.sendto(datagram, (port, 0))
time.sleep(0.1)
packets = reader.read_available()
print(json.dumps({"packets": [list(p) for p in packets], "malformed": reader.malformed,
                  "lost": reader.lost}))
"""


def test_garbage_datagrams_are_counted_not_raised(lab):
    # Another netlink socket can write to the reader's port: the real receive path meets bytes
    # no kernel would send.
    ns, app, _ = lab
    done = ns.python(app, GARBAGE, cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    result = json.loads(done.stdout)
    assert [p[3:6] for p in result["packets"]] == [["UDP", 1, 2], ["TCP", 0, 0]]
    assert result["malformed"] == 5, result
    assert result["lost"] == 0  # the numbered malformed message was not mistaken for a loss


def test_reader_without_cap_net_admin_says_not_permitted(lab):
    ns, app, _ = lab
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    code = ("from appliance.capture.nflog import NflogReader, NflogError\n"
            "try:\n    NflogReader(8)\nexcept NflogError as exc:\n    print(exc)\n")
    done = ns.exec(app, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                         "--inh-caps=-all", sys.executable, "-c", code],
                   cwd=REPO, env={**os.environ, "PYTHONPATH": REPO})
    assert "not permitted" in done.stdout and "CAP_NET_ADMIN" in done.stdout, (done.stdout, done.stderr)


def test_bad_group_says_why():
    with pytest.raises(NflogError, match="out of range"):
        NflogReader(70000)
