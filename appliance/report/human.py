"""Numbers, ports and times as a person reads them: "1 scan", "TCP 1–100, UDP 53", "2026-12-02 14:03 UTC".

The page, the CLI's text and the notifications say things the same way because they all come here.
"""
from __future__ import annotations

from typing import Iterable

# The order protocols are named in: the common ones first, the rest by name.
PROTOCOL_ORDER = {"TCP": 0, "UDP": 1, "ICMPV6": 2, "ICMP": 3}
IRREGULAR = {"is": "are", "was": "were", "has": "have", "reply": "replies"}


def plural(count: int, word: str, many: str | None = None) -> str:
    """ "1 scan", "2 scans", "0 families": the count and the word in the right number."""
    if count == 1:
        return f"{count} {word}"
    if many is None:
        head, _, last = word.rpartition(" ")
        many = (head + " " if head else "") + _plural_of(last)
    return f"{count:,} {many}" if count >= 10_000 else f"{count} {many}"


def _plural_of(word: str) -> str:
    if word in IRREGULAR:
        return IRREGULAR[word]
    if word.endswith(("s", "x", "sh", "ch")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def port_ranges(ports: Iterable) -> str:
    """ "TCP 1–100, 443, UDP 53": ports grouped by protocol, runs of consecutive ports as ranges.
    Takes (proto, port) pairs or {"proto", "port"} documents; ports that are None (ICMP) are left out."""
    by_proto: dict[str, set[int]] = {}
    for item in ports:
        proto, port = (item["proto"], item["port"]) if isinstance(item, dict) else item
        numbers = by_proto.setdefault(str(proto).upper(), set())
        if port is not None and port >= 0:
            numbers.add(int(port))
    parts = []
    for proto in sorted(by_proto, key=lambda p: (PROTOCOL_ORDER.get(p, 9), p)):
        runs = _runs(sorted(by_proto[proto]))
        parts.append(f"{proto} {', '.join(runs)}" if runs else proto)
    return ", ".join(parts)


def _runs(numbers: list[int]) -> list[str]:
    runs: list[str] = []
    start = previous = None
    for n in numbers + [None]:
        if start is not None and (n is None or n != previous + 1):
            runs.append(str(start) if start == previous else
                        f"{start}, {previous}" if previous == start + 1 else f"{start}–{previous}")
            start = None
        if n is not None and start is None:
            start = n
        previous = n
    return runs


def duration_text(seconds: float) -> str:
    """A span a person reads at a glance: "3 d 22 h", "41 min", "50 s"."""
    seconds = max(0.0, seconds)
    if seconds >= 86400:
        return f"{int(seconds // 86400)} d {int(seconds % 86400 // 3600)} h"
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min"
    return f"{int(seconds)} s"


def lag_text(seconds: float | None) -> str:
    """How long after (or before) something: "5.1 s" to the tenth under a minute, "3 h 0 min" beyond."""
    if seconds is None:
        return "—"
    return f"{seconds:.1f} s" if abs(seconds) < 60 else duration_text(abs(seconds))


def utc_text(iso_time: str | None) -> str:
    """ "2026-12-02 14:03 UTC" from the documents' "2026-12-02T14:03:05.123Z" (to the minute)."""
    if not iso_time:
        return "—"
    return f"{iso_time[:10]} {iso_time[11:16]} UTC"
