"""What the appliance says when scans cannot reach it, and when its clock is not yet right.

One lab, the router switched between the kinds a home has: closed with no UPnP (a Fritz!Box's
default: nothing unsolicited comes in), echo-only (OpenWrt's default: ICMPv6 echo requests come
in, nothing else), and UPnP whose pinholes are lost mid-window (the router restarted). A fresh
daemon and store for each. Harvesters: `harv` scans with nmap, `hping` sends one echo request.
The first daemon also starts before the clock is right: nothing may be probed or recorded until it is.
"""
from __future__ import annotations

import time

import pytest

from tests.lab.appliance import ApplianceDaemon, write_config

WINDOW = 30
PLANS = {
    "harv": [{"delay": 2, "scanner": "scan1", "kind": "nmap"}],
    "hping": [{"delay": 2, "scanner": "scan2", "kind": "ping"}],
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, start_lab):
    with start_lab(tmp_path_factory.mktemp("lab"), harvesters=PLANS, router="closed") as lab:
        yield lab


@pytest.fixture
def run_daemon(lab, tmp_path):
    """run_daemon(**config): a fresh daemon and store in the lab as it is now; stopped afterwards."""
    started = []

    def start(**config) -> ApplianceDaemon:
        work = tmp_path / f"appliance{len(started)}"
        work.mkdir()
        path = write_config(lab, work / "config.toml", state_dir=work / "state", nflog_group=9 + len(started),
                            **{"observation": WINDOW, **config})
        daemon = ApplianceDaemon(lab, path, work / "state", work / "daemon.log").start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def verdicts(store) -> dict[str, dict]:
    return {v["server"]: v for v in store.server_verdicts()}


def test_nothing_is_probed_or_stamped_before_the_clock_is_right(lab, run_daemon):
    lab.start_appliance_clock(synchronised=False)
    daemon = run_daemon()
    daemon.wait_for(lambda s: s.status().get("clock", {}).get("synchronised") is False, timeout=30)
    time.sleep(12)  # time enough to probe every server, were the clock right
    said = daemon.status_text()
    assert "clock: WAITING to be synchronised (chronyd has not synchronised yet)" in said
    assert "prober: paused (waiting for the clock to be synchronised)" in said
    store = daemon.store()
    try:
        for table in ("probes", "pool_members", "touches", "scans", "gaps", "contacts"):
            assert store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    finally:
        store.close()
    synced_at = time.time()
    lab.start_appliance_clock(synchronised=True)
    daemon.wait_for(lambda s: len([p for p in s.probes() if p["sent_at"]]) >= 4, timeout=60)
    store = daemon.store()
    try:
        assert store.status()["clock"]["synchronised"] is True
        stamps = [row[0] for row in store.db.execute("SELECT planned FROM probes UNION ALL SELECT first_seen "
                                                     "FROM pool_members UNION ALL SELECT start FROM gaps")]
        assert stamps and min(stamps) >= synced_at - 1
        assert store.db.execute("SELECT count(*) FROM gaps WHERE end < start").fetchone()[0] == 0
    finally:
        store.close()
    daemon.stop()


def test_a_closed_router_without_upnp_lets_nothing_in_and_no_server_is_called_clean(lab, run_daemon):
    lab.start_appliance_clock(synchronised=True)
    daemon = run_daemon()
    daemon.wait_for(lambda s: len([p for p in s.probes() if p["sent_at"]]) >= 4, timeout=60)
    said = daemon.status_text()
    assert "reachability: UNREACHABLE: the router (fe80::" in said and "did not answer a UPnP search" in said
    assert "No server can be called clean while scans cannot reach this appliance. What you can do:" in said
    assert "  - Fritz!Box: Internet > Permit Access" in said
    assert "  - OpenWrt: Network > Firewall > Traffic Rules" in said
    # The harvesters did their part (their journals say so); the router dropped it all.
    daemon.wait_for(lambda s: all(any(line["event"] == "scan" for line in lab.journal(name)) for name in PLANS),
                    timeout=30)
    store = daemon.store()
    try:
        ends = max(p["expires"] for p in store.probes())
    finally:
        store.close()
    daemon.wait_for(lambda s: time.time() > ends + 2 and {v["verdict"] for v in s.server_verdicts()} == {"unverified"},
                    timeout=WINDOW + 60)
    store = daemon.store()
    try:
        assert store.db.execute("SELECT count(*) FROM touches").fetchone()[0] == 0
        why = {v["unverified_why"] for v in store.server_verdicts()}
    finally:
        store.close()
    assert len(why) == 1 and "did not answer a UPnP search" in why.pop()
    said = daemon.status_text()
    print(f"\n--- closed router, no UPnP:\n{said}")
    servers = said.split("\nSERVERS\n")[1].split("\n\n")[0].splitlines()
    assert servers and all(line.split()[0] == "unverified" for line in servers)
    assert all("scans could not reach this appliance: the router (" in line for line in servers)


def test_an_echo_only_router_still_catches_the_ping_harvester(lab, run_daemon):
    lab.set_router("echo")
    daemon = run_daemon()
    hping, harv = lab.harvesters["hping"], lab.harvesters["harv"]
    daemon.wait_for(lambda s: verdicts(s).get(hping, {}).get("verdict") == "harvester", timeout=60)
    store = daemon.store()
    try:
        ends = max(p["expires"] for p in store.probes())
    finally:
        store.close()
    daemon.wait_for(lambda s: time.time() > ends + 2 and verdicts(s)[harv]["verdict"] == "unverified",
                    timeout=WINDOW + 60)
    store = daemon.store()
    try:
        shown = verdicts(store)
        touches = store.db.execute("SELECT t.proto, t.dport FROM touches t JOIN probes p ON p.id = t.probe_id "
                                   "WHERE p.server = ?", (hping,)).fetchall()
    finally:
        store.close()
    assert [tuple(t) for t in touches] == [("ICMPv6", 128)]
    assert shown[hping]["verdict"] == "harvester" and shown[harv]["verdict"] == "unverified"
    assert {shown[h]["verdict"] for h in lab.honest} == {"unverified"}
    print(f"\n--- echo-only router:\n{daemon.status_text()}")


def test_pinholes_lost_mid_window_leave_the_window_unverified(lab, run_daemon):
    lab.set_router("upnp")
    # A 150 s window, 60 s leases (the shortest allowed) renewed at half: the first renewal is 30 s in.
    daemon = run_daemon(lease=60, observation=150)
    daemon.wait_for(lambda s: s.db.execute("SELECT count(*) FROM pinholes WHERE uid IS NOT NULL").fetchone()[0]
                    >= 3 * 4, timeout=60)
    lab.set_router("upnp")  # miniupnpd restarts: every pinhole it held is gone
    assert lab.pinhole_rules() == []
    daemon.wait_for(lambda s: s.db.execute("SELECT count(*) FROM pinholes WHERE lapsed IS NOT NULL").fetchone()[0]
                    >= 3 * 4, timeout=60)
    # The status reaches the store with the next flush.
    daemon.wait_for(lambda s: s.status()["prober"]["reachability"]["state"] == "pinholes lost", timeout=30)
    said = daemon.status_text()
    print(f"\n--- pinholes lost:\n{said}")
    assert "reachability: PINHOLES LOST: " in said and "does not know this pinhole" in said
    store = daemon.store()
    try:
        ends = max(p["expires"] for p in store.probes())
    finally:
        store.close()
    daemon.wait_for(lambda s: time.time() > ends + 2 and all(
        verdicts(s)[h]["verdict"] == "unverified" for h in lab.honest), timeout=240)
    store = daemon.store()
    try:
        why = verdicts(store)[lab.honest[0]]["unverified_why"]
        lost = store.status()["prober"]["reachability"]["lost"]
    finally:
        store.close()
    assert "pinholes were not held throughout the window" in why and "does not know this pinhole" in why
    assert lost >= 3 * 4
