"""Store rows -> plain documents (dicts of JSON types): one shape for the JSON output, the text
report and, later, the status page's API."""
from __future__ import annotations

import json
import math
import time
from functools import lru_cache
from typing import Iterator

from ..detect.scans import network_of
from ..store.db import NO_PORT, Store
from ..words import ScanKind

SCHEMA_VERSION = 2  # 2: "suspects" became "trigger_endpoints" (one word for a server verdict only)
# Scans whose candidates the reports fetch in one query: few queries, and memory stays flat.
SCAN_CHUNK = 500


def iso(ts: float) -> str:
    """UTC, millisecond precision, like the seed's Detective output."""
    minute, second = divmod(math.floor(ts), 60)  # gmtime rounds down too; POSIX minutes have 60 s
    return _minute_text(minute) + f"{second:02d}.{int(round(ts % 1 * 1000)) % 1000:03d}Z"


@lru_cache(maxsize=4096)
def _minute_text(minute: int) -> str:
    # A scan and its candidates fall within a few minutes: each minute is formatted once.
    return time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(minute * 60))


def endpoint_text(proto: str, dst: str, dport: int | None) -> str:
    host = f"[{dst}]" if ":" in dst else dst
    return f"{host}:{dport}/{proto}" if dport is not None and dport != NO_PORT else f"{host}/{proto}"


def scan_document(store: Store, row) -> dict:
    """One scan's whole document (the reports build theirs from scan_documents, many at a time)."""
    candidates = [] if row["kind"] == ScanKind.SWEEP else store.candidates_of_scans([row["id"]]).get(row["id"], [])
    return {**scan_head(row), "ports": ports_list(row), **scan_tail(row, candidates)}


def scan_head(row) -> dict:
    """A scan document's fields before its ports."""
    return {
        "id": row["id"], "kind": row["kind"], "scanner": row["scanner"], "scanner_net": row["scanner_net"],
        "target": row["target"], "start": iso(row["start"]), "start_epoch": row["start"],
        "end": iso(row["end"]), "duration": round(row["end"] - row["start"], 6),
        "port_count": row["port_count"], "packets": row["packets"],
        "protocols": json.loads(row["protocols"]),
    }


def ports_list(row) -> list[dict]:
    return [{"proto": proto, "port": port} for proto, port in json.loads(row["ports"])]


def scan_tail(row, candidates: list) -> dict:
    """A scan document's fields after its ports: a sweep's targets, or a scan's attribution and candidates."""
    if row["kind"] == ScanKind.SWEEP:
        return {"targets": json.loads(row["targets"])}
    return {"attribution": row["attribution"], "candidates": [{
        "rank": rank, "time": iso(ts), "epoch": ts, "lag": round(lag, 6),
        "src": src, "sport": sport, "dst": dst, "dport": dport, "proto": proto,
    } for _, rank, ts, lag, src, sport, dst, dport, proto in candidates]}


def scan_documents(store: Store, kind: str | None = None) -> Iterator[tuple]:
    """(row, candidates) for each scan selected in `store` (Store.select_scans), of one `kind` or
    all, by start: SCAN_CHUNK rows at a time, their candidates fetched in one query."""
    for chunk in store.scan_chunks(kind, SCAN_CHUNK):
        candidates = store.candidates_of_scans([row["id"] for row in chunk if row["kind"] != ScanKind.SWEEP])
        for row in chunk:
            yield row, candidates.get(row["id"], [])


def scan_json(row, candidates: list) -> str:
    """`json.dumps(scan_document(store, row))`, with the ports (a hundred per scan: most of the
    document) encoded a pair at a time from the stored text."""
    return (json.dumps(scan_head(row))[:-1] + ', "ports": ' + ports_json(row) + ", "
            + json.dumps(scan_tail(row, candidates))[1:])


# '"TCP", 21' (one stored pair) -> '{"proto": "TCP", "port": 21}'
_port_docs: dict[str, str] = {}


def ports_json(row) -> str:
    """`json.dumps(ports_list(row))`. The store writes ports as json.dumps does ([["TCP", 21],
    ["UDP", 53]]), so the text splits into its pairs; a split that does not give port_count
    pairs (a protocol name holding '], [') falls back to decoding the whole."""
    text = row["ports"]
    if text == "[]":
        return text
    pieces = text[2:-2].split("], [")
    if len(pieces) != row["port_count"] or not text.startswith("[[") or not text.endswith("]]"):
        return json.dumps(ports_list(row))
    try:
        parts = list(map(_port_docs.__getitem__, pieces))
    except KeyError:
        try:
            parts = [_port_doc(piece) for piece in pieces]
        except ValueError:
            return json.dumps(ports_list(row))
    return "[" + ", ".join(parts) + "]"


def _port_doc(piece: str) -> str:
    doc = _port_docs.get(piece)
    if doc is None:
        proto, port = json.loads("[" + piece + "]")
        if len(_port_docs) >= 4096:
            _port_docs.clear()
        doc = _port_docs[piece] = json.dumps({"proto": proto, "port": port})
    return doc


def suspect_document(row) -> dict:
    dport = None if row["dport"] == NO_PORT else row["dport"]
    return {
        "endpoint": endpoint_text(row["proto"], row["dst"], dport),
        "dst": row["dst"], "dport": dport, "proto": row["proto"],
        "scans": row["scans"], "certain": row["certain"], "score": round(row["score"], 4),
        "exposures": row["exposures"], "hit_rate": round(row["scans"] / max(row["exposures"], 1), 4),
        "min_lag": round(row["min_lag"], 3),
        "median_lag": round(row["median_lag"], 3), "first": iso(row["first_ts"]), "last": iso(row["last_ts"]),
    }


def scanner_families(store: Store) -> list[dict]:
    """The scanner families of the selected scans, most scans first; `addresses` counts their
    scanners (`family_json` lists them)."""
    return [{"net": net, "addresses": addresses, "scans": scans, "sweeps": sweeps, "first": iso(first),
             "last": iso(last)} for net, addresses, scans, sweeps, first, last in store.scanner_families()]


def family_json(store: Store, family: dict) -> Iterator[str]:
    """`json.dumps` of a family document ({"net", "scanners": [sorted addresses], "scans", ...}),
    in pieces: a family's addresses (thousands) are read from the store as written, not held."""
    yield '{"net": ' + json.dumps(family["net"]) + ', "scanners": ['
    for n, scanner in enumerate(store.family_scanners(family["net"])):
        yield (", " if n else "") + json.dumps(scanner)
    yield "], " + json.dumps({key: family[key] for key in ("scans", "sweeps", "first", "last")})[1:]


def touch_documents(store: Store, touches: dict) -> list[dict]:
    """Touches as an import found them ({(probe id, src, proto, dport): [first, last, packets]}),
    oldest first, each with its probe (address, server) and the lag from the probe."""
    probes = {}
    documents = []
    for (probe_id, src, proto, dport), (first, last, packets) in sorted(touches.items(), key=lambda kv: kv[1][0]):
        probe = probes.get(probe_id) or probes.setdefault(probe_id, store.probe(probe_id))
        documents.append({
            "probe_id": probe_id, "probe_address": probe["address"], "server": probe["server"],
            "probe_time": iso(probe["sent_at"]), "src": src, "family": network_of(src, store.family_prefix),
            "proto": proto, "port": dport, "first": iso(first), "last": iso(last), "packets": packets,
            "lag": round(first - probe["sent_at"], 3)})
    return documents
