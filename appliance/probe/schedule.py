"""When to probe which server, and how: in rounds, fair across servers and probe kinds.

Pure decisions (no network, no clock of its own), so they can be tested on their own. Probes leave
together, in rounds at least `round_every` seconds apart (at least `min_gap` when that is longer),
each round at most `round_every / min_gap` probes (at least one): on average no more than one probe
per `min_gap`, and a round's ledger rows are one write to the SD card, not one per probe. At most
one probe per server per `server_interval`; never-probed servers first, then the one probed
longest ago; each server gets the kind it has had least often, so every server is tried with a
real NTP request and with bare packets.
"""
from __future__ import annotations

History = dict[str, tuple[float, dict[str, int]]]  # server -> (last probe, {kind: probes of it})


def round_size(round_every: float, min_gap: float) -> int:
    """The most probes a round holds: no more than one per `min_gap` on average, at least one."""
    return max(1, int(round_every // min_gap))


class ProbeScheduler:
    def __init__(self, kinds: list[str], *, server_interval: float, min_gap: float, round_every: float,
                 first_delay: float, start: float, max_live: int):
        self.kinds = list(kinds)
        self.server_interval, self.max_live = server_interval, max_live
        self.round_gap = max(round_every, min_gap)
        self.round_size = round_size(round_every, min_gap)
        self.next_allowed = start + first_delay

    def choose(self, servers: list[str], history: History, now: float, live: int) -> list[tuple[str, str]]:
        """The round to send now: [(server, kind)], empty when none is due. `live`: probe addresses held."""
        room = min(self.round_size, self.max_live - live)
        if now < self.next_allowed or room <= 0:
            return []
        due = [server for server in servers
               if server not in history or now - history[server][0] >= self.server_interval]
        due.sort(key=lambda s: (history.get(s, (0.0, {}))[0], s))
        return [(server, self._kind(history.get(server, (0.0, {}))[1])) for server in due[:room]]

    def _kind(self, used: dict[str, int]) -> str:
        return min(self.kinds, key=lambda k: (used.get(k, 0), self.kinds.index(k)))

    def sent(self, now: float) -> None:
        """A round left at `now`: the next one waits its turn."""
        self.next_allowed = now + self.round_gap

    def next_due(self, servers: list[str], history: History) -> list[tuple[float, str]]:
        """Planned probes: (earliest time, server) for each server, soonest first (for the page); a
        round takes the servers due by its time, up to its size, the rest wait for the next."""
        dues = sorted((self.server_interval + history[server][0] if server in history else 0.0, server)
                      for server in servers)
        plans, at, taken = [], self.next_allowed, 0
        for due, server in dues:
            if taken and (taken == self.round_size or due > at):  # this round is full, or left before it
                at, taken = max(due, at + self.round_gap), 0
            elif due > at:
                at = due
            plans.append((at, server))
            taken += 1
        return plans
