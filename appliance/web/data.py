"""What each page shows, as plain documents (dicts of JSON types): the HTML templates and the
`/api/...` routes render the same document, so every view is also data.

Read-only: a store filled by the daemon, or only by `harvestwatch analyze --db` (then there are
no probes and no daemon status, and the documents say so rather than fail).
"""
from __future__ import annotations

import copy
import ipaddress
import json
import os
import sqlite3
import statistics
import threading
import time

from ..report.evidence import iso, scan_document, suspect_document
from ..report.human import duration_text, utc_text
from ..report.status import daemon_state, verdict_text
from ..store import runtime
from ..store.db import NO_PORT, Store
from ..store.live import PINHOLE_SLACK
from ..words import Attribution, ScanKind, Verdict

PAGE_SIZE = 50
TIMELINE_HOURS = 48


class _Memo:
    """What depends only on the store's content (the verdict per server, the Overview's totals, the
    rendered Servers table), kept per process until the next commit to the store: on 100,000 scans
    they take a few hundred ms to compute, and the page is asked for far more often than the daemon
    commits (every few seconds).

    A long-lived read-only connection per store asks its data version, which changes whenever
    another connection (the daemon, `analyze`) committed since it last asked; the version is read
    before computing, so a kept result is never older than the last commit: exactly what computing
    it again would give. One thread computes a missing entry; the others wait for it."""

    MAX_STORES = 8

    def __init__(self):
        self.lock = threading.Lock()
        self.stores: dict[str, dict] = {}

    def get(self, store: Store, name: str, compute, still_good=None):
        slot, version = self._version(store)
        if version is None:
            return compute()

        def current(kept) -> bool:
            return kept is not None and kept[0] == version and (still_good is None or still_good(kept[1]))
        with slot["lock"]:
            if slot["version"] != version:  # something was committed: nothing kept is current
                slot["version"], slot["values"], slot["flights"] = version, {}, {}
            kept = slot["values"].get(name)
            if current(kept):
                return kept[1]
            flight = slot["flights"].setdefault(name, threading.Lock())
        with flight:
            with slot["lock"]:
                kept = slot["values"].get(name)
                if current(kept):
                    return kept[1]
            value = compute()
            with slot["lock"]:
                if slot["version"] == version:
                    slot["values"][name] = (version, value)
        return value

    def _version(self, store: Store):
        path = getattr(store, "path", None)
        try:
            st = os.stat(path)
        except (OSError, TypeError):
            return None, None
        identity = (os.getpid(), st.st_dev, st.st_ino)  # a new worker, or a new file at the same path
        with self.lock:
            slot = self.stores.get(path)
            if slot is None or slot["identity"] != identity:
                if slot is not None:
                    self._drop(path, identity[0])
                while len(self.stores) >= self.MAX_STORES:
                    self._drop(next(iter(self.stores)), identity[0])
                try:
                    watcher = Store(path, readonly=True, shared=True)
                except sqlite3.Error:
                    return None, None
                slot = self.stores[path] = {"identity": identity, "watcher": watcher, "lock": threading.Lock(),
                                            "version": None, "values": {}, "flights": {}}
            try:
                return slot, (identity, slot["watcher"].data_version())
            except sqlite3.Error:
                return None, None

    def _drop(self, path: str, pid: int) -> None:
        slot = self.stores.pop(path)
        if slot["identity"][0] == pid:  # a connection inherited from the parent process is left alone
            slot["watcher"].close()


_memo = _Memo()


def memoized(store: Store, name, compute, *, stamp=None, expires=None):
    """`compute()`, or its result kept from an earlier call on the same store content (see _Memo).
    What else it depends on says when it is stale: `stamp()` (a minute, the live status) must be the
    same as when it was computed, and the time before what `expires()` said then (the end of a
    probe's window). The result is shared; do not change it."""
    now_stamp = stamp() if stamp else None

    def make():
        return now_stamp, (expires() if expires else float("inf")), compute()
    return _memo.get(store, name, make, lambda kept: kept[0] == now_stamp and time.time() < kept[1])[2]


class _Lasting:
    """Results kept across commits for as long as a fingerprint of what they are made of stays the
    same: the Scanners page reads every scan (a third of a second on 100,000), while most commits
    (the daemon's heartbeat every few seconds) change none. The fingerprint is read once per commit."""

    MAX = 32

    def __init__(self):
        self.lock = threading.Lock()
        self.kept: dict[tuple, tuple] = {}

    def get(self, store: Store, name, fingerprint, compute):
        try:
            st = os.stat(store.path)
        except (OSError, TypeError, AttributeError):
            return compute()
        print_ = _memo.get(store, ("fingerprint", name), fingerprint)
        key = (os.getpid(), st.st_dev, st.st_ino, name)
        with self.lock:
            kept = self.kept.get(key)
        if kept is not None and kept[0] == print_:
            return kept[1]
        value = _memo.get(store, ("lasting", name), compute)  # one thread computes it, the others wait
        with self.lock:
            if len(self.kept) >= self.MAX and key not in self.kept:
                self.kept.pop(next(iter(self.kept)))
            self.kept[key] = (print_, value)
        return value


_lasting = _Lasting()


def lasting(store: Store, name, fingerprint, compute):
    """`compute()`, kept across commits that leave `fingerprint()` unchanged (see _Lasting)."""
    return _lasting.get(store, name, fingerprint, compute)


def live_stamp(store: Store):
    """When the daemon's live status (RAM, store/runtime.py) last changed: what the store's commits
    do not tell."""
    path = getattr(store, "path", None)
    return runtime.stamp(path) if path else None


def _verdicts(store: Store) -> list[dict]:
    """The verdict per server, shared by Overview and Servers; callers copy before changing an entry.
    Kept until the next commit or the next end of a probe's window, whichever comes first: a
    window's end changes a verdict with no commit."""
    return memoized(store, "verdicts", store.server_verdicts, expires=lambda: until_a_window_ends(store))


def until_a_window_ends(store: Store) -> float:
    """When the next probe's window ends (what changes verdicts with the clock alone); inf if none."""
    ends = store.next_window_end(time.time())
    return float("inf") if ends is None else ends


def overview(store: Store, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    # Everything but the clock comes from the store and the daemon's live status: read once per
    # commit and live status (see _Memo), copied out.
    status, stored = copy.deepcopy(memoized(store, "overview", lambda: _stored_overview(store),
                                            stamp=lambda: live_stamp(store),
                                            expires=lambda: until_a_window_ends(store)))
    daemon = daemon_state(status, now)
    document = {
        "generated": iso(now),
        "daemon": {**daemon, "heartbeat": _iso_or_none(daemon["heartbeat"]),
                   "started": _iso_or_none(daemon["started"])},
        **stored,
        "timeline": timeline(store, now),
    }
    document["health"] = health(document)
    return document


BAD_REACH = ("unreachable", "closed", "partly", "pinholes lost")


def health(doc: dict) -> dict:
    """The Overview's one health line: "all working", or what is wrong, most serious first, each
    with what to do. Claims "all working" only when a running daemon reported every part in force."""
    daemon = doc["daemon"]
    if not daemon["seen"]:
        return {"state": "no daemon", "summary": "No daemon has written to this store: nothing here is live.",
                "problems": [], "unknown": []}
    problems = []

    def problem(what: str, fix: str, anchor: str) -> None:
        problems.append({"what": what, "fix": fix, "anchor": anchor})

    if not daemon["alive"]:
        problem(f"The daemon is not running (last heard from {utc_text(daemon['heartbeat'])}); everything "
                "below is as it last wrote it.",
                "Start it: sudo systemctl start harvestwatch (sudo journalctl -u harvestwatch says why it "
                "stopped).", "daemon")
    clock = doc.get("daemon_clock")
    if clock is not None and not clock.get("synchronised"):
        problem(f"The clock is not synchronised ({clock.get('detail')}): nothing is probed or recorded until it is.",
                "Let the appliance reach NTP servers (UDP port 123 out to the internet) and wait a few minutes.",
                "clock")
    firewall = doc.get("firewall")
    if firewall is not None and not firewall.get("in_force"):
        problem("The firewall rules are not in force: scans are not being logged.",
                "Restart the daemon (sudo systemctl restart harvestwatch); sudo harvestwatch firewall verify "
                "names what is missing.", "firewall")
    privacy = doc.get("privacy")
    if privacy is not None and not privacy.get("in_force"):
        problem("IPv6 privacy addresses are not in force.",
                "Restart the daemon; if it persists, see the privacy line below for what the kernel refused.",
                "privacy")
    prober = doc.get("prober")
    if prober and prober.get("state") in ("paused", "failed"):
        problem(f"Probing is {prober['state']}: {prober.get('reason') or 'no reason given'}.",
                "The appliance needs a global IPv6 address from your router (SLAAC); check the cable and "
                "that IPv6 is on in the router.", "prober")
    reach = doc.get("reachability")
    if reach and reach.get("state") in BAD_REACH:
        problem(f"Scans may not reach this appliance ({reach['state']}: {reach['detail']}): no server can be "
                "called clean.", (reach.get("advice") or ["See the reachability line below."])[0], "reachability")
    updates = doc.get("updates")
    if updates and updates.get("installed") and not updates.get("enabled"):
        problem("Security updates are off: unattended-upgrades is installed but not switched on.",
                "Run the playbook with harvestwatch_security_updates: true (or sudo dpkg-reconfigure "
                "unattended-upgrades).", "updates")
    if updates and updates.get("reboot_required") and not updates.get("auto_reboot"):
        problem("A reboot is waiting for an update to take effect"
                + (f" ({', '.join(updates['reboot_packages'])})" if updates.get("reboot_packages") else "") + ".",
                "sudo reboot (or set harvestwatch_auto_reboot to let it happen at a quiet hour).", "updates")
    storage = doc.get("storage") or {}
    if storage.get("disk_full_since"):
        problem(f"The disk is full since {utc_text(storage['disk_full_since'])}: new records wait in memory.",
                "Free space on the card (or lower store.max_mb).", "store")
    if problems:
        summary = "Something is wrong:" if len(problems) == 1 else f"{len(problems)} things are wrong:"
        return {"state": "problems", "summary": summary, "problems": problems, "unknown": []}
    # "All working" only for what the daemon reported; what it has not yet is named, not assumed.
    unknown = [name for name, known in (
        ("the clock", clock is not None), ("the firewall", firewall is not None),
        ("the privacy addresses", privacy is not None),
        ("whether scans can reach this appliance", bool(reach) and reach.get("state") != "not asked yet"))
        if not known]
    if unknown:
        return {"state": "partly known", "summary": "Nothing is wrong that the daemon has seen, but it has not yet "
                f"reported {_and_list(unknown)}.", "problems": [], "unknown": unknown}
    return {"state": "all working", "summary": "All working: the daemon runs, the clock is synchronised, the "
            "firewall is in force and scans can reach this appliance.", "problems": [], "unknown": []}


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _firewall(firewall: dict | None) -> dict | None:
    """The daemon's firewall health, with the packets the flood limits dropped by reason and in all
    (a store from before the tiered limits has one count: the per-/64 limit's)."""
    if not firewall:
        return firewall
    dropped = firewall.get("flood_dropped") or {}
    if not isinstance(dropped, dict):
        dropped = {"flood-limit": dropped}
    return {**firewall, "flood_dropped": dropped, "flood_dropped_total": sum(dropped.values())}


def _updates(updates: dict | None) -> dict | None:
    """Security updates as the daemon last read them (None: it has not, or is older than that)."""
    if not updates:
        return None
    return {**updates, "last_run": _iso_or_none(updates.get("last_run"))}


def _storage(store: Store, kept: dict) -> dict:
    """The store's size, its oldest record and its retention, as the daemon last wrote them (the
    size and oldest record read here when no daemon did): what the page says about the disk."""
    oldest = kept.get("oldest") if "oldest" in kept else store.oldest_record()
    pruned = kept.get("pruned") or {}
    return {"file_mb": round(store.file_bytes() / 1e6, 1), "used_mb": round(store.used_bytes() / 1e6, 1),
            "oldest": _iso_or_none(oldest), "keep_days": kept.get("keep_days"),
            "max_mb": round(kept["max_bytes"] / 1e6) if kept.get("max_bytes") else None,
            "free_mb": round(kept["free_bytes"] / 1e6) if kept.get("free_bytes") is not None else None,
            "disk_full_since": _iso_or_none(kept.get("disk_full_since")),
            "pruned_at": _iso_or_none(pruned.get("at")), "pruned": pruned.get("deleted") or {}}


def _stored_overview(store: Store) -> tuple[dict, dict]:
    """The daemon's status and the Overview's parts that do not depend on the time."""
    status = store.status()
    verdicts = _verdicts(store)
    offsets = store.recent_ntp_offsets(20)
    prober = status.get("prober") or {}
    return status, {
        "firewall": _firewall(status.get("firewall")),
        "privacy": status.get("privacy"),
        "prober": {"state": prober.get("state"), "reason": prober.get("reason"), "prefix": prober.get("prefix"),
                   "live_addresses": prober.get("live_addresses"), "max_live": prober.get("max_live"),
                   "pool_errors": prober.get("pool_errors") or {}} if prober else None,
        # The median offset of the latest NTP probe replies: how far this clock is from the pools'.
        "clock": ({"offset_ms": round(statistics.median(offsets) * 1000, 1), "replies": len(offsets)}
                  if offsets else None),
        "last_record": _iso_or_none(status.get("last_record")),
        "capture": status.get("capture"),
        "skipped_lines": store.skipped_lines(),
        "gaps": {"total": store.count_gaps(), "latest": [_gap(row) for row in store.latest_gaps(10)]},
        "daemon_clock": status.get("clock"),
        "reachability": prober.get("reachability"),
        "inbound_24h": status.get("inbound_24h"),
        "storage": _storage(store, status.get("store") or {}),
        "updates": _updates(status.get("updates")),
        "numbers": {
            **store.scan_numbers(),
            "servers": len(verdicts),
            "harvesters": sum(v["verdict"] == Verdict.HARVESTER for v in verdicts),
            "suspects": sum(v["verdict"] == Verdict.SUSPECT for v in verdicts),
            "watching": sum(v["verdict"] == Verdict.WATCHING for v in verdicts),
            "clean": sum(v["verdict"] == Verdict.CLEAN for v in verdicts),
            "unverified": sum(v["verdict"] == Verdict.UNVERIFIED for v in verdicts),
        },
        "harvesters": _harvester_cards(store, verdicts),
        "watching_servers": [{"server": v["server"], "pools": list(v["pools"]), "probes": v["probes"],
                              "watch_ends": _iso_or_none(v["watch_ends"])}
                             for v in verdicts if v["verdict"] == Verdict.WATCHING][:WATCHING_SHOWN],
    }


HARVESTER_CARDS = 10   # the Overview's cards; the Servers page lists every harvester
WATCHING_SHOWN = 10


def _harvester_cards(store: Store, verdicts: list[dict]) -> list[dict]:
    """One card per confirmed harvester, the latest touched first: what it did and the evidence."""
    pools = {v["server"]: list(v["pools"]) for v in verdicts}
    probes = {v["server"]: v["probes"] for v in verdicts}
    return [{"server": r["server"], "pools": pools.get(r["server"], []), "probes": probes.get(r["server"], 0),
             "first_touch": iso(r["first_touch"]), "last_touch": iso(r["last_touch"]),
             "probes_touched": r["probes_touched"], "sources": r["sources"], "packets": r["packets"],
             "families": (r["families"] or "").split(), "scans": r["scans"], "min_lag": round(r["min_lag"], 1),
             "first_probe": r["first_probe"]} for r in store.harvester_summaries()[:HARVESTER_CARDS]]


def timeline(store: Store, now: float) -> dict:
    """Probes and scans per hour over the last 48 hours of data (ending now, or at the newest scan
    for a store that `analyze` filled from old logs)."""
    newest = _memo.get(store, "newest_scan", store.newest_scan_start)
    end = now if newest is None or newest > now - TIMELINE_HOURS * 3600 else newest
    end = (int(end) // 3600 + 1) * 3600
    start = end - TIMELINE_HOURS * 3600

    scans, probes = _memo.get(store, ("timeline", start), lambda: store.hourly_counts(start, TIMELINE_HOURS))
    return {"start": iso(start), "start_epoch": start, "hours": TIMELINE_HOURS, "scans": list(scans),
            "probes": list(probes), "ends_at_data": end < now - 3600,
            "ticks": [iso(start + i * TIMELINE_HOURS * 3600 // 4) for i in range(5)]}


SERVERS_PER_PAGE = 100


def _paging(page: int, per_page: int, total: int) -> dict:
    """What every paged view says about its pages (at least one, even when empty)."""
    return {"page": page, "per_page": per_page, "total": total, "pages": max(1, -(-total // per_page))}


def server_filters(args) -> dict:
    """The filters a user can put in the Servers page's query string, checked."""
    filters = {}
    verdict = args.get("verdict") or ""
    if verdict:
        if verdict not in list(Verdict):
            raise ValueError(f"verdict must be one of {', '.join(Verdict)}")
        filters["verdict"] = verdict
    server = (args.get("server") or "").strip()
    if server:
        filters["server"] = _address_or_net(server, "server")
    return filters


def servers(store: Store, page: int = 1, per_page: int = SERVERS_PER_PAGE, now: float | None = None,
            filters: dict | None = None) -> dict:
    """One page of the servers in verdict order (harvesters first), each with what its verdict rests
    on; only those of one verdict, or one server, when filtered."""
    now = time.time() if now is None else now
    filters = filters or {}
    verdicts = _verdicts(store)
    if filters:
        verdicts = [v for v in verdicts if v["verdict"] == filters.get("verdict", v["verdict"])
                    and v["server"] == filters.get("server", v["server"])]
    page = max(1, page)
    result = []
    for verdict in verdicts[(page - 1) * per_page:page * per_page]:
        entry = {**verdict, "pools": list(verdict["pools"]), "probes_by_kind": dict(verdict["probes_by_kind"]),
                 "clean_open_to": list(verdict["clean_open_to"]), "because": verdict_text(verdict, now)}
        for key in ("first_seen", "last_seen", "last_candidacy", "watch_ends"):
            entry[key] = _iso_or_none(entry[key])
        result.append(entry)
    return {"filters": filters, **_paging(page, per_page, len(verdicts)), "servers": result}


def scan_filters(args) -> dict:
    """The filters a user can put in the Scans page's query string, checked."""
    filters = {}
    for key in ("scanner", "target", "family", "server"):
        value = (args.get(key) or "").strip()
        if value:
            filters[key] = _address_or_net(value, key)
    attribution = args.get("attribution") or ""
    if attribution:
        if attribution not in list(Attribution):
            raise ValueError(f"attribution must be one of {', '.join(Attribution)}")
        filters["attribution"] = attribution
    kind = args.get("kind") or ""
    if kind:
        if kind not in list(ScanKind):
            raise ValueError(f"kind must be {' or '.join(ScanKind)}")
        filters["kind"] = kind
    return filters


def _address_or_net(value: str, key: str) -> str:
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return ipaddress.ip_address(value).compressed
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not an IP address or network") from None


def scans(store: Store, filters: dict, page: int = 1, per_page: int = PAGE_SIZE) -> dict:
    page = max(1, page)
    total, rows = store.scan_page(filters, per_page, (page - 1) * per_page)
    tops = store.top_candidates([row["id"] for row in rows])
    items = []
    for row in rows:
        top = tops.get(row["id"])
        items.append({"id": row["id"], "kind": row["kind"], "scanner": row["scanner"],
                      "family": row["scanner_net"], "target": row["target"], "start": iso(row["start"]),
                      "duration": round(row["end"] - row["start"], 3), "ports": row["port_count"],
                      "packets": row["packets"], "protocols": json.loads(row["protocols"]),
                      "attribution": row["attribution"], "probe_id": row["probe_id"],
                      "trigger": {"dst": top["dst"], "dport": top["dport"], "proto": top["proto"],
                                  "lag": round(top["lag"], 3)} if top else None})
    return {"filters": filters, **_paging(page, per_page, total), "scans": items}


def scan(store: Store, scan_id: int) -> dict | None:
    rows = store.scans([scan_id])
    if not rows:
        return None
    row = rows[0]
    document = scan_document(store, row)
    probe = None
    if row["probe_id"] is not None:
        p = store.probe(row["probe_id"])
        probe = {"id": p["id"], "address": p["address"], "server": p["server"], "kind": p["kind"],
                 "port": p["port"], "sent_at": _iso_or_none(p["sent_at"]), "sport": p["sport"],
                 "lag": round(row["start"] - p["sent_at"], 3) if p["sent_at"] else None}
    document["probe"] = probe
    # How each candidate endpoint fares across every stored scan, not only this one.
    document["trigger_endpoints"] = [suspect_document(s) for s in store.suspects([scan_id])]
    return document


SCANNERS_PER_FAMILY = 50  # a family of 60,000 addresses (one /48 spread) still makes a small page


def scanners(store: Store, page: int = 1, per_page: int = PAGE_SIZE) -> dict:
    """One page of scanner families, busiest first; each lists up to SCANNERS_PER_FAMILY addresses.
    The first page (the one nearly every visit asks for) is kept until the next commit."""
    page = max(1, page)
    if page == 1 and per_page == PAGE_SIZE:
        return copy.deepcopy(lasting(store, "scanners", store.scanners_fingerprint,
                                     lambda: _scanners(store, 1, PAGE_SIZE)))
    return _scanners(store, page, per_page)


def _scanners(store: Store, page: int, per_page: int) -> dict:
    total, rows = store.scanner_page(per_page, (page - 1) * per_page, SCANNERS_PER_FAMILY)
    names = store.scanner_names()  # forward-confirmed reverse DNS only
    fed = store.servers_fed(sorted({row["scanner_net"] for row in rows}))
    families: dict[str, dict] = {}
    for row in rows:
        family = families.get(row["scanner_net"])
        if family is None:
            family = families[row["scanner_net"]] = {
                "family": row["scanner_net"], "scans": row["f_all"] - row["f_sweeps"], "sweeps": row["f_sweeps"],
                "probe_scans": row["f_probe_scans"], "first": iso(row["f_first"]), "last": iso(row["f_last"]),
                "members": row["f_members"], "fed_by": fed.get(row["scanner_net"], []), "scanners": []}
        family["scanners"].append({"address": row["scanner"], "scans": row["scans"] - row["sweeps"],
                                   "sweeps": row["sweeps"], "first": iso(row["first"]), "last": iso(row["last"]),
                                   "rdns": names.get(row["scanner"])})
    return {**_paging(page, per_page, total), "families": list(families.values())}


def probe_filters(args) -> dict:
    server = (args.get("server") or "").strip()
    return {"server": _address_or_net(server, "server")} if server else {}


def probes(store: Store, now: float | None = None, limit: int = 200, filters: dict | None = None) -> dict:
    """The newest probes (of one server, when filtered), the prober's state and its next plans."""
    now = time.time() if now is None else now
    filters = filters or {}
    rows = store.latest_probes(limit, filters.get("server"))
    prober = store.status().get("prober") or {}
    total, live = store.probe_counts(now)
    return {
        "filters": filters,
        "reachability": prober.get("reachability"),
        "total": total,
        "live": live,
        "state": prober.get("state"), "reason": prober.get("reason"), "prefix": prober.get("prefix"),
        "next": [{"at": _iso_or_none(plan.get("at")), "server": plan.get("server")} for plan in prober.get("next", [])],
        "probes": [{"id": r["id"], "address": r["address"], "server": r["server"], "kind": r["kind"],
                    "port": r["port"], "sent_at": _iso_or_none(r["sent_at"]), "expires": iso(r["expires"]),
                    "live": bool(r["sent_at"]) and r["expires"] > now, "stratum": r["stratum"],
                    "offset_ms": None if r["offset"] is None else round(r["offset"] * 1000, 2),
                    "delay_ms": None if r["delay"] is None else round(r["delay"] * 1000, 2),
                    "error": r["error"], "scans": r["scans"], "touches": r["touches"], "reach": r["reach"],
                    "reach_note": r["reach_note"]} for r in rows],
    }


def probe(store: Store, probe_id: int, now: float | None = None) -> dict | None:
    """One probe: its packet, how its address could be reached, and every touch of it, by source."""
    now = time.time() if now is None else now
    row = store.probe(probe_id)
    if row is None:
        return None
    sources: dict[str, dict] = {}
    for t in store.touches_of(probe_id):
        source = sources.setdefault(t["src"], {"src": t["src"], "family": t["src_net"], "first": t["first_ts"],
                                               "packets": 0, "ports": []})
        source["first"] = min(source["first"], t["first_ts"])
        source["packets"] += t["packets"]
        source["ports"].append({"proto": t["proto"], "port": None if t["dport"] == NO_PORT else t["dport"],
                                "first": iso(t["first_ts"]), "last": iso(t["last_ts"]), "packets": t["packets"]})
    touched = sorted(sources.values(), key=lambda s: s["first"])
    for source in touched:
        source["lag"] = round(source["first"] - row["sent_at"], 3) if row["sent_at"] else None
        source["first"] = iso(source["first"])
    return {
        "id": row["id"], "address": row["address"], "server": row["server"], "kind": row["kind"],
        "port": row["port"], "planned": iso(row["planned"]), "sent_at": _iso_or_none(row["sent_at"]),
        "sport": row["sport"], "expires": iso(row["expires"]), "live": bool(row["sent_at"]) and row["expires"] > now,
        "left": duration_text(row["expires"] - now) if row["expires"] > now else None,
        "error": row["error"], "reach": row["reach"], "reach_note": row["reach_note"],
        # held_until is the lease end the store last learned: renewals in the middle of a window are
        # kept in the prober's memory (each would be a write to the card), the one that reaches the
        # window's end is written (store/live.py update_pinholes).
        "pinholes": [{"proto": h["proto"], "port": h["port"], "granted": _iso_or_none(h["opened"]),
                      "held_until": _iso_or_none(h["held_until"]), "lost": _iso_or_none(h["lapsed"]),
                      "closed": _iso_or_none(h["closed"]), "error": h["error"],
                      "to_the_end": h["held_until"] is not None and h["lapsed"] is None
                      and h["held_until"] >= row["expires"] - PINHOLE_SLACK} for h in store.pinholes_of(probe_id)],
        "families": sorted({s["family"] for s in touched}),
        "sources": touched,
        "scans": [{"id": s["id"], "scanner": s["scanner"], "start": iso(s["start"]), "ports": s["port_count"]}
                  for s in store.scans_of_probe(probe_id)],
    }


def harvester_evidence(store: Store) -> list[dict]:
    """One row per touch of a probe address (probe address, source, protocol, port): what an NTP
    pool operator needs to act on a report."""
    return [{"server": r["server"], "probe_address": r["address"], "probe_kind": r["kind"],
             "probe_port": r["probe_port"], "probe_time": iso(r["sent_at"]), "probe_source_port": r["sport"],
             "touched_by": r["src"], "scanner_family": r["src_net"], "protocol": r["proto"],
             "port": None if r["dport"] == NO_PORT else r["dport"], "first_touch": iso(r["first_ts"]),
             "last_touch": iso(r["last_ts"]), "packets": r["packets"],
             "lag_seconds": round(r["first_ts"] - r["sent_at"], 3)} for r in store.touch_evidence()]


def _gap(row) -> dict:
    return {"start": iso(row["start"]), "end": iso(row["end"]), "seconds": round(row["end"] - row["start"], 1),
            "reason": row["reason"], "lost": row["lost"]}


def _iso_or_none(ts) -> str | None:
    return None if ts is None else iso(float(ts))
