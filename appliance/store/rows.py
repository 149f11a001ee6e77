"""A scan's stored texts (scanner family, ports, protocols), written exactly as `network_of` and
`json.dumps` write them, only faster: storing a scan used to cost more in this encoding than in
SQLite. Scanners use fresh addresses and varied port lists, so whole texts rarely repeat; their
parts (a /64, one port) do."""
from __future__ import annotations

import json
import socket
from collections import Counter
from operator import itemgetter

from ..detect.scans import Scan, network_of

# Entries in each cache before it starts afresh: memory stays bounded in the daemon.
CACHE_LIMIT = 4096
_port_texts: dict[tuple, str] = {}


def scanner_family(address: str) -> str:
    """`network_of(address)` (the /64 or /24 around it): the C socket functions parse and print
    an IPv6 address as ipaddress does (lower-case hextets, the first longest run of zero hextets
    as '::'), at a tenth of the cost."""
    try:
        if ":" in address:
            packed = socket.inet_pton(socket.AF_INET6, address)
            return socket.inet_ntop(socket.AF_INET6, packed[:8] + bytes(8)) + "/64"
        packed = socket.inet_pton(socket.AF_INET, address)
        return socket.inet_ntop(socket.AF_INET, packed[:3] + b"\0") + "/24"
    except (OSError, ValueError):  # a form the C parser refuses (a scope id, ...): ipaddress decides
        return network_of(address)


def ports_text(ports: list) -> str:
    """`json.dumps(ports)`, a [proto, port] pair at a time, each pair encoded once."""
    try:
        try:
            parts = list(map(_port_texts.__getitem__, ports))
        except KeyError:
            parts = [_port_text(port) for port in ports]
    except TypeError:  # unhashable pairs (lists): encode them as they are
        return json.dumps(ports)
    return "[" + ", ".join(parts) + "]"


def _port_text(port: tuple) -> str:
    text = _port_texts.get(port)
    if text is None:
        if len(_port_texts) >= CACHE_LIMIT:
            _port_texts.clear()
        text = _port_texts[port] = json.dumps(port)
    return text


def protocols_text(ports: list) -> str:
    """`json.dumps(Scan.protocols)`: distinct ports per protocol, in order of first appearance."""
    return json.dumps(Counter(map(itemgetter(0), ports)))


def targets_text(scan: Scan) -> str:
    return json.dumps(scan.targets) if scan.targets else "[]"
