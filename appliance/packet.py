"""The one record every capture produces: a packet the firewall logged.

Two producers make it (the LOG-line parser for files, the NFLOG reader for the live daemon) and
every later stage (detect, attribute, store) consumes it; it lives here, apart from both.
"""
from __future__ import annotations

from typing import NamedTuple

# Directions are compared by identity in the hot loops (`direction is INBOUND`): always use these.
INBOUND, OUTBOUND, FORWARDED = "in", "out", "fwd"


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
