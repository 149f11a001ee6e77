"""How many scans the live store takes per hour, so that a flood cannot fill the card with them.

A flood from 60,000 addresses of one network is one event, not 60,000 findings: each source /48
gets at most PER_NETWORK new scans an hour, and all sources together TOTAL. Scans beyond are
counted (their packets, as a gap) and not stored one by one. A scan that touches a watched probe
address is never refused: that is the evidence the appliance exists for.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from .scans import Scan, network_of

PER_NETWORK = 200       # new scans per source /48 per hour: a big distributed scan is a few hundred
TOTAL = 2000            # new scans per hour from everywhere: about 1 MB of store
HOUR = 3600.0


class ScanQuota:
    def __init__(self, exempt: Callable[[Scan], bool], per_network: int = PER_NETWORK, total: int = TOTAL):
        self.exempt, self.per_network, self.total = exempt, per_network, total
        self.hour: int | None = None
        self.admitted: set[tuple] = set()
        self.by_network: dict[str, int] = {}
        self.open_keys: set[tuple] = set()   # the scans offered open at the last flush

    def admit(self, scans: Iterable[Scan], now: float, final: bool = True) -> tuple[list[Scan], int]:
        """The scans to store, and how many packets the refused ones held (counted for `final`
        scans only: an open scan is offered again at each flush until it is final). A scan already
        admitted (an open scan stored before, now final) is always taken again."""
        hour = int(now // HOUR)
        if hour != self.hour:
            # A new hour, a new quota; scans stored while open stay admitted until they are over
            # (refused then, a stored row would stop growing halfway).
            self.hour, self.admitted, self.by_network = hour, self.admitted & self.open_keys, {}
        kept, refused = [], 0
        if not final:
            self.open_keys = set()
        for scan in scans:
            key = (scan.kind, scan.scanner, scan.target, scan.start)
            if not final:
                self.open_keys.add(key)
            if key in self.admitted or self.exempt(scan):
                kept.append(scan)
                continue
            network = network_of(scan.scanner, 48)
            if len(self.admitted) >= self.total or self.by_network.get(network, 0) >= self.per_network:
                refused += scan.packets if final else 0
                continue
            self.admitted.add(key)
            self.by_network[network] = self.by_network.get(network, 0) + 1
            kept.append(scan)
        return kept, refused
