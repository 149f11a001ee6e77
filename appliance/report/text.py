"""The human report, in the spirit of the seed's Detective script."""
from __future__ import annotations

from typing import TextIO

from ..words import Attribution, ScanKind
from .evidence import (
    ports_list,
    scan_documents,
    scan_head,
    scan_tail,
    scanner_families,
    suspect_document,
    touch_documents,
)
from .human import plural


def write_text(out: TextIO, store, lookback: float, touches: dict | None = None) -> None:
    """The report of the scans selected in `store` (Store.select_scans), and of the `touches` the
    same run found (probe addresses of the store's ledger reached from outside)."""
    portscans = sweeps = 0
    for row, candidates in scan_documents(store):
        # A scan's ports are not listed, only a sweep's first few: decoded for sweeps alone.
        doc = {**scan_head(row), **scan_tail(row, candidates)}
        protocols = ", ".join(f"{proto} {count}" for proto, count in sorted(doc["protocols"].items()))
        if doc["kind"] == ScanKind.SWEEP:
            sweeps += 1
            ports = ", ".join(f"{p['port']}/{p['proto']}" if p["port"] is not None else p["proto"]
                              for p in ports_list(row)[:8])
            out.write(f"SWEEP DETECTED: startTime={doc['start']} numHosts={len(doc['targets'])} "
                      f"ports={ports} packets={doc['packets']} SRC={doc['scanner']} "
                      f"durationSeconds={doc['duration']:.1f}\n\n")
            continue
        portscans += 1
        out.write(f"SCAN DETECTED: startTime={doc['start']} numPortsScanned={doc['port_count']} ({protocols}) "
                  f"packets={doc['packets']} SRC={doc['scanner']} DST={doc['target']} "
                  f"durationSeconds={doc['duration']:.1f} family={doc['scanner_net']}\n")
        if not doc["candidates"]:
            out.write(f"Unattributed: no packet was sent from {doc['target']} in the {lookback:g} s "
                      "before the scan.\n\n")
            continue
        if doc["attribution"] == Attribution.CERTAIN:
            out.write("Certain: the scanned address contacted only this endpoint before the scan...\n")
        else:
            out.write("One or more of these packets may have triggered the scan...\n")
        for c in doc["candidates"]:
            source = f"[{c['src']}]:{c['sport']}" if c["sport"] is not None else c["src"]
            dest = f"[{c['dst']}]" if ":" in c["dst"] else c["dst"]
            dest += f":{c['dport']}" if c["dport"] is not None else ""
            out.write(f" #{c['rank']} lag={c['lag']:.1f}s @{c['time']}  {source} -> {dest} {c['proto']}\n")
        out.write("\n")

    endpoints = [suspect_document(row) for row in store.selected_suspects()]
    out.write(f"TRIGGER ENDPOINTS: remote endpoints contacted from scanned addresses before their scans, most "
              f"likely trigger first ({len(endpoints)})\n")
    if endpoints:
        width = max(len(s["endpoint"]) for s in endpoints)
        out.write(f"  {'endpoint':<{width}}  scans  certain   score  contacted-by  hit-rate  min-lag  median-lag\n")
        for s in endpoints:
            out.write(f"  {s['endpoint']:<{width}}  {s['scans']:5d}  {s['certain']:7d}  {s['score']:6.2f}  "
                      f"{s['exposures']:12d}  {s['hit_rate']:7.0%}  {s['min_lag']:6.1f}s  {s['median_lag']:9.1f}s\n")
    found = touch_documents(store, touches or {})
    if found:
        out.write(f"\nTOUCHES OF PROBE ADDRESSES ({len(found)}): each is certain, the probed server passed the "
                  "address on\n")
        for t in found:
            port = "" if t["port"] is None else f" {t['port']}"
            out.write(f"  {t['first']}  lag {t['lag']:.1f}s  {t['src']} -> {t['probe_address']} {t['proto']}{port}"
                      f"  ({plural(t['packets'], 'packet')})  probe {t['probe_id']} to {t['server']}\n")
    families = scanner_families(store)
    out.write(f"\nSCANNER FAMILIES ({len(families)})\n")
    for f in families:
        out.write(f"  {f['net']:<24}  addresses {f['addresses']:4d}  scans {f['scans']:5d}  "
                  f"sweeps {f['sweeps']:3d}  {f['first']} .. {f['last']}\n")
    out.write(f"\n{plural(portscans, 'scan')}, {plural(sweeps, 'sweep')}.\n")

