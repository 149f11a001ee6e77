"""The NTPv4 client request a probe sends, and the checks and arithmetic on the server's reply.

The request carries no information about this host: every field is zero except the first byte
and a random transmit timestamp (as chrony does, in the spirit of RFC 9109), so the server
learns neither our clock nor anything to link two probes by. The random field doubles as the
nonce the reply must echo in its origin timestamp.
"""
from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

PACKET_LENGTH = 48
NTP_VERSION = 4
MODE_CLIENT, MODE_SERVER = 3, 4
LEAP_UNSYNCHRONISED = 3
NTP_TO_UNIX = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01
ERA = 2 ** 32                # NTP seconds wrap every 136 years (next in 2036)

# Byte offsets of the timestamps in the 48-byte header (RFC 5905 figure 8).
ORIGIN, RECEIVE, TRANSMIT = slice(24, 32), slice(32, 40), slice(40, 48)


class BadReply(ValueError):
    """A datagram that is not a usable answer to our request; `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NtpReply:
    stratum: int
    offset: float   # seconds the server's clock is ahead of ours
    delay: float    # round trip minus the server's processing time, seconds
    refid: str
    leap: int       # 0-2 leap second warning, 3 = server not synchronised


def client_request() -> tuple[bytes, bytes]:
    """A mode-3 request with a random transmit timestamp; (packet, that timestamp field)."""
    transmit = secrets.token_bytes(8)
    while transmit == bytes(8):  # zero means "no timestamp" to a server; practically never drawn
        transmit = secrets.token_bytes(8)
    first = (0 << 6) | (NTP_VERSION << 3) | MODE_CLIENT
    return bytes([first]) + bytes(39) + transmit, transmit


def parse_reply(data: bytes, transmit_field: bytes, t1: float, t4: float) -> NtpReply:
    """Check a server reply to our request and compute offset and delay.

    t1 is our (Unix) time at sending, t4 at receiving; t2 and t3 are the server's receive and
    transmit times from the reply.
    """
    if len(data) < PACKET_LENGTH:
        raise BadReply(f"too short for NTP: {len(data)} bytes")
    leap, version, mode = data[0] >> 6, (data[0] >> 3) & 0b111, data[0] & 0b111
    if mode != MODE_SERVER:
        raise BadReply(f"not a server reply: mode {mode}")
    if not 1 <= version <= NTP_VERSION:
        raise BadReply(f"unknown NTP version {version}")
    if data[ORIGIN] != transmit_field:
        raise BadReply("origin timestamp does not echo our request (stale or forged reply)")
    stratum = data[1]
    refid_bytes = data[12:16]
    if stratum == 0:
        # Kiss-o'-death: the refid is an ASCII code such as RATE or DENY.
        raise BadReply(f"kiss-o'-death {_ascii(refid_bytes) or '(no code)'}")
    if data[TRANSMIT] == bytes(8):
        raise BadReply("transmit timestamp is zero")
    if data[RECEIVE] == bytes(8):
        raise BadReply("receive timestamp is zero")
    t2 = ntp_to_unix(data[RECEIVE], near=t1)
    t3 = ntp_to_unix(data[TRANSMIT], near=t1)
    return NtpReply(stratum=stratum, offset=((t2 - t1) + (t3 - t4)) / 2, delay=(t4 - t1) - (t3 - t2),
                    refid=refid_text(stratum, refid_bytes), leap=leap)


def ntp_to_unix(field: bytes, *, near: float) -> float:
    """An NTP timestamp as Unix time, in whichever 136-year era lies closest to `near`."""
    seconds, fraction = struct.unpack("!II", field)
    value = seconds - NTP_TO_UNIX + fraction / ERA
    return value + round((near - value) / ERA) * ERA


def refid_text(stratum: int, refid: bytes) -> str:
    """Stratum 1: the reference's ASCII name (GPS, PPS); higher: the upstream as a dotted quad
    (for an IPv6 upstream it is the first 4 bytes of a hash, shown the same way, as ntpq does)."""
    if stratum <= 1:
        return _ascii(refid)
    return ".".join(str(b) for b in refid)


def _ascii(raw: bytes) -> str:
    # Untrusted bytes that end up on the status page: printable ASCII only.
    return "".join(chr(b) for b in raw if 0x20 < b < 0x7F)
