"""Parse netfilter LOG records (iptables/ip6tables `-j LOG`, nft `log`, ulogd's LOGEMU) into packets.

One compiled pattern reads a whole chunk of text at a time: the wrapper (syslog, ISO 8601,
/dev/kmsg, dmesg or journalctl), the log prefix, and the fields the correlator needs. Lines the
pattern cannot take fall through to a slower path that finds the record anywhere in the line
(e.g. `grep -H` output) or says why it is skipped. Nothing here raises on bad input.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections import Counter
from typing import NamedTuple

from .clock import BadTimestamp, LineClock

INBOUND, OUTBOUND, FORWARDED = "in", "out", "fwd"
PORTED = frozenset({"TCP", "UDP", "UDPLITE", "SCTP", "DCCP"})
ICMP = frozenset({"ICMP", "ICMPv6"})
# What the kernel's LOG target prints after PROTO=: these names, or the protocol's number.
PROTOCOL_NAMES = PORTED | ICMP | {"AH", "ESP"}


class Packet(NamedTuple):
    """One logged packet. `dport` holds the ICMP type for ICMP/ICMPv6; ports are None when the
    kernel printed none (fragments, INCOMPLETE headers, protocols without ports)."""
    ts: float
    src: str
    dst: str
    proto: str
    sport: int | None
    dport: int | None
    direction: str  # INBOUND (INPUT chain), OUTBOUND (OUTPUT chain) or FORWARDED
    prefix: str


_new_packet = tuple.__new__
# (IN= empty, OUT= empty) -> direction. INPUT has only IN=, OUTPUT only OUT=, FORWARD both.
_DIRECTIONS = {(False, True): INBOUND, (True, False): OUTBOUND, (False, False): FORWARDED,
               (True, True): OUTBOUND}

_WRAPPER = r"""
(?:
   (?P<syslog>[A-Z][a-z]{2}\ [ 0-9][0-9]\ [0-9]{2}:[0-9]{2}:[0-9]{2})\ [^ \n]+\ (?:kernel:\ )?
 | (?P<iso>[0-9]{4}-[0-9]{2}-[0-9]{2}[T\ ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)
   \ [^ \n]+\ (?:kernel:\ )?
 | [0-9]+,[0-9]+,(?P<kmsg>[0-9]+),[^;\n]*;
)?
(?:\[\ *(?P<uptime>[0-9]+\.[0-9]+)\]\ (?:[^ \n]+\ kernel:\ )?)?
"""
_BODY = r"""
(?P<prefix>[^\n]*?)IN=(?P<iif>[^ \n]*)\ OUT=(?P<oif>[^ \n]*)\ [^\n]*?
SRC=(?P<src>[^ \n]+)\ DST=(?P<dst>[^ \n]+)\ [^\n]*?
PROTO=(?P<proto>[A-Za-z0-9]+)(?:\ SPT=(?P<spt>[0-9]+)\ DPT=(?P<dpt>[0-9]+)|\ TYPE=(?P<icmp>[0-9]+))?
"""
# The chunk pattern is the general one made fast for the common layout (MAC or nothing between
# OUT= and SRC=, greedy skips that sre runs as tight loops); other layouts (bridge PHYSIN=, nft
# MACSRC=, ...) miss it and are taken by the general body pattern in the slow path.
_FAST_BODY = r"""
(?P<prefix>[^\n]*?)IN=(?P<iif>[^ \n]*)\ OUT=(?P<oif>[^ \n]*)\ (?:MAC=[^ \n]*\ )?
SRC=(?P<src>[0-9a-fA-F:.]+)\ DST=(?P<dst>[0-9a-fA-F:.]+)\ [^\n]*
PROTO=(?P<proto>[A-Za-z0-9]+)(?:\ SPT=(?P<spt>[0-9]+)\ DPT=(?P<dpt>[0-9]+)|\ TYPE=(?P<icmp>[0-9]+))?
"""
_CHUNK_RX = re.compile(r"^(?:" + _WRAPPER + _FAST_BODY + r"(?P<rest>[^\n]*)|(?P<other>.+))$", re.M | re.X)
_BODY_RX = re.compile(_BODY + r"(?P<rest>.*)$", re.X)
_WRAPPER_SEARCH_RX = re.compile(
    r"(?:(?P<syslog>[A-Z][a-z]{2}\ [ 0-9][0-9]\ [0-9]{2}:[0-9]{2}:[0-9]{2})\ [^ ]+\ (?:kernel:\ )?"
    r"|(?P<iso>[0-9]{4}-[0-9]{2}-[0-9]{2}[T\ ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)\ [^ ]+\ (?:kernel:\ )?)"
    r"(?:\[\ *(?P<uptime>[0-9]+\.[0-9]+)\]\ )?", re.X)

_CACHE_LIMIT = 8192  # entries; an address entry is ~200 bytes

# Skip reasons, as counted and reported.
NOT_NETFILTER = "not-netfilter"
TRUNCATED = "truncated"
NO_TIMESTAMP = "no-timestamp"
BAD_TIMESTAMP = "bad-timestamp"
BAD_ADDRESS = "bad-address"
BAD_PROTOCOL = "bad-protocol"  # neither a name the kernel prints nor a number up to 255: garbled
BAD_PORT = "bad-port"  # a port (or ICMP type) beyond 16 bits: no kernel prints that, the line is garbled
MAX_PORT = 65535


def normalize_address(text: str) -> str:
    """Kernel-printed address (IPv6 fully expanded) -> compressed canonical form (RFC 5952)."""
    if len(text) == 39 and text.count(":") == 7:
        # The kernel's fully expanded form: C functions do this ten times faster than ipaddress.
        try:
            packed = bytes.fromhex(text.replace(":", ""))
        except ValueError:
            raise ValueError(f"bad IPv6 address {text!r}") from None
        compressed = socket.inet_ntop(socket.AF_INET6, packed)
        if "." not in compressed:  # IPv4-mapped forms: let ipaddress decide the spelling
            return compressed
    return ipaddress.ip_address(text).compressed


class NetfilterParser:
    """Stateful parser for one input stream (the clock carries year and boot anchors)."""

    def __init__(self, clock: LineClock, skipped: Counter | None = None):
        self.clock = clock
        self.skipped: Counter = skipped if skipped is not None else Counter()
        self.lines = 0
        self.records = 0
        self._addresses: dict[str, str | None] = {}
        self._prefixes: dict[str, str] = {}

    # -- public ---------------------------------------------------------------------------
    def parse_text(self, text: str) -> list[Packet]:
        """Parse complete lines (a chunk ending at a line boundary) into packets."""
        packets: list[Packet] = []
        append = packets.append
        lines = 0
        for (syslog, iso, kmsg, uptime, prefix, iif, oif, src, dst, proto,
             spt, dpt, icmp, rest, other) in _CHUNK_RX.findall(text):
            lines += 1
            if other:
                packet = self._slow(other)
            elif syslog or iso or kmsg or uptime:
                packet = self._timed_packet(syslog, iso, kmsg, uptime,
                                            (prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest))
            else:
                # No wrapper at the start: maybe one further in (grep -H file:line output).
                packet = self._wrapper_inside(prefix, (iif, oif, src, dst, proto, spt, dpt, icmp, rest))
            if packet is not None:
                append(packet)
        self.lines += lines
        self.records += len(packets)
        return packets

    def parse_line(self, line: str) -> Packet | None:
        """Parse one line (no newline inside); None if skipped (and counted)."""
        packets = self.parse_text(line.replace("\n", " ").replace("\r", " "))
        return packets[0] if packets else None

    # -- internals ------------------------------------------------------------------------
    def _packet(self, ts, prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest):
        addresses = self._addresses
        source = addresses.get(src)
        if source is None:
            source = self._address(src)
        target = addresses.get(dst)
        if target is None:
            target = self._address(dst)
        if not source or not target:
            self.skipped[BAD_ADDRESS] += 1
            return None
        if proto not in PROTOCOL_NAMES and not (proto.isdigit() and len(proto) <= 3 and int(proto) <= 255):
            self.skipped[BAD_PROTOCOL] += 1
            return None
        if spt:
            sport, dport = int(spt), int(dpt)
            if sport > MAX_PORT or dport > MAX_PORT:
                self.skipped[BAD_PORT] += 1
                return None
        elif icmp:
            sport, dport = None, int(icmp)
            if dport > MAX_PORT:
                self.skipped[BAD_PORT] += 1
                return None
        elif proto in PORTED and _cut_short(rest):
            self.skipped[TRUNCATED] += 1
            return None
        else:
            sport = dport = None
        clean_prefix = self._prefixes.get(prefix)
        if clean_prefix is None:
            clean_prefix = self._prefix(prefix)
        return _new_packet(Packet, (ts, source, target, proto, sport, dport,
                                    _DIRECTIONS[not iif, not oif], clean_prefix))

    def _prefix(self, prefix: str) -> str:
        if len(self._prefixes) >= _CACHE_LIMIT:
            self._prefixes.clear()
        clean = self._prefixes[prefix] = prefix.strip()
        return clean

    def _address(self, text: str) -> str | None:
        cache = self._addresses
        try:
            return cache[text]
        except KeyError:
            pass
        try:
            value = normalize_address(text)
        except ValueError:
            value = None
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = value or ""  # "" marks a known-bad address in the cache
        return value

    def _slow(self, line: str) -> Packet | None:
        if "SRC=" not in line or "IN=" not in line:
            self.skipped[NOT_NETFILTER] += 1
            return None
        if "PROTO=" not in line:  # the body pattern needs it; searching for it is slow
            self.skipped[TRUNCATED] += 1
            return None
        body = _BODY_RX.search(line)
        if body is None:
            self.skipped[TRUNCATED] += 1
            return None
        return self._wrapper_inside(body.group("prefix"), body.group(
            "iif", "oif", "src", "dst", "proto", "spt", "dpt", "icmp", "rest"))

    def _wrapper_inside(self, head: str, fields: tuple) -> Packet | None:
        wrapper = _WRAPPER_SEARCH_RX.search(head)
        if wrapper is None:
            self.skipped[NO_TIMESTAMP] += 1
            return None
        syslog, iso, uptime = wrapper.group("syslog", "iso", "uptime")
        return self._timed_packet(syslog, iso, "", uptime, (head[wrapper.end():],) + tuple(fields))

    def _timed_packet(self, syslog: str, iso: str, kmsg: str, uptime: str, fields: tuple) -> Packet | None:
        clock = self.clock
        try:
            if syslog:
                ts = clock.syslog_with_uptime(syslog, uptime) if uptime else clock.syslog(syslog)
            elif iso:
                ts = clock.iso(iso)
            elif kmsg:
                ts = clock.since_boot(int(kmsg) / 1e6)
            else:
                ts = clock.since_boot(float(uptime))
        except BadTimestamp:
            self.skipped[BAD_TIMESTAMP] += 1
            return None
        return self._packet(ts, *fields)


def _cut_short(rest: str) -> bool:
    """A ported protocol printed without ports: the kernel does that for a non-first fragment
    (nothing follows `PROTO=UDP `) or a short header (`INCOMPLETE [n bytes]`); anything else
    after PROTO= means the line itself was cut off."""
    if not rest:  # the kernel ends every field with a space: no space, the line was cut here
        return True
    return bool(rest.strip()) and "INCOMPLETE" not in rest


def summarize_skips(lines: int, records: int, skipped: Counter) -> str:
    total = sum(skipped.values())
    detail = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items()))
    return (f"read {lines} lines: {records} packet records, skipped {total}"
            + (f" ({detail})" if detail else ""))
