"""Send one probe: exactly one UDP packet from one probe address to one server.

The socket is bound to the probe address before anything is sent, so the kernel cannot choose
another source; it is connected to the server, so only that server's answer is read. Nothing
is retried: a second packet would be a second contact, and the point of a probe is that it is
the only one. Network failures come back in `ProbeResult.error`, never as exceptions, because
the prober records every attempt in the ledger, failed or not.
"""
from __future__ import annotations

import errno
import ipaddress
import socket
import time
from dataclasses import dataclass

from .ntp import BadReply, NtpReply, client_request, parse_reply

PROBE_KINDS = ("ntp", "udp123", "udp321")
PROBE_PORTS = {"ntp": 123, "udp123": 123, "udp321": 321}  # udp321: the seed found port 321 harvested too
MAX_DATAGRAM = 2048

ERROR_TEXT = {
    errno.EADDRNOTAVAIL: "the probe address is not on this host (expired or removed)",
    errno.ENETUNREACH: "no route to the server",
    errno.EHOSTUNREACH: "the server is unreachable",
    errno.ECONNREFUSED: "the server refused: ICMP port unreachable",
    errno.EACCES: "sending was refused (firewall)",
    errno.EPERM: "sending was refused (firewall)",
}


@dataclass(frozen=True)
class ProbeResult:
    kind: str
    source: str
    server: str
    port: int
    sent_at: float | None   # Unix time the packet left; None if it never did
    sport: int | None       # our UDP source port
    reply: NtpReply | None  # "ntp" probes that were answered
    error: str | None       # why nothing was sent, or why no usable answer came back


def send_probe(source: str, server: str, kind: str, *, timeout: float = 2.0) -> ProbeResult:
    """Send the probe `kind` from `source` to `server`; for "ntp", wait up to `timeout` for the answer."""
    if kind not in PROBE_KINDS:
        raise ValueError(f"unknown probe kind {kind!r}; expected one of {', '.join(PROBE_KINDS)}")
    port = PROBE_PORTS[kind]
    source, server = ipaddress.IPv6Address(source).compressed, ipaddress.IPv6Address(server).compressed
    result = dict(kind=kind, source=source, server=server, port=port, sent_at=None, sport=None, reply=None, error=None)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((source, 0))
            result["sport"] = sock.getsockname()[1]
            sock.connect((server, port))
            if kind == "ntp":
                packet, transmit_field = client_request()
            else:
                packet, transmit_field = b"", b""
            sent_at = time.time()
            sock.send(packet)
            result["sent_at"] = sent_at
        except OSError as exc:
            return ProbeResult(**{**result, "error": _describe(exc)})
        if kind == "ntp":
            result["reply"], result["error"] = _await_reply(sock, transmit_field, sent_at, timeout)
    return ProbeResult(**result)


def _await_reply(sock: socket.socket, transmit_field: bytes, t1: float,
                 timeout: float) -> tuple[NtpReply | None, str | None]:
    deadline = time.monotonic() + timeout
    last_problem = None
    while True:  # ends at the deadline; each pass reads one datagram or times out
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data = sock.recv(MAX_DATAGRAM)
        except socket.timeout:
            break
        except OSError as exc:
            return None, _describe(exc)
        t4 = time.time()
        try:
            return parse_reply(data, transmit_field, t1, t4), None
        except BadReply as exc:
            # Keep listening: a stray or stale datagram must not hide the real answer.
            last_problem = f"bad reply: {exc.reason}"
            if exc.reason.startswith("kiss-o'-death"):
                return None, exc.reason
    return None, last_problem or f"no reply within {timeout:g} s"


def _describe(exc: OSError) -> str:
    text = ERROR_TEXT.get(exc.errno)
    name = errno.errorcode.get(exc.errno, "") if exc.errno else ""
    if text:
        return f"{text} ({name})"
    return f"{exc.strerror or exc} ({name})" if name else str(exc) or type(exc).__name__
