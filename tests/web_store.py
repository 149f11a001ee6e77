"""Stores for the status page's tests, built the way the appliance builds them.

`fill_realistic_store` writes what the daemon writes after a few hours on a LAN behind a router set
open to it: two pools, a probe ledger (NTP replies, udp123, udp321, an expired probe whose window
passed untouched, one whose window passed while a closed router let nothing in, one that never
left), a confirmed harvester (its probe address touched by two waves, each a scan), servers still
watched, candidate-attributed scans of the appliance's own
temporary addresses with their trigger contacts, an unattributed scan, a sweep, gaps, and the
daemon's status. With `hostile=True` every free-text field that reaches a page carries markup
(`HOSTILE` names them), so the tests can prove the page escapes it.

`fill_analyze_only_store` is a store only `harvestwatch analyze --db` ever wrote: scans and
suspects, no pools, no probes, no daemon status.

Every address is loopback-free documentation space: 2001:db8::/32.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from appliance.attribute.triggers import Candidate
from appliance.detect.scans import PORTSCAN, SWEEP, SWEEP_TARGET, Scan
from appliance.store.db import Store

ROOT = Path(__file__).resolve().parent.parent

PREFIX = "2001:db8:e625:1::/64"                 # the LAN's on-link /64, as the prober reports it
RESOLVER = "2001:db8:e625:1::1"
STABLE = "2001:db8:e625:1::10"                  # the appliance's stable address: never sends, gets scanned
LAN_TEMP_1 = "2001:db8:e625:1:4c1e:9a2b:77d0:3f15"  # its privacy addresses: they sync the clock
LAN_TEMP_2 = "2001:db8:e625:1:91f3:2b6:e0c4:8a21"
WEB = "2001:db8:77:1::443"

HARVESTER = "2001:db8:f00d::123"
HONEST_1 = "2001:db8:a1::123"
HONEST_2 = "2001:db8:a2::123"
SUSPECT = "2001:db8:a3::123"
UNPROBED = "2001:db8:a4::123"
UNVERIFIED = "2001:db8:a5::123"

PROBE_HARVESTER = "2001:db8:e625:1:ad0b:e1:5ee:f001"
PROBE_HONEST_1_UDP = "2001:db8:e625:1:ad0b:e1:5ee:f002"
PROBE_HONEST_2_UDP321 = "2001:db8:e625:1:ad0b:e1:5ee:f003"
PROBE_HONEST_1_NTP = "2001:db8:e625:1:ad0b:e1:5ee:f004"
PROBE_NEVER_SENT = "2001:db8:e625:1:ad0b:e1:5ee:f005"
PROBE_EXPIRED = "2001:db8:e625:1:ad0b:e1:5ee:f000"
PROBE_UNREACHABLE = "2001:db8:e625:1:ad0b:e1:5ee:efff"

SCANNER_1 = "2001:db8:5ca0:10::89da:a001"       # first wave on the harvester's probe
SCANNER_2 = "2001:db8:5ca1:10::943f:b001"       # second wave, hours later, another family
SCANNER_3 = "2001:db8:5ca2:10::12fd:a001"       # scans of the LAN's temporary addresses
SCANNER_3B = "2001:db8:5ca2:10::12fd:a002"
SCANNER_4 = "2001:db8:5ca3:10::1"               # the unattributed scan
SWEEPER = "2001:db8:5ca4:10::5"

POOL_0 = "0.pool.lab.test"
POOL_1 = "1.pool.lab.test"

PROBE_LAG = 5.1          # the first scan of the harvester's probe address began this long after the probe
LOGGED_PROBE_DELAY = 0.003  # the firewall logged the probe packet a little after the prober's timestamp
OBSERVATION = 48 * 3600.0

# Every free-text field that reaches a page, with the markup the hostile store puts in it.
HOSTILE = {
    "pool": "<script>alert('pool')</script>.pool.lab.test",
    "gap": "<script>alert('gap')</script>",
    "probe_error": "<img src=x onerror=alert('probe')>",
    "prober_reason": "no prefix <script>alert('prober')</script>",
    "pool_error": "<img src=x onerror=alert('pool-error')>",
    "firewall_problem": "chain HW-IN differs <script>alert('firewall')</script>",
    "privacy_problem": "use_tempaddr is 0 <b onmouseover=alert('privacy')>x</b>",
    "rdns": "<script>alert('rdns')</script>.example",
    # What a log prefix in a skipped-line reason could look like if a parser ever echoed one.
    "skipped": "HW-IN <script>alert('skipped')</script> ",
    # A package name from /run/reboot-required.pkgs, which any package's maintainer script may write.
    "reboot_package": "<img src=x onerror=alert('reboot')>",
}
NORMAL_PROBE_ERROR = "network unreachable"
RDNS = "scan-1.research.example"
RDNS_HOSTILE = HOSTILE["rdns"]


def _ports(count: int) -> list:
    tcp = [21, 22, 23, 25, 53, 80, 81, 110, 111, 135, 139, 143, 179, 389, 443, 445, 465, 502, 587, 631,
           873, 993, 995, 1025, 1080, 1433, 1521, 1723, 1883, 2000, 2049, 2082, 2083, 2222, 2375, 2376,
           3000, 3128, 3306, 3389, 4443, 4567, 5000, 5060, 5432, 5555, 5601, 5900, 5984, 6000, 6379,
           6443, 7001, 7547, 8000, 8008, 8080, 8081, 8088, 8443, 8888, 9000, 9042, 9090, 9100, 9200]
    udp = [53, 67, 69, 111, 123, 137, 161, 177, 389, 500, 623, 1194, 1434, 1604, 1900, 2049, 3478, 3702,
           4500, 5060, 5093, 5351, 5353, 5683, 10001, 11211, 17185, 20000, 27015, 32414]
    ports = [("TCP", p) for p in tcp] + [("UDP", p) for p in udp]
    return sorted(ports[:count])


def _portscan(scanner: str, target: str, start: float, ports: int, candidates=()) -> Scan:
    return Scan(PORTSCAN, scanner, target, start, start + 0.6, ports + 3, _ports(ports),
                candidates=list(candidates))


def _probe(store: Store, address: str, server: str, kind: str, at: float, *, sport: int,
           stratum=None, offset=None, delay=None, window: float = OBSERVATION, reach: str = "declared") -> int:
    port = 321 if kind == "udp321" else 123
    probe_id = store.plan_probe(address, server, kind, port, at + window, planned=at - 0.2, reach=reach,
                                reach_note="the router lets nothing unsolicited in" if reach == "none" else None)
    store.record_probe(probe_id, sent_at=at, sport=sport, stratum=stratum, offset=offset, delay=delay)
    return probe_id


def _touches(probe_id: int, scan: Scan) -> dict:
    """The touches the daemon records of a scan of a probe address: one per port."""
    return {(probe_id, scan.scanner, proto, port): [scan.start + n * 0.005, scan.start + n * 0.005, 1]
            for n, (proto, port) in enumerate(scan.ports)}


def fill_realistic_store(path, *, hostile: bool = False, now: float | None = None) -> dict:
    """Write a daemon's store at `path`; returns the facts the tests check against."""
    # Whole seconds: lags computed from these times come out as the decimals written here.
    now = float(int(time.time() if now is None else now))
    pool_1 = HOSTILE["pool"] if hostile else POOL_1
    store = Store(str(path))
    try:
        # The prober resolves the pools at start and every 15 minutes.
        store.add_pool_members(POOL_0, [HARVESTER, HONEST_1, SUSPECT, UNVERIFIED], now - 6 * 3600)
        store.add_pool_members(pool_1, [HARVESTER, HONEST_2, UNPROBED], now - 6 * 3600)
        store.mark_pool_seen({(pool, member): now - 900 for pool, members in
                              ((POOL_0, [HARVESTER, HONEST_1, SUSPECT]), (pool_1, [HARVESTER, HONEST_2]))
                              for member in members})

        # The probe ledger. An old probe whose whole window passed untouched (from an earlier run),
        # and one whose window passed while the router let nothing in ...
        _probe(store, PROBE_EXPIRED, HONEST_2, "ntp", now - 3 * 86400, sport=40100, stratum=2, offset=0.0041,
               delay=0.0212, window=3600)
        _probe(store, PROBE_UNREACHABLE, UNVERIFIED, "udp123", now - 2 * 86400, sport=40101, window=3600, reach="none")
        # ... then one probe per kind, the first to the harvester.
        harvester_sent = now - 5 * 3600
        harvester_probe = _probe(store, PROBE_HARVESTER, HARVESTER, "ntp", harvester_sent, sport=40123,
                                 stratum=2, offset=0.0034, delay=0.0181)
        _probe(store, PROBE_HONEST_1_UDP, HONEST_1, "udp123", now - 4 * 3600, sport=40124)
        _probe(store, PROBE_HONEST_2_UDP321, HONEST_2, "udp321", now - 3 * 3600, sport=40125)
        _probe(store, PROBE_HONEST_1_NTP, HONEST_1, "ntp", now - 2 * 3600, sport=40126,
               stratum=1, offset=-0.0012, delay=0.0093)
        # The last one never left: the plan is committed before the packet, the error after.
        never = store.plan_probe(PROBE_NEVER_SENT, UNPROBED, "ntp", 123, now - 3600 + OBSERVATION,
                                 planned=now - 3600)
        error = HOSTILE["probe_error"] if hostile else NORMAL_PROBE_ERROR
        store.record_probe(never, sent_at=None, error=error)

        # The harvester's probe address is scanned 5.1 s after the probe (the firewall logged the
        # probe packet too), and again three hours later from another family.
        logged = Candidate(harvester_sent + LOGGED_PROBE_DELAY, PROBE_HARVESTER, 40123, HARVESTER, 123, "UDP")
        first_wave = harvester_sent + PROBE_LAG
        second_wave = harvester_sent + 3 * 3600
        # The appliance's temporary addresses resolve the pool, sync the clock, browse; then get scanned.
        temp_1_scan, temp_2_scan = now - 90 * 60, now - 40 * 60
        temp_1 = [Candidate(temp_1_scan - 40.0, LAN_TEMP_1, 51234, WEB, 443, "TCP"),
                  Candidate(temp_1_scan - 12.4, LAN_TEMP_1, 53001, RESOLVER, 53, "UDP"),
                  Candidate(temp_1_scan - 11.9, LAN_TEMP_1, 123, SUSPECT, 123, "UDP")]
        temp_2 = [Candidate(temp_2_scan - 31.2, LAN_TEMP_2, 53002, RESOLVER, 53, "UDP"),
                  Candidate(temp_2_scan - 30.8, LAN_TEMP_2, 123, SUSPECT, 123, "UDP")]
        sweep_start = now - 20 * 60
        sweep_targets = [f"2001:db8:e625:1::{n:x}" for n in range(0x20, 0x29)]
        sweep = Scan(SWEEP, SWEEPER, SWEEP_TARGET, sweep_start, sweep_start + 4.0, len(sweep_targets),
                     [("TCP", 22)], targets=sweep_targets)
        waves = [_portscan(SCANNER_1, PROBE_HARVESTER, first_wave, 96, [logged]),
                 _portscan(SCANNER_2, PROBE_HARVESTER, second_wave, 40)]
        store.add_touches({**_touches(harvester_probe, waves[0]), **_touches(harvester_probe, waves[1])})
        store.add_scans([
            *waves,
            _portscan(SCANNER_3, LAN_TEMP_1, temp_1_scan, 84, temp_1),
            _portscan(SCANNER_3B, LAN_TEMP_2, temp_2_scan, 72, temp_2),
            _portscan(SCANNER_4, STABLE, now - 30 * 60, 50),
            sweep,
        ])
        contacts = {}
        for c in [logged, *temp_1, *temp_2]:
            contacts[(c.src, c.proto, c.dst, c.dport)] = (c.ts, c.ts)
        # Other privacy addresses synced with the same servers and were never scanned.
        for n, server in enumerate((SUSPECT, HONEST_1, HONEST_2)):
            other = f"2001:db8:e625:1:77aa:0:0:{n + 1:x}"
            contacts[(other, "UDP", server, 123)] = (now - 7000 + n, now - 7000 + n)
            contacts[(other, "UDP", RESOLVER, 53)] = (now - 7001 + n, now - 7001 + n)
        store.add_contacts(contacts)
        store.refresh()

        # Gaps: the daemon was down before this run, the kernel dropped a few packets, the flood limit hit.
        store.add_gap(now - 6 * 3600 - 600, now - 6 * 3600, "daemon-down")
        store.add_gap(now - 3600, now - 3600, "seq-gap", 3)
        store.add_gap(now - 600, now - 600, HOSTILE["gap"] if hostile else "flood-limit", 120)

        # Someone also imported an old kern.log into the same store.
        import_id = store.begin_import(["/var/log/kern.log.1"], {"min_ports": 10, "window": 60.0})
        skipped = {"not-netfilter": 14, "truncated": 2}
        if hostile:
            skipped[HOSTILE["skipped"]] = 1
        store.finish_import(import_id, 2000, 1984, skipped)

        store.set_status(_daemon_status(now, hostile), now)
        # Forward-confirmed reverse DNS of the scanners (None: looked up, nothing confirmed). Older
        # stores kept the names in the status; the page reads whichever this version has.
        names = {SCANNER_1: RDNS_HOSTILE if hostile else RDNS, SCANNER_2: None}
        if hasattr(store, "set_scanner_names"):
            store.set_scanner_names(names, now)
    finally:
        store.close()
    return {
        "now": now, "prefix": PREFIX, "harvester": HARVESTER, "harvester_probe": PROBE_HARVESTER,
        "harvester_probe_id": harvester_probe, "probe_lag": PROBE_LAG,
        "first_wave": first_wave, "second_wave": second_wave,
        "logged_lag": round(PROBE_LAG - LOGGED_PROBE_DELAY, 3),
        "probe_scans": 2, "touches": 136, "servers": {HARVESTER: "harvester", SUSPECT: "suspect",
                                                        HONEST_1: "watching", HONEST_2: "clean",
                                                        UNVERIFIED: "unverified", UNPROBED: "unprobed"},
        "probes_sent": 6, "probes_total": 7, "scans": 5, "sweeps": 1, "gaps": 3,
        "pools": [POOL_0, pool_1], "probe_error": error,
    }


def _daemon_status(now: float, hostile: bool) -> dict:
    firewall_problems = [HOSTILE["firewall_problem"]] if hostile else []
    privacy_problems = [HOSTILE["privacy_problem"]] if hostile else []
    if hostile:
        prober = {"state": "paused", "reason": HOSTILE["prober_reason"], "prefix": None,
                  "pool_errors": {POOL_1: HOSTILE["pool_error"]}}
    else:
        prober = {"state": "probing", "prefix": PREFIX, "live_addresses": 4, "max_live": 500, "servers": 6,
                  "pool_errors": {}, "last_probe": now - 2 * 3600,
                  "next": [{"at": now + 60, "server": HONEST_2}, {"at": now + 60, "server": SUSPECT},
                           {"at": now + 3660, "server": UNPROBED}],
                  "reachability": {"router": "open", "state": "declared open", "granted": 0, "refused": 0, "lost": 0,
                                   "detail": "the configuration says the router lets all inbound IPv6 through",
                                   "advice": []}}
    return {
        "started": now - 6 * 3600, "clean_stop": False, "pid": 4242, "interface": "eth0",
        "heartbeat": now, "synced_heartbeat": now, "last_record": now - 3.2,
        "clock": {"synchronised": True, "source": "chrony", "held": 0,
                  "detail": "synchronised to 2001:db8:e625:1::1 (chronyd, stratum 2)"},
        "inbound_24h": {"TCP": 120, "UDP": 16},
        "counters": {"packets": 18211, "inbound": 15022, "outbound": 3189, "scans": 6},
        "capture": {"lost": 3, "overruns": 0, "malformed": 1},
        "open_episodes": 2,
        # A kernel update came last night: unattended-upgrades reboots at its quiet hour.
        "updates": {"installed": True, "enabled": True, "last_run": now - 3 * 3600, "reboot_required": True,
                    "reboot_packages": [HOSTILE["reboot_package"] if hostile else "linux-image-6.12.48+deb13-arm64"],
                    "auto_reboot": True, "reboot_time": "04:00"},
        "privacy": {"in_force": not hostile, "values": {"use_tempaddr": 2, "temp_prefered_lft": 1200,
                                                        "temp_valid_lft": 2400},
                    "problems": privacy_problems, "restored": []},
        "firewall": {"in_force": not hostile, "problems": firewall_problems, "backend": "iptables-legacy",
                     "lan_prefixes": [PREFIX], "flood_dropped": {"flood": 100, "flood-table": 20}},
        "prober": prober,
        "rdns": {SCANNER_1: RDNS_HOSTILE if hostile else RDNS},
        "store": {"keep_days": 90, "max_bytes": 512_000_000, "used_bytes": 1, "file_bytes": 1, "oldest": now - 7200,
                  "free_bytes": 0 if hostile else 3_000_000_000, "disk_full_since": now - 300 if hostile else None,
                  "pruned": {"at": now - 60, "deleted": {"scans": 12, "contacts": 40}}},
    }


def fill_analyze_only_store(path, *, lines: int = 3000, seed: int = 1) -> dict:
    """Run `harvestwatch synthlog` and `harvestwatch analyze --db` as a user would; returns the
    synthetic log's ground truth summary (numbers of scans)."""
    path = Path(path)
    log = path.with_suffix(".log")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-m", "appliance", "synthlog", "--lines", str(lines), "--seed", str(seed),
                    "--output", str(log)], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
    subprocess.run([sys.executable, "-m", "appliance", "analyze", "--db", str(path), str(log)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    store = Store(str(path), readonly=True)
    try:
        counts = dict(store.db.execute("SELECT kind, count(*) FROM scans GROUP BY kind").fetchall())
        candidate = store.db.execute("SELECT count(*) FROM scans WHERE attribution='candidate'").fetchone()[0]
    finally:
        store.close()
    return {"portscans": counts.get(PORTSCAN, 0), "sweeps": counts.get(SWEEP, 0), "candidate": candidate}
