"""Streaming scan detection: packets in, scans and sweeps out.

A *scan* is packets from one source to one destination covering at least `min_ports` distinct
(protocol, port) pairs within `window` seconds. A *sweep* is one source reaching at least
`min_hosts` distinct destinations within `window` seconds (inbound or forwarded packets only:
our own host contacting many servers is not a sweep).

Packets are grouped into episodes per (source, destination): an episode goes on while packets
keep arriving less than `window` seconds apart, and is judged when it goes quiet. Memory is
bounded by what arrived within the last window, never by the length of the input, and in the
live daemon also by a number of episodes (a flood from many sources: what is refused is counted).
"""
from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Callable

from ..packet import FORWARDED, INBOUND, Packet
from ..settings import check
from ..words import ScanKind

PORTSCAN, SWEEP = ScanKind.PORTSCAN, ScanKind.SWEEP
SWEEP_TARGET = "*"


@dataclass
class Scan:
    kind: str                      # PORTSCAN or SWEEP
    scanner: str
    target: str                    # SWEEP_TARGET for sweeps
    start: float
    end: float
    packets: int
    ports: list                    # sorted [(proto, port-or-None)]
    targets: list = field(default_factory=list)     # sweeps: the destinations reached
    candidates: list = field(default_factory=list)  # trigger candidates (attribute stage)

    @property
    def protocols(self) -> dict:
        """Distinct ports per protocol, in order of first appearance."""
        return dict(Counter(map(itemgetter(0), self.ports)))


def network_of(address: str, prefix: int = 64) -> str:
    """The scanner family: the IPv6 /`prefix` (detect.family_prefix: 64 is one host's or one
    customer's block, 48 a site), or the IPv4 /24."""
    # The C socket functions parse and print an address as ipaddress does (lower-case hextets,
    # the first longest run of zero hextets as '::') at a tenth of the cost: a store writes this
    # for every scan and touch.
    try:
        if ":" in address:
            packed = socket.inet_pton(socket.AF_INET6, address)
            if prefix == 64:
                kept = packed[:8] + bytes(8)
            else:
                mask = (1 << 128) - (1 << (128 - prefix))
                kept = (int.from_bytes(packed, "big") & mask).to_bytes(16, "big")
            return f"{socket.inet_ntop(socket.AF_INET6, kept)}/{prefix}"
        packed = socket.inet_pton(socket.AF_INET, address)
        return socket.inet_ntop(socket.AF_INET, packed[:3] + b"\0") + "/24"
    except (OSError, ValueError):  # a form the C parser refuses (a scope id, ...): ipaddress decides
        ip = ipaddress.ip_address(address)
        return str(ipaddress.ip_network(f"{address}/{prefix if ip.version == 6 else 24}", strict=False))


def dense_enough(first_seen: list[float], count: int, window: float) -> bool:
    """True if some `window`-second span holds the first sighting of `count` distinct ports."""
    if len(first_seen) < count:
        return False
    times = sorted(first_seen)
    return any(times[i + count - 1] - times[i] <= window for i in range(len(times) - count + 1))


# Episode fields, kept in a list for speed (this is the per-packet hot path).
_START, _LAST, _SEEN, _PACKETS, _SRC, _DST, _CANDIDATES = range(7)
_PORTS = _CANDIDATES  # a sweep keeps the set of ports it used where a pair keeps candidates


class ScanDetector:
    """Feed packets in time order; `emit` is called with each finished Scan."""

    def __init__(self, emit: Callable[[Scan], None], *, min_ports: int, window: float, min_hosts: int,
                 candidates: Callable[[str, float], list] | None = None, max_open: int | None = None,
                 keep: Callable[[str], bool] | None = None):
        """`max_open`: at most this many pair (and as many sweep) episodes at once; a packet that
        would open one more is not followed and is counted in `refused`, unless `keep(destination)`
        (a probe address): those may open twice as many, beyond which they count in `refused_keep`.
        None (analyze): no bound but the window's."""
        self.emit = emit
        # The settings' own limits (appliance/settings.py): SettingError, a ValueError, if outside them.
        self.min_ports, self.window, self.min_hosts = (
            check("detect.min_ports", min_ports), check("detect.window", window), check("detect.min_hosts", min_hosts))
        # Called when an episode first reaches min_ports: the trigger history is complete then.
        self.candidates = candidates or (lambda address, start: [])
        self._pairs: dict[tuple[str, str], list] = {}
        self._sources: dict[str, list] = {}
        self._next_expiry = float("-inf")
        self.max_open, self.keep = max_open, keep or (lambda address: False)
        self.refused = self.refused_keep = 0

    def _full(self, table: dict, dst: str) -> bool:
        """Whether a new episode in `table` must be refused (counted as such)."""
        if len(table) < self.max_open:
            return False
        if self.keep(dst):
            if len(table) < 2 * self.max_open:
                return False
            self.refused_keep += 1
        else:
            self.refused += 1
        return True

    def feed(self, packets: list[Packet]) -> None:
        pairs, sources = self._pairs, self._sources
        window, min_ports, max_open = self.window, self.min_ports, self.max_open
        next_expiry = self._next_expiry
        # A scan arrives as a run of packets of one pair (and of one source): the episodes of the
        # last pair and source are kept at hand, which spares most packets a dictionary look-up.
        pair_src = pair_dst = sweep_src = episode = sweep = None
        for ts, src, dst, proto, _sport, dport, direction, _prefix in packets:
            if ts >= next_expiry:
                self._expire(ts)
                next_expiry = self._next_expiry
                pair_src = sweep_src = None  # what was at hand may have been closed
            if src is not pair_src or dst is not pair_dst:
                pair_src, pair_dst = src, dst
                episode = pairs.get((src, dst))
            if episode is None or ts - episode[_LAST] > window:
                if episode is not None:
                    self._close_pair(episode)
                elif max_open is not None and self._full(pairs, dst):
                    pair_src = None
                    continue
                episode = pairs[src, dst] = [ts, ts, {}, 0, src, dst, None]
            elif ts > episode[_LAST]:
                episode[_LAST] = ts
            episode[_PACKETS] += 1
            seen = episode[_SEEN]
            port = (proto, dport)
            if port not in seen:
                seen[port] = ts
                if len(seen) == min_ports:
                    episode[_CANDIDATES] = self.candidates(dst, episode[_START])
            if direction is INBOUND or direction is FORWARDED:
                if src is not sweep_src:
                    sweep_src = src
                    sweep = sources.get(src)
                if sweep is None or ts - sweep[_LAST] > window:
                    if sweep is not None:
                        self._close_sweep(sweep)
                    elif max_open is not None and self._full(sources, dst):
                        sweep_src = None
                        continue
                    sweep = sources[src] = [ts, ts, {}, 0, src, None, set()]
                elif ts > sweep[_LAST]:
                    sweep[_LAST] = ts
                sweep[_PACKETS] += 1
                hosts = sweep[_SEEN]
                if dst not in hosts:
                    hosts[dst] = ts
                sweep[_PORTS].add(port)

    def flush(self) -> None:
        """End of input: judge every open episode."""
        self._expire(float("inf"))

    def expire(self, now: float) -> None:
        """Live capture: time passes without packets too, and a quiet episode must still close."""
        self._expire(now)

    def open_scans(self) -> list[Scan]:
        """Episodes still going on that already qualify, as they stand now. The live daemon stores
        these at once (a scan is news long before it goes quiet); the final Scan of the same
        episode has the same (kind, scanner, target, start) and supersedes it in the store."""
        scans = [self._pair_scan(episode) for episode in self._pairs.values()]
        scans += [self._sweep_scan(episode) for episode in self._sources.values()]
        return [scan for scan in scans if scan is not None]

    def open_episodes(self) -> int:
        return len(self._pairs) + len(self._sources)

    # -- internals -------------------------------------------------------------------------
    def _expire(self, now: float) -> None:
        horizon = now - self.window
        for table, close in ((self._pairs, self._close_pair), (self._sources, self._close_sweep)):
            stale = [key for key, episode in table.items() if episode[_LAST] < horizon]
            for key in stale:
                close(table.pop(key))
        self._next_expiry = now + self.window

    def _close_pair(self, episode: list) -> None:
        scan = self._pair_scan(episode)
        if scan is not None:
            self.emit(scan)

    def _close_sweep(self, episode: list) -> None:
        scan = self._sweep_scan(episode)
        if scan is not None:
            self.emit(scan)

    def _pair_scan(self, episode: list) -> Scan | None:
        """A (source, destination) episode -> a portscan, if `min_ports` of its distinct ports were
        first seen within one window."""
        seen = episode[_SEEN]
        # Most episodes are ordinary traffic, a port or two: those cost one len() here.
        if len(seen) < self.min_ports or not dense_enough(list(seen.values()), self.min_ports, self.window):
            return None
        return Scan(PORTSCAN, episode[_SRC], episode[_DST], episode[_START], episode[_LAST], episode[_PACKETS],
                    sorted_ports(seen), candidates=episode[_CANDIDATES] or [])

    def _sweep_scan(self, episode: list) -> Scan | None:
        """A source's episode -> a sweep, if `min_hosts` destinations came within one window."""
        hosts = episode[_SEEN]
        if len(hosts) < self.min_hosts or not dense_enough(list(hosts.values()), self.min_hosts, self.window):
            return None
        return Scan(SWEEP, episode[_SRC], SWEEP_TARGET, episode[_START], episode[_LAST], episode[_PACKETS],
                    sorted_ports(episode[_PORTS]), targets=sorted(hosts, key=hosts.get))


def sorted_ports(ports) -> list:
    """(proto, port) pairs by protocol, then port, portless (None) first."""
    try:
        return sorted(ports)  # the common case, several times faster than with a key
    except TypeError:  # None beside numbers within one protocol
        return sorted(ports, key=_port_order)


def _port_order(port: tuple) -> tuple:
    proto, number = port
    return (proto, -1 if number is None else number)
