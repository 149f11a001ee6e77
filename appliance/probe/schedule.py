"""When to probe which server, and how: spread over time, fair across servers and probe kinds.

Pure decisions (no network, no clock of its own), so they can be tested on their own: at most
one probe per server per `server_interval`, at least `min_gap` seconds between any two probes,
never-probed servers first, then the one probed longest ago; each server gets the kind it has
had least often, so every server is tried with a real NTP request and with bare packets.
"""
from __future__ import annotations


class ProbeScheduler:
    def __init__(self, kinds: list[str], *, server_interval: float, min_gap: float, first_delay: float,
                 start: float, max_live: int):
        self.kinds = list(kinds)
        self.server_interval, self.min_gap, self.max_live = server_interval, min_gap, max_live
        self.next_allowed = start + first_delay

    def choose(self, servers: list[str], history: dict[str, tuple[float, dict[str, int]]], now: float,
               live: int) -> tuple[str, str] | None:
        """The (server, kind) to probe now, or None. `history`: server -> (last probe, kinds used)."""
        if now < self.next_allowed or live >= self.max_live:
            return None
        due = [server for server in servers
               if server not in history or now - history[server][0] >= self.server_interval]
        if not due:
            return None
        server = min(due, key=lambda s: (history.get(s, (0.0, {}))[0], s))
        used = history.get(server, (0.0, {}))[1]
        kind = min(self.kinds, key=lambda k: (used.get(k, 0), self.kinds.index(k)))
        return server, kind

    def sent(self, now: float) -> None:
        self.next_allowed = now + self.min_gap

    def next_due(self, servers: list[str], history: dict[str, tuple[float, dict[str, int]]]) -> list[tuple[float, str]]:
        """Planned probes: (earliest time, server) for each server, soonest first (for the page)."""
        plans = []
        for server in servers:
            last = history.get(server, (None, {}))[0]
            due = self.next_allowed if last is None else max(self.next_allowed, last + self.server_interval)
            plans.append((due, server))
        return sorted(plans)
