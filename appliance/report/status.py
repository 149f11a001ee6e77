"""`harvestwatch status`: the daemon's state and the verdict per NTP server, as text or JSON."""
from __future__ import annotations

import json
import time

from ..words import LABELS, Verdict
from .evidence import iso
from .human import duration_text, plural

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
        "servers": store.server_verdicts(now),
        "gaps": [dict(row) for row in store.gaps()],
        "probes": len(store.probes()),
        "now": now,
    }


def verdict_text(server: dict, now: float) -> str:
    """What a server's verdict rests on, in one phrase."""
    verdict, probes = server["verdict"], server["probes"]
    count = plural(probes, "probe")
    if verdict == Verdict.HARVESTER:
        packets = plural(server['touches'], "packet")
        return (f"a probe address was touched {server['min_lag']:.1f} s after its probe ({count}, "
                f"{server['touched_probes']} touched, {packets})")
    if verdict == Verdict.SUSPECT:
        return (f"preceded {plural(server['candidate_scans'], 'scan')} of ordinary addresses, not yet cleared "
                f"({count})")
    if verdict == Verdict.WATCHING:
        return f"watching its probe address, {duration_text(server['watch_ends'] - now)} left ({count})"
    if verdict == Verdict.CLEAN:
        return f"a whole window with no touch, open to {', '.join(server['clean_open_to'])} ({count})"
    if verdict == Verdict.UNVERIFIED:
        return f"{server['unverified_why']} ({count})"
    return "not probed yet"


def write_status(out, store, *, as_json: bool = False) -> None:
    document = status_document(store)
    if as_json:
        json.dump(document, out, indent=1, sort_keys=True, default=str)
        out.write("\n")
        return
    daemon, status, now = document["daemon"], document["status"], document["now"]
    out.write(f"daemon: {'running' if daemon['alive'] else 'not running'}"
              f"{', last heartbeat ' + iso(daemon['heartbeat']) if daemon['heartbeat'] else ''}\n")
    if daemon["heartbeat"] and not daemon["alive"]:
        out.write("  (the daemon is not running: what follows is as it last wrote it, not the state now; "
                  "the firewall and the privacy settings may have changed since)\n")
    clock = status.get("clock")
    if clock is not None:
        out.write(f"clock: {clock['detail']}\n" if clock.get("synchronised") else
                  f"clock: WAITING to be synchronised ({clock['detail']}): nothing is probed or recorded until then\n")
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
        reach = prober.get("reachability")
        if reach:
            state = reach["state"].upper() if reach["state"] in ("unreachable", "closed", "partly",
                                                                 "pinholes lost") else reach["state"]
            out.write(f"reachability: {state}: {reach['detail']}\n")
            if reach.get("advice"):
                out.write("  No server can be called clean while scans cannot reach this appliance. What you can do:\n")
                for advice in reach["advice"]:
                    out.write(f"  - {advice}\n")
    if "inbound_24h" in status:
        seen = status["inbound_24h"]
        out.write("unsolicited packets from the internet, last 24 h: "
                  + (", ".join(f"{proto} {n}" for proto, n in sorted(seen.items())) if seen else "none seen") + "\n")
    updates = status.get("updates")
    if updates:
        if not updates.get("installed"):
            out.write("security updates: unattended-upgrades is not installed\n")
        else:
            last = f"last run {iso(updates['last_run'])}" if updates.get("last_run") else "not run yet"
            out.write(f"security updates: {'on' if updates.get('enabled') else 'OFF'}, {last}")
            if updates.get("reboot_required"):
                waiting = ", ".join(updates.get("reboot_packages") or [])
                out.write(f"; a reboot is waiting{f' ({waiting})' if waiting else ''}: "
                          + (f"at {updates['reboot_time']}" if updates.get("auto_reboot") else "sudo reboot"))
            out.write("\n")
    kept = status.get("store")
    if kept:
        if kept.get("disk_full_since"):
            out.write(f"store: DISK FULL since {iso(kept['disk_full_since'])}: new records are held in memory "
                      "and written as room allows; free space on the disk to end it\n")
        oldest = iso(kept["oldest"]) if kept.get("oldest") else "none"
        out.write(f"store: {kept['used_bytes'] / 1e6:.1f} MB in use (cap {kept['max_bytes'] / 1e6:.0f} MB), oldest "
                  f"record {oldest}; ordinary records kept {kept['keep_days']:g} days, evidence always\n")
    out.write(f"probes sent: {document['probes']}\n\nSERVERS\n")
    for server in document["servers"]:
        out.write(f"  {VERDICT_WORDS[server['verdict']]:<20} {server['server']:<40} {verdict_text(server, now)}"
                  f"  [{', '.join(server['pools'])}]\n")
    if document["gaps"]:
        out.write("\nGAPS (time not fully captured)\n")
        for gap in document["gaps"]:
            lost = "" if gap["lost"] is None else f", {gap['lost']} packets"
            out.write(f"  {iso(gap['start'])} .. {iso(gap['end'])}  {gap['reason']}{lost}\n")
