"""Parse netfilter LOG records (iptables/ip6tables `-j LOG`, nft `log`, ulogd's LOGEMU) into packets.

Two steps. `line_fields` reads a block of lines: for each record in the common layout (a wrapper
at the start of the line: syslog, ISO 8601, /dev/kmsg, dmesg or journalctl; then the kernel's
fields) it gives the wrapper's time texts and the packet's fields; every other line comes back as
it is. `NetfilterParser` then asks its clock for each record's time, and reads the lines that came
back one at a time with the general patterns (a record further inside the line, as `grep -H`
prints it; bridge or nft layouts), or says why a line is skipped. Nothing here raises on bad input.

`line_fields` is the one speed-up with a compiled twin: `_speedups.line_fields` (C) does what
`py_line_fields` does, a block of bytes at a time, and hands back every line it is not sure about;
both give the same packets (tests/test_parse.py runs every parse test under both). Without a C
compiler at install time, or with HARVESTWATCH_PURE=1, the Python twin runs.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections import Counter

from ..packet import FORWARDED, INBOUND, OUTBOUND, Packet
from .clock import BadTimestamp, LineClock

__all__ = ["FORWARDED", "INBOUND", "OUTBOUND", "NetfilterParser", "Packet", "line_fields", "normalize_address",
           "py_line_fields", "summarize_skips"]

PORTED = frozenset({"TCP", "UDP", "UDPLITE", "SCTP", "DCCP"})
ICMP = frozenset({"ICMP", "ICMPv6"})
# What the kernel's LOG target prints after PROTO=: these names, or the protocol's number.
PROTOCOL_NAMES = PORTED | ICMP | {"AH", "ESP"}

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
_EMPTY_LINE_RX = re.compile(rb"^\n", re.M)  # a newline at a line's start: that line is empty
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
NOT_KERNEL = "not-kernel"  # a record another program logged (`name[pid]: ...`): anyone could write one
SKIP_REASONS = (NOT_NETFILTER, TRUNCATED, NO_TIMESTAMP, BAD_TIMESTAMP, BAD_ADDRESS, BAD_PROTOCOL, BAD_PORT,
                NOT_KERNEL)
MAX_PORT = 65535

# The layouts this parser reads. Each has a sample under tests/files/logs/ with the record expected
# of every line written beside it (tests/test_samples.py fails for a layout without one).
FORMATS = {
    "kern.log": "classic syslog with the kernel's uptime (rsyslog's /var/log/kern.log)",
    "syslog": "syslog without the uptime (journalctl -k, syslog-ng, busybox syslogd)",
    "rfc3339": "RFC 3339 stamps (rsyslog's high precision, journalctl -o short-iso and short-iso-precise)",
    "kmsg": "/dev/kmsg records (microseconds since boot)",
    "dmesg": "dmesg lines (seconds since boot)",
    "logemu": "ulogd's LOGEMU (no 'kernel:')",
    "grep": "a record further inside the line (grep -H file:line output)",
    "bridge": "bridge-netfilter and nftables layouts (PHYSIN=, MACSRC=)",
}


def normalize_address(text: str) -> str:
    """Kernel-printed address (IPv6 fully expanded) -> compressed canonical form (RFC 5952).
    What no kernel prints is refused (ValueError): a zone ID, groups of other than four digits in the
    39-character form (`20010:db8:...` would otherwise pass as 32 hex digits)."""
    if "%" in text:
        raise ValueError(f"bad IP address {text!r}: the kernel prints no zone ID")
    if len(text) == 39 and text[4::5] == ":::::::":
        # The kernel's fully expanded form: C functions do this ten times faster than ipaddress.
        try:
            packed = bytes.fromhex(text.replace(":", ""))
        except ValueError:
            raise ValueError(f"bad IPv6 address {text!r}") from None
        compressed = socket.inet_ntop(socket.AF_INET6, packed)
        if "." not in compressed:  # IPv4-mapped forms: let ipaddress decide the spelling
            return compressed
    return ipaddress.ip_address(text).compressed


# A syslog tag with a process ID: what rsyslog and journald write for every program but the kernel,
# whose records carry `kernel:` (taken with the wrapper) or nothing (ulogd's LOGEMU, dmesg).
_PROGRAM_TAG_RX = re.compile(r"[^\s\[\]:]+\[[0-9]+\]:")
_from_program: dict[str, bool] = {}


def from_program(prefix: str) -> bool:
    """True when a record's prefix starts with another program's syslog tag (`evil[4242]: HW-IN`)."""
    value = _from_program.get(prefix)
    if value is None:
        if len(_from_program) >= _CACHE_LIMIT:
            _from_program.clear()
        value = _from_program[prefix] = _PROGRAM_TAG_RX.match(prefix) is not None
    return value


# -- step 1: the fields of each line ---------------------------------------------------------------
_addresses: dict[str, str] = {}   # address text -> normalised, "" for no address
_prefixes: dict[str, str] = {}


def _address(text: str) -> str:
    """The normalised address, or "" if `text` is none (cached: a log repeats its addresses)."""
    value = _addresses.get(text)
    if value is None:
        try:
            value = normalize_address(text)
        except ValueError:
            value = ""
        if len(_addresses) >= _CACHE_LIMIT:
            _addresses.clear()
        _addresses[text] = value
    return value


def record_fields(prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest) -> tuple | str:
    """A record's body groups -> (src, dst, proto, sport, dport, direction, prefix), or the reason
    to skip it."""
    source = _addresses.get(src) or _address(src)
    target = _addresses.get(dst) or _address(dst)
    if not source or not target:
        return BAD_ADDRESS
    if proto not in PROTOCOL_NAMES and not (proto.isdigit() and len(proto) <= 3 and int(proto) <= 255):
        return BAD_PROTOCOL
    if spt:
        sport, dport = int(spt), int(dpt)
        if sport > MAX_PORT or dport > MAX_PORT:
            return BAD_PORT
    elif icmp:
        sport, dport = None, int(icmp)
        if dport > MAX_PORT:
            return BAD_PORT
    elif proto in PORTED and _cut_short(rest):
        return TRUNCATED
    else:
        sport = dport = None
    clean_prefix = _prefixes.get(prefix)
    if clean_prefix is None:
        if len(_prefixes) >= _CACHE_LIMIT:
            _prefixes.clear()
        clean_prefix = _prefixes[prefix] = prefix.strip()
    return (source, target, proto, sport, dport, _DIRECTIONS[not iif, not oif], clean_prefix)


def py_line_fields(block) -> list:
    """Each non-empty line of `block` (bytes of whole lines, UTF-8) in order: for a valid record
    in the common layout, `((syslog, iso, kmsg, uptime), src, dst, proto, sport, dport, direction,
    prefix)` (the wrapper's time texts, the uptime as a number, None where absent; the packet's
    fields); for any other line, the line itself (str, undecodable bytes replaced)."""
    items = []
    append = items.append
    for match in _CHUNK_RX.finditer(str(block, "utf-8", "replace")):
        (syslog, iso, kmsg, uptime, prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest,
         other) = match.groups()
        if other is None and (syslog or iso or kmsg or uptime):
            fields = record_fields(prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest)
            if fields.__class__ is tuple:
                append(((syslog, iso, kmsg, None if uptime is None else float(uptime)),) + fields)
                continue
        append(match.group())
    return items


try:
    from ._speedups import line_fields as c_line_fields
except ImportError:  # not built: no C compiler at install time, or a pure wheel
    c_line_fields = None
line_fields = py_line_fields if c_line_fields is None or os.environ.get("HARVESTWATCH_PURE") else c_line_fields


# -- step 2: packets ------------------------------------------------------------------------------
class NetfilterParser:
    """Stateful parser for one input stream (the clock carries year and boot anchors)."""

    def __init__(self, clock: LineClock, skipped: Counter | None = None):
        self.clock = clock
        self.skipped: Counter = skipped if skipped is not None else Counter()
        self.lines = 0
        self.empty = 0       # of the lines, those with nothing on them
        self.records = 0

    # -- public ---------------------------------------------------------------------------
    def parse(self, block) -> list[Packet]:
        """Parse a block of whole lines (bytes, as read from a log) into packets. Every line is
        counted as read, empty ones too (as `wc -l` counts them, and one more for an unended last)."""
        raw = block if block.__class__ is bytes else bytes(block)
        self.lines += raw.count(b"\n") + (0 if not raw or raw.endswith(b"\n") else 1)
        # The pattern costs a second per million lines: only where two newlines meet at all.
        self.empty += len(_EMPTY_LINE_RX.findall(raw)) if b"\n\n" in raw else raw.startswith(b"\n")
        return self._packets(line_fields(block))

    def parse_text(self, text: str) -> list[Packet]:
        """Parse complete lines (text ending at a line boundary) into packets, as `parse` would
        read them from a file."""
        return self.parse(text.encode("utf-8", "surrogatepass"))

    def parse_line(self, line: str) -> Packet | None:
        """Parse one line (no newline inside); None if skipped (and counted)."""
        packets = self.parse_text(line.replace("\n", " ").replace("\r", " "))
        return packets[0] if packets else None

    # -- internals ------------------------------------------------------------------------
    def _packets(self, items: list) -> list[Packet]:
        packets: list[Packet] = []
        append = packets.append
        clock = self.clock
        syslog_time, syslog_uptime_time = clock.syslog, clock.syslog_with_uptime
        for item in items:
            if item.__class__ is str:
                packet = self._line(item)
                if packet is not None:
                    append(packet)
                continue
            # Unpacked and built anew: the cheapest way to a Packet in CPython (no slices).
            when, src, dst, proto, sport, dport, direction, prefix = item
            if prefix and from_program(prefix):
                self.skipped[NOT_KERNEL] += 1
                continue
            syslog, iso, kmsg, uptime = when
            try:
                if syslog:
                    ts = syslog_time(syslog) if uptime is None else syslog_uptime_time(syslog, uptime)
                else:
                    ts = self._time(None, iso, kmsg, uptime)
            except BadTimestamp:
                self.skipped[BAD_TIMESTAMP] += 1
                continue
            append(_new_packet(Packet, (ts, src, dst, proto, sport, dport, direction, prefix)))
        self.records += len(packets)
        return packets

    def _time(self, syslog, iso, kmsg, uptime) -> float:
        clock = self.clock
        if syslog:
            return clock.syslog_with_uptime(syslog, float(uptime)) if uptime else clock.syslog(syslog)
        if iso:
            return clock.iso(iso)
        try:
            return clock.since_boot(int(kmsg) / 1e6 if kmsg else float(uptime))
        except OverflowError:  # more digits than any uptime: no instant
            raise BadTimestamp(f"uptime {kmsg or uptime} out of range") from None

    def _line(self, line: str) -> Packet | None:
        """One line that is not a plain record: its record found by the general patterns, or
        the reason it is skipped counted."""
        # What the patterns would conclude for most such lines, without running them (slow on garbage).
        if "SRC=" not in line or "IN=" not in line:
            self.skipped[NOT_NETFILTER] += 1
            return None
        if "PROTO=" not in line:
            self.skipped[TRUNCATED] += 1
            return None
        (syslog, iso, kmsg, uptime, prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest,
         other) = _CHUNK_RX.match(line).groups()
        if other is not None:
            body = _BODY_RX.search(other)
            if body is None:
                self.skipped[TRUNCATED] += 1
                return None
            prefix = body.group("prefix")
            fields = body.group("iif", "oif", "src", "dst", "proto", "spt", "dpt", "icmp", "rest")
        elif syslog or iso or kmsg or uptime:
            return self._timed_packet(syslog, iso, kmsg, uptime,
                                      (prefix, iif, oif, src, dst, proto, spt, dpt, icmp, rest))
        else:
            fields = (iif, oif, src, dst, proto, spt, dpt, icmp, rest)
        # No wrapper at the start: maybe one further in (grep -H file:line output).
        return self._wrapper_inside(prefix, fields)

    def _wrapper_inside(self, head: str, fields: tuple) -> Packet | None:
        wrapper = _WRAPPER_SEARCH_RX.search(head)
        if wrapper is None:
            self.skipped[NO_TIMESTAMP] += 1
            return None
        syslog, iso, uptime = wrapper.group("syslog", "iso", "uptime")
        return self._timed_packet(syslog, iso, None, uptime, (head[wrapper.end():],) + tuple(fields))

    def _timed_packet(self, syslog, iso, kmsg, uptime, fields: tuple) -> Packet | None:
        try:
            ts = self._time(syslog, iso, kmsg, uptime)
        except BadTimestamp:
            self.skipped[BAD_TIMESTAMP] += 1
            return None
        packet = record_fields(*fields)
        if packet.__class__ is str:
            self.skipped[packet] += 1
            return None
        if packet[-1] and from_program(packet[-1]):
            self.skipped[NOT_KERNEL] += 1
            return None
        return _new_packet(Packet, (ts,) + packet)


def _cut_short(rest: str) -> bool:
    """A ported protocol printed without ports: the kernel does that for a non-first fragment
    (nothing follows `PROTO=UDP `) or a short header (`INCOMPLETE [n bytes]`); anything else
    after PROTO= means the line itself was cut off."""
    if not rest:  # the kernel ends every field with a space: no space, the line was cut here
        return True
    return bool(rest.strip()) and "INCOMPLETE" not in rest


OUT_OF_ORDER_SLACK = 2.0  # seconds a record may lag behind the latest read (CPUs log concurrently)


def summarize_skips(lines: int, records: int, skipped: Counter, empty: int = 0, out_of_order: int = 0) -> str:
    total = sum(skipped.values())
    detail = ", ".join(f"{reason} {count}" for reason, count in sorted(skipped.items()))
    text = (f"read {lines} lines{f' ({empty} empty)' if empty else ''}: {records} packet records, skipped {total}"
            + (f" ({detail})" if detail else ""))
    if out_of_order:
        text += (f"\nwarning: {out_of_order} records came more than {OUT_OF_ORDER_SLACK:g} s before one read earlier "
                 "(the log is out "
                 "of time order): scans and triggers among them may be missed; give the logs in time order")
    return text
