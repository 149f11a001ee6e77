"""Trigger attribution: remember what each address sent, and hand back the candidates for a scan.

A *trigger candidate* is a packet sent *from the scanned address* in the `lookback` seconds
before the scan began (ordinary addresses send several: DNS, a few NTP servers, ...). Only
outbound (OUTPUT chain) and forwarded packets can be triggers: an inbound packet was not sent
by us. Every (address, endpoint) contact is also counted once, so that the store can tell how
often an endpoint was contacted without a scan following ("exposures").
"""
from __future__ import annotations

from collections import deque
from typing import NamedTuple

from ..packet import FORWARDED, OUTBOUND, Packet
from ..settings import check

# A busy address (a LAN host behind a router) keeps its last this-many packets only.
PER_ADDRESS_LIMIT = 512


class Candidate(NamedTuple):
    ts: float
    src: str
    sport: int | None
    dst: str
    dport: int | None
    proto: str

    @property
    def endpoint(self) -> tuple:
        return (self.proto, self.dst, self.dport)


class TriggerHistory:
    def __init__(self, lookback: float, retention: float | None = None):
        self.lookback = check("detect.lookback", lookback)
        # Candidates are read when an episode reaches min-ports, which can be a while after it
        # started: keep packets somewhat longer than the lookback itself.
        self.retention = retention if retention is not None else lookback * 2 + 120.0
        self._sent: dict[str, deque] = {}
        self.contacts: dict[tuple, list] = {}  # (src, proto, dst, dport) -> [first, last]
        self._next_expiry = float("-inf")

    def feed(self, packets: list[Packet]) -> None:
        """Remember a batch of packets. The detector reads candidates while it walks the same
        batch afterwards, so expiry follows the batch's first packet, never a later one."""
        if packets and packets[0].ts >= self._next_expiry:
            self._expire(packets[0].ts)
        sent, contacts = self._sent, self.contacts
        for packet in packets:
            direction = packet[6]
            if direction is not OUTBOUND and direction is not FORWARDED:
                continue
            ts, src, dst, proto, sport, dport = packet[:6]
            history = sent.get(src)
            if history is None:
                history = sent[src] = deque(maxlen=PER_ADDRESS_LIMIT)
            history.append(Candidate(ts, src, sport, dst, dport, proto))
            key = (src, proto, dst, dport)
            seen = contacts.get(key)
            if seen is None:
                contacts[key] = [ts, ts]
            elif ts > seen[1]:
                seen[1] = ts
            elif ts < seen[0]:
                seen[0] = ts

    def candidates(self, address: str, start: float) -> list[Candidate]:
        """Packets sent from `address` in [start - lookback, start], oldest first."""
        history = self._sent.get(address)
        if not history:
            return []
        earliest = start - self.lookback
        return [c for c in history if earliest <= c.ts <= start]

    def take_contacts(self) -> dict[tuple, list]:
        """Hand over the contacts gathered so far (for the store) and start afresh."""
        taken, self.contacts = self.contacts, {}
        return taken

    def _expire(self, now: float) -> None:
        horizon = now - self.retention
        stale = []
        for address, history in self._sent.items():
            while history and history[0].ts < horizon:
                history.popleft()
            if not history:
                stale.append(address)
        for address in stale:
            del self._sent[address]
        self._next_expiry = now + min(60.0, self.lookback)
