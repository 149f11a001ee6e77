"""The live appliance under floods, in the lab (router open: everything reaches it).

While the daemon probes the lab's pools, 2,500 /64s of one /48 each scan twelve ports at a pace under
every flood limit (30 s, 2,500 scans if nothing bounded them); then a flood comes from 30,000 /64s
of another /48 (one network rotating addresses) and from 3,000 other /48s, twelve ports from each
source: 396,000 packets in a few seconds. In the middle of it a stranger scans
one of the watched probe addresses. What a user must be able to rely on afterwards: the probe
address's scan and touches are stored whole; the flood cost a bounded number of scans and bounded
memory (the unit's MemoryMax is 256 MB); what was not logged or stored is recorded as gaps, named
by what limited it; the daemon is still running and writing its heartbeat.
"""
from __future__ import annotations

import ipaddress
import json
import sys
import time
from pathlib import Path

import pytest

from appliance.detect import quota
from tests.lab.appliance import ApplianceDaemon, write_config
from tests.lab.netns import repo_root

PORTS = 12
ROTATING = "2001:db8::/48"        # the lab's random /48s are 2001:db8:1::/48 and above: never this one
MANY = "2001:db8::/32"            # one source in each of 3,000 /48s, the lab's own excluded
STRANGER = "2001:db8:0:ffff::/64"  # inside the rotating /48 itself: its /48 limit is spent
# 2,500 sources in 2,500 /64s of one /48, twelve ports each, at 900 packets/s: under every flood limit.
SLOW_CANDIDATES = ("2001:db8:fffe::/48", "2001:db8:fffd::/48")
SLOW_SOURCES, SLOW_PPS = 2500, 900
MEMORY_MAX_MIB = 256              # harvestwatch.service's MemoryMax


@pytest.fixture(scope="module")
def flooded(tmp_path_factory, start_lab):
    with start_lab(tmp_path_factory.mktemp("lab"), harvesters={}, router="open") as lab:
        work = tmp_path_factory.mktemp("appliance")
        state = work / "state"
        config = write_config(lab, work / "config.toml", state_dir=state, router="open", observation=3600)
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()

        def watched(store):
            rows = store.watched_probes(time.time())
            return rows[0] if rows else None
        probe_id, probe, _, _ = daemon.wait_for(watched, timeout=90)
        target = lab.lan_address()
        scan_ns = lab.ns.name("scan1")
        own = [lab.site_prefix, f"2001:db8:{lab.internet:x}::/48", f"2001:db8:{lab.scanners:x}::/48",
               f"2001:db8:{lab.spreader:x}::/48"]

        def flood(to, network, sources, step_bits, exclude, *options):
            args = [sys.executable, "-m", "tests.lab.flood", to, network, "--sources", str(sources),
                    "--step-bits", str(step_bits), "--ports", str(PORTS), *(f"--exclude={n}" for n in exclude),
                    *options]
            return lab.ns.popen(scan_ns, args, cwd=repo_root(), stdout=-1, text=True)

        started = time.time()
        # First a slow one: every packet within every limit, so every source is a scan.
        slow = next(n for n in SLOW_CANDIDATES if n not in own)
        slow_sent = json.loads(flood(target, slow, SLOW_SOURCES, 64, own, "--pps", str(SLOW_PPS))
                               .communicate(timeout=300)[0])["sent"]
        floods = [flood(target, ROTATING, 30_000, 64, own), flood(target, MANY, 3_000, 48, [*own, ROTATING])]
        time.sleep(0.5)
        stranger = lab.ns.exec(scan_ns, [sys.executable, "-m", "tests.lab.flood", probe, STRANGER, "--sources", "1",
                                         "--ports", str(PORTS), "--port-base", "7000"], cwd=repo_root(), timeout=60)
        sent = sum(json.loads(f.communicate(timeout=300)[0])["sent"] for f in floods)
        sent += json.loads(stranger.stdout)["sent"] + slow_sent
        # The flood counters are read with the health check (every 30 s); the scans go quiet after the window.
        daemon.wait_for(lambda s: s.db.execute("SELECT count(*) FROM gaps WHERE reason='flood' AND start>=?",
                                               (started,)).fetchone()[0], timeout=60)
        # The refused scans are counted when they are over (quiet for detect.window, 60 s).
        refused = (SLOW_SOURCES - quota.PER_NETWORK) * PORTS
        daemon.wait_for(lambda s: s.db.execute("SELECT sum(lost) >= ? FROM gaps WHERE reason='scan-cap' AND start>=?",
                                               (refused, started)).fetchone()[0], timeout=150)
        peak = peak_mib(daemon.process.pid)
        try:
            yield dict(lab=lab, daemon=daemon, probe=probe, probe_id=probe_id, target=target, sent=sent,
                       started=started, peak=peak, slow=slow)
        finally:
            daemon.stop()


def peak_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def stranger_source() -> str:
    return str(ipaddress.ip_network(STRANGER)[1])


def test_the_probe_address_scanned_during_the_flood_is_stored_whole(flooded):
    daemon = flooded["daemon"]
    source = stranger_source()

    def stored(store):
        touches = store.db.execute("SELECT count(*) FROM touches WHERE probe_id=? AND src=?",
                                   (flooded["probe_id"], source)).fetchone()[0]
        scans = store.db.execute("SELECT port_count, packets FROM scans WHERE target=? AND scanner=?",
                                 (flooded["probe"], source)).fetchall()
        return (touches, [tuple(row) for row in scans]) if touches == PORTS and scans else None
    touches, scans = daemon.wait_for(stored, timeout=90)
    assert touches == PORTS, "one touch per port, none lost to the flood"
    assert scans == [(PORTS, PORTS)], "the scan of the probe address, every port and packet"


def test_the_flood_is_bounded_and_every_loss_is_named(flooded):
    daemon = flooded["daemon"]
    store = daemon.store()
    try:
        # Scans of ordinary addresses: the stranger's scan of the probe address (from inside the
        # rotating /48) is beyond every quota, as it must be.
        scanners = [ipaddress.ip_address(row[0]) for row in
                    store.db.execute("SELECT scanner FROM scans WHERE start>=? AND target!=?",
                                     (flooded["started"], flooded["probe"]))]
        rotating = sum(1 for scanner in scanners if scanner in ipaddress.ip_network(ROTATING))
        slow = sum(1 for scanner in scanners if scanner in ipaddress.ip_network(flooded["slow"]))
        everything = len(scanners)
        gaps = dict(store.db.execute("SELECT reason, sum(lost) FROM gaps WHERE start>=? GROUP BY reason",
                                     (flooded["started"],)).fetchall())
        firewall = store.status()["firewall"]
    finally:
        store.close()
    # 2,500 scans from one /48 at a pace no limit stops: the store took its hourly quota of them,
    # and the packets of the rest are a gap.
    assert slow == quota.PER_NETWORK, slow
    assert gaps["scan-cap"] >= (SLOW_SOURCES - quota.PER_NETWORK) * PORTS, gaps  # and the floods' scans beyond
    assert rotating <= quota.PER_NETWORK
    assert everything <= quota.TOTAL
    assert gaps.get("flood", 0) > 0, gaps
    assert firewall["in_force"] and firewall["flood_dropped"]["flood"] >= gaps["flood"], firewall
    assert set(gaps) <= {"flood", "flood-table", "scan-cap", "episode-cap"}, gaps  # nothing else was lost
    assert flooded["peak"] < MEMORY_MAX_MIB, f"daemon peak RSS {flooded['peak']:.0f} MiB"


def test_the_daemon_goes_on_after_the_flood(flooded):
    daemon = flooded["daemon"]
    assert daemon.alive()
    since = time.time()
    daemon.wait_for(lambda s: s.status()["heartbeat"] > since, timeout=30)
