"""`harvestwatch status`: the daemon's state and the verdict per NTP server, as text or JSON."""
from __future__ import annotations

import json
import time

from ..words import LABELS, Verdict
from .evidence import iso

HEARTBEAT_STALE = 60.0   # the daemon writes one every few seconds; a minute without one means it is not running
# How the status command writes each verdict: the one a user must not miss stands out.
VERDICT_WORDS = {verdict: label.upper() if verdict == Verdict.HARVESTER else label for verdict, label in LABELS.items()}


def daemon_state(status: dict, now: float) -> dict:
    """Whether a daemon has written to the store, and whether it is running now (its heartbeat)."""
    heartbeat = status.get("heartbeat")
    return {"seen": heartbeat is not None,
            "alive": heartbeat is not None and now - heartbeat < HEARTBEAT_STALE and not status.get("clean_stop"),
            "heartbeat": heartbeat, "started": status.get("started"), "clean_stop": bool(status.get("clean_stop"))}


def status_document(store, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    status = store.status()
    return {
        "daemon": daemon_state(status, now),
        "status": status,
        "servers": store.server_verdicts(),
        "gaps": [dict(row) for row in store.gaps()],
        "probes": len(store.probes()),
    }


def write_status(out, store, *, as_json: bool = False) -> None:
    document = status_document(store)
    if as_json:
        json.dump(document, out, indent=1, sort_keys=True, default=str)
        out.write("\n")
        return
    daemon, status = document["daemon"], document["status"]
    out.write(f"daemon: {'running' if daemon['alive'] else 'not running'}"
              f"{', last heartbeat ' + iso(daemon['heartbeat']) if daemon['heartbeat'] else ''}\n")
    for name in ("firewall", "privacy"):
        part = status.get(name)
        if part is not None:
            problems = "; ".join(part.get("problems", []))
            out.write(f"{name}: {'in force' if part.get('in_force') else 'NOT in force: ' + problems}\n")
    prober = status.get("prober") or {}
    if prober:
        line = f"prober: {prober.get('state')}"
        if prober.get("reason"):
            line += f" ({prober['reason']})"
        if prober.get("prefix"):
            line += f", prefix {prober['prefix']}, {prober.get('live_addresses', 0)} live probe addresses"
        out.write(line + "\n")
    out.write(f"probes sent: {document['probes']}\n\nSERVERS\n")
    for server in document["servers"]:
        lag = f", scanned {server['min_lag']:.1f} s after a probe" if server["min_lag"] is not None else ""
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(server["probes_by_kind"].items()))
        out.write(f"  {VERDICT_WORDS[server['verdict']]:<20} {server['server']:<40} probes {server['probes']}"
                  f"{' (' + kinds + ')' if kinds else ''}, scans after probes {server['probe_scans']}{lag}"
                  f"  [{', '.join(server['pools'])}]\n")
    if document["gaps"]:
        out.write("\nGAPS (time not fully captured)\n")
        for gap in document["gaps"]:
            lost = "" if gap["lost"] is None else f", {gap['lost']} packets"
            out.write(f"  {iso(gap['start'])} .. {iso(gap['end'])}  {gap['reason']}{lost}\n")
