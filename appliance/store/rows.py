"""A scan's stored JSON texts, written exactly as `json.dumps` writes them, only faster: storing a
scan used to cost more in this encoding than in SQLite. Scanners use varied port lists, so whole
texts rarely repeat; their parts (one port) do."""
from __future__ import annotations

import json

from ..detect.scans import Scan

# Entries in each cache before it starts afresh: memory stays bounded in the daemon.
CACHE_LIMIT = 4096
_port_texts: dict[tuple, str] = {}


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


def targets_text(scan: Scan) -> str:
    return json.dumps(scan.targets) if scan.targets else "[]"
