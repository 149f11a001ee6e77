"""Touches: unsolicited packets from the internet that reach a probe address.

A probe address sent one packet, to one server, and nothing else ever: any packet the internet
sends to it afterwards (a scan, a lone SYN, one echo request) means that server passed the address
on. One touch is proof. The firewall logs only new, unsolicited inbound packets (the server's own
reply to the probe is established and accepted unlogged, neighbour discovery is accepted before the
log); packets from the LAN (the household's devices, link-local and ULA sources) are no evidence
and are left out here. Scans keep their own detection (detect/scans.py); a scan of a probe address
is touches too.
"""
from __future__ import annotations

from ..lan import LanNetworks
from ..packet import INBOUND, OUTBOUND, Packet

# How long after a probe address's window a late packet to it is still taken (clock skew between
# the ledger's times and the capture's): the kernel removes the address at the window's end.
SLACK = 5.0


class TouchDetector:
    """Feed packets; `take()` hands over the touches seen since, one entry per (probe, source,
    protocol, port) with first and last time and a packet count."""

    def __init__(self, lan: LanNetworks):
        self.lan = lan
        self._watched: dict[str, tuple[int, float, float]] = {}  # address -> (probe id, from, until)
        self.touches: dict[tuple, list] = {}  # (probe id, src, proto, dport) -> [first, last, packets]

    def watch(self, address: str, probe_id: int, start: float, until: float) -> None:
        """Watch a probe address from `start` (its minting) until `until` (its window's end). Its
        /64 is the LAN's: a neighbour's packet to it is no touch."""
        self._watched[address] = (probe_id, start, until)
        self.lan.add(f"{address}/64")

    def forget(self, now: float) -> None:
        """Stop watching the addresses whose window is over."""
        # list(): the prober's thread adds addresses meanwhile (copying holds the interpreter's lock).
        for address, (_, _, until) in list(self._watched.items()):
            if until + SLACK < now:
                del self._watched[address]

    def triggers(self, packets: list[Packet]) -> list[Packet]:
        """`packets` without a probe address's own LAN traffic (its pinhole requests to the router):
        no trigger of anything, and no contact a harvester could have seen."""
        watched = self._watched
        if not watched:
            return packets
        return [p for p in packets if p[6] is not OUTBOUND or p[1] not in watched or self.lan.is_outside(p[2])]

    def watched_items(self) -> list:
        """(address, (probe id, start, until)) of every address watched."""
        return list(self._watched.items())

    def is_watched(self, address: str) -> bool:
        return address in self._watched

    @property
    def watched(self) -> int:
        return len(self._watched)

    def feed(self, packets: list[Packet]) -> None:
        watched, touches = self._watched, self.touches
        if not watched:
            return
        for packet in packets:
            window = watched.get(packet[2])
            if window is None or packet[6] is not INBOUND:
                continue
            probe_id, start, until = window
            ts, src = packet[0], packet[1]
            if not start <= ts <= until + SLACK or not self.lan.is_outside(src):
                continue
            key = (probe_id, src, packet[3], packet[5])
            seen = touches.get(key)
            if seen is None:
                touches[key] = [ts, ts, 1]
            else:
                if ts < seen[0]:
                    seen[0] = ts
                elif ts > seen[1]:
                    seen[1] = ts
                seen[2] += 1

    def take(self) -> dict[tuple, list]:
        taken, self.touches = self.touches, {}
        return taken
