"""Store rows -> plain documents (dicts of JSON types): one shape for the JSON output, the text
report and, later, the status page's API."""
from __future__ import annotations

import json
import time
from collections import defaultdict

from ..store.db import NO_PORT, Store

SCHEMA_VERSION = 1


def iso(ts: float) -> str:
    """UTC, millisecond precision, like the seed's Detective output."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(round(ts % 1 * 1000)) % 1000:03d}Z"


def endpoint_text(proto: str, dst: str, dport: int | None) -> str:
    host = f"[{dst}]" if ":" in dst else dst
    return f"{host}:{dport}/{proto}" if dport is not None and dport != NO_PORT else f"{host}/{proto}"


def scan_document(store: Store, row) -> dict:
    doc = {
        "id": row["id"], "kind": row["kind"], "scanner": row["scanner"], "scanner_net": row["scanner_net"],
        "target": row["target"], "start": iso(row["start"]), "start_epoch": row["start"],
        "end": iso(row["end"]), "duration": round(row["end"] - row["start"], 6),
        "port_count": row["port_count"], "packets": row["packets"],
        "protocols": json.loads(row["protocols"]),
        "ports": [{"proto": proto, "port": port} for proto, port in json.loads(row["ports"])],
    }
    if row["kind"] == "sweep":
        doc["targets"] = json.loads(row["targets"])
        return doc
    doc["attribution"] = row["attribution"]
    doc["candidates"] = [{
        "rank": c["rank"], "time": iso(c["ts"]), "epoch": c["ts"], "lag": round(c["lag"], 6),
        "src": c["src"], "sport": c["sport"], "dst": c["dst"], "dport": c["dport"], "proto": c["proto"],
    } for c in store.candidates_of(row["id"])]
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


def scanner_families(rows) -> list[dict]:
    families: dict[str, dict] = defaultdict(lambda: {"scanners": set(), "scans": 0, "sweeps": 0,
                                                     "first": float("inf"), "last": float("-inf")})
    for row in rows:
        family = families[row["scanner_net"]]
        family["scanners"].add(row["scanner"])
        family["scans" if row["kind"] == "portscan" else "sweeps"] += 1
        family["first"] = min(family["first"], row["start"])
        family["last"] = max(family["last"], row["end"])
    return [{"net": net, "scanners": sorted(f["scanners"]), "scans": f["scans"], "sweeps": f["sweeps"],
             "first": iso(f["first"]), "last": iso(f["last"])}
            for net, f in sorted(families.items(), key=lambda item: (-item[1]["scans"] - item[1]["sweeps"], item[0]))]
