"""The whole appliance in the lab behind a home router with UPnP: real firewall, NFLOG, probes,
pinholes from Debian's miniupnpd, chrony, nmap. Nothing here is mocked.

One lab for the module: the router is OpenWrt-like (stateful, echo requests let in, miniupnpd
granting IPv6 pinholes), the daemon runs in `lan` with its own chronyd, asks for pinholes
(tcp/8080, tcp/3389, udp/1900) for each probe address and probes the pools. The pools hold two
honest servers and four harvesters that behave as real ones do: `harv` has two nmap waves from two
/64s of one operator (3 s and 20 s after the harvest), `hping` sends one ICMPv6 echo request (a
liveness check), `hsyn` one TCP SYN to 8080, `hlate` scans 150 s later. The observation window is
200 s, so the honest servers end clean within the module. The tests run in order and read the
daemon's store as the status page does (through the page's own app).
"""
from __future__ import annotations

import ipaddress
import sqlite3
import threading
import time

import pytest

from tests.lab.appliance import ApplianceDaemon, write_config

OBSERVATION = 200
LATE = 150
FLUSH_EVERY = 2  # the lab config's store.flush_every
PLANS = {
    "harv": [{"delay": 3, "scanner": "scan1", "kind": "nmap"}, {"delay": 20, "scanner": "scan2", "kind": "nmap"}],
    "hping": [{"delay": 2, "scanner": "scan1", "kind": "ping"}],
    "hsyn": [{"delay": 2, "scanner": "scan2", "kind": "syn", "port": 8080}],
    "hlate": [{"delay": LATE, "scanner": "scan1", "kind": "nmap"}],
}
LAB_NET = ipaddress.ip_network("2001:db8::/32")
# Counts what the appliance sends anywhere but the documentation prefix, link-local and multicast.
# It lives in the nft-backend table, apart from the appliance's own (legacy) rules.
LEAK_RULE = ["OUTPUT", "!", "-d", "2001:db8::/32", "-m", "comment", "--comment", "hw-leak"]


@pytest.fixture(scope="module")
def lab_daemon(tmp_path_factory, start_lab):
    with start_lab(tmp_path_factory.mktemp("lab"), harvesters=PLANS, router="upnp") as lab:
        for rule in (["-A", *LEAK_RULE[:1], "-d", "fe80::/10", "-j", "RETURN"],
                     ["-A", *LEAK_RULE[:1], "-d", "ff00::/8", "-j", "RETURN"],
                     ["-A", *LEAK_RULE]):
            lab.ns.exec(lab.lan_ns, ["ip6tables", *rule])
        work = tmp_path_factory.mktemp("appliance")
        state = work / "state"
        config = write_config(lab, work / "config.toml", state_dir=state, observation=OBSERVATION, family_prefix=48)
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        daemon.wait_for(lambda store: store.status().get("firewall", {}).get("in_force"), timeout=30)
        watcher = PageWatcher(daemon)
        watcher.start()
        daemon.page_watcher = watcher
        try:
            yield lab, daemon
        finally:
            watcher.stop.set()
            daemon.stop()


class PageWatcher(threading.Thread):
    """Reads the page's /api/servers five times a second, as a browser left open would, and
    notes when each server first showed as a confirmed harvester."""

    def __init__(self, daemon):
        super().__init__(daemon=True)
        self.target, self.stop, self.first_shown = daemon, threading.Event(), {}

    def run(self) -> None:
        while not self.stop.wait(0.2):
            try:
                shown = verdicts_on_the_page(self.target)
            except Exception:  # the store may be mid-creation, or the daemon restarting
                continue
            for server, entry in shown.items():
                if entry["verdict"] == "harvester":
                    self.first_shown.setdefault(server, time.time())


def page(daemon):
    """The status page's own app over the daemon's store (what a browser on the LAN reads)."""
    from appliance.web import create_app
    return create_app(daemon.db_path, lan_only=False).test_client()


def verdicts_on_the_page(daemon) -> dict[str, dict]:
    return {s["server"]: s for s in page(daemon).get("/api/servers").get_json()["servers"]}


def first_touch(daemon, server: str) -> float | None:
    store = daemon.store()
    try:
        return store.db.execute("SELECT min(t.first_ts) FROM touches t JOIN probes p ON p.id = t.probe_id "
                                "WHERE p.server = ?", (server,)).fetchone()[0]
    finally:
        store.close()


def test_the_daemon_waited_for_the_clock_and_probes_every_server(lab_daemon):
    lab, daemon = lab_daemon
    servers = [*lab.honest, *lab.harvesters.values()]
    daemon.wait_for(lambda s: {p["server"] for p in s.probes() if p["sent_at"]} >= set(servers), timeout=60)
    assert "clock: synchronised to" in daemon.log_tail(80)
    store = daemon.store()
    try:
        assert store.status()["clock"]["synchronised"] is True
        assert {p["reach"] for p in store.probes()} == {"pinholes"}
    finally:
        store.close()


@pytest.mark.parametrize("name", ["harv", "hping", "hsyn"])
def test_each_kind_of_harvester_is_confirmed_on_the_page_within_seconds_of_its_first_touch(lab_daemon, name):
    lab, daemon = lab_daemon
    server = lab.harvesters[name]
    deadline = time.monotonic() + 60
    while server not in daemon.page_watcher.first_shown:
        if time.monotonic() > deadline:
            pytest.fail(f"{name} ({server}) not confirmed within 60 s:\n{daemon.log_tail()}")
        time.sleep(0.2)
    shown = verdicts_on_the_page(daemon)[server]
    touched = first_touch(daemon, server)
    delay = daemon.page_watcher.first_shown[server] - touched
    print(f"\n{name}: touched {shown['min_lag']:.1f} s after its probe, on the page {delay:.1f} s after the touch")
    assert delay <= FLUSH_EVERY + 2  # stored at the next flush, on the page at once
    assert shown["touched_probes"] == 1


def test_the_ping_and_syn_harvesters_were_caught_by_what_they_sent(lab_daemon):
    lab, daemon = lab_daemon
    store = daemon.store()
    try:
        rows = {server: store.db.execute(
            "SELECT t.proto, t.dport, t.packets FROM touches t JOIN probes p ON p.id = t.probe_id WHERE p.server=?",
            (server,)).fetchall() for server in (lab.harvesters["hping"], lab.harvesters["hsyn"])}
    finally:
        store.close()
    assert [tuple(r) for r in rows[lab.harvesters["hping"]]] == [("ICMPv6", 128, 1)]  # one echo request
    assert [tuple(r) for r in rows[lab.harvesters["hsyn"]]] == [("TCP", 8080, 1)]     # one SYN


def test_the_second_wave_from_another_64_is_recorded_against_the_same_probe(lab_daemon):
    lab, daemon = lab_daemon
    second = ipaddress.ip_network(lab.scanner_nets[1])

    def both_waves(store):
        rows = store.db.execute("SELECT t.src, t.src_net, p.server FROM touches t JOIN probes p ON p.id = t.probe_id "
                                "WHERE p.server = ?", (lab.harvesters["harv"],)).fetchall()
        nets = {ipaddress.ip_address(r[0]) in second for r in rows}
        return rows if nets == {True, False} else None
    rows = daemon.wait_for(both_waves, timeout=60)
    # One operator's two /64s are one family at detect.family_prefix = 48.
    assert {r[1] for r in rows} == {str(ipaddress.ip_network(lab.scanner_nets[0]).supernet(new_prefix=48))}
    # Only what the pinholes let through reached the probe address: the router dropped the rest.
    store = daemon.store()
    try:
        ports = {tuple(r) for r in store.db.execute(
            "SELECT DISTINCT t.proto, t.dport FROM touches t JOIN probes p ON p.id = t.probe_id WHERE p.server = ?",
            (lab.harvesters["harv"],))}
    finally:
        store.close()
    assert ports == {("TCP", 8080), ("TCP", 3389), ("UDP", 1900)}


def test_the_router_holds_a_pinhole_per_port_for_each_watched_probe_address(lab_daemon):
    lab, daemon = lab_daemon
    store = daemon.store()
    try:
        watched = {row["address"] for row in store.watched_probes(time.time())}
        granted = store.db.execute("SELECT count(*) FROM pinholes "
                                   "WHERE uid IS NOT NULL AND error IS NULL").fetchone()[0]
    finally:
        store.close()
    rules = lab.pinhole_rules()
    assert watched and granted == 3 * len(watched)
    for address in watched:
        held = sorted(rule.split(" -p ")[1] for rule in rules if f"-d {address}/128" in rule)
        assert held == ["tcp -m tcp --dport 3389 -j ACCEPT", "tcp -m tcp --dport 8080 -j ACCEPT",
                        "udp -m udp --dport 1900 -j ACCEPT"], rules
    assert "reachability: pinholes: the router grants pinholes (tcp/8080, tcp/3389, udp/1900)" in daemon.status_text()


def test_the_late_harvester_is_confirmed_when_it_comes(lab_daemon):
    lab, daemon = lab_daemon
    server = lab.harvesters["hlate"]
    assert verdicts_on_the_page(daemon)[server]["verdict"] == "watching"  # before it comes: no claim either way
    daemon.wait_for(lambda s: first_touch_of(s, server), timeout=LATE + 90)
    shown = verdicts_on_the_page(daemon)[server]
    assert shown["verdict"] == "harvester" and shown["min_lag"] >= LATE


def first_touch_of(store, server):
    return store.db.execute("SELECT min(t.first_ts) FROM touches t JOIN probes p ON p.id = t.probe_id "
                            "WHERE p.server = ?", (server,)).fetchone()[0]


def test_honest_servers_are_watched_then_clean_once_their_window_passed_reachable(lab_daemon):
    lab, daemon = lab_daemon
    store = daemon.store()
    try:
        ends = max(row["expires"] for row in store.probes() if row["server"] in lab.honest)
    finally:
        store.close()
    early = verdicts_on_the_page(daemon)
    if time.time() < ends:
        assert {early[h]["verdict"] for h in lab.honest} == {"watching"}
    # Each window ends, its pinholes are given back within a maintenance round (a quarter lease).
    daemon.wait_for(lambda s: time.time() > ends + 5 and all(
        v["verdict"] == "clean" for v in s.server_verdicts() if v["server"] in lab.honest), timeout=OBSERVATION + 90)
    shown = verdicts_on_the_page(daemon)
    for honest in lab.honest:
        assert shown[honest]["verdict"] == "clean"
        assert sorted(shown[honest]["clean_open_to"]) == ["tcp/3389", "tcp/8080", "udp/1900"]
        assert shown[honest]["touched_probes"] == 0 and shown[honest]["candidate_scans"] == 0
    store = daemon.store()
    try:
        blamed = {row[0] for row in store.db.execute("SELECT DISTINCT dst FROM candidates")}
        honest_addresses = {p["address"] for p in store.probes() if p["server"] in lab.honest}
    finally:
        store.close()
    assert not blamed & set(lab.honest)
    daemon.wait_for(lambda s: not any(a in rule for rule in lab.pinhole_rules() for a in honest_addresses), timeout=60)


def test_a_killed_daemon_restarts_and_loses_nothing_already_stored(lab_daemon):
    lab, daemon = lab_daemon

    def snapshot():
        db = sqlite3.connect(f"file:{daemon.db_path}?mode=ro", uri=True)
        try:
            return {"probes": set(db.execute("SELECT id, address, server, kind, sent_at FROM probes")),
                    "pool_members": set(db.execute("SELECT pool, address, first_seen FROM pool_members")),
                    "touches": set(db.execute("SELECT probe_id, src, proto, dport, first_ts FROM touches")),
                    "scans": set(db.execute("SELECT id, kind, scanner, target, start FROM scans"))}
        finally:
            db.close()

    before = snapshot()
    assert before["touches"] and before["probes"]
    daemon.kill()
    killed_at = time.time()
    daemon.start()
    daemon.wait_for(lambda s: any(g["reason"] == "daemon-down" for g in s.gaps())
                    and s.status().get("heartbeat", 0) > killed_at, timeout=30)
    after = snapshot()
    for table in before:
        assert before[table] <= after[table], table
    db = sqlite3.connect(daemon.db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM gaps WHERE end < start").fetchone()[0] == 0
    finally:
        db.close()


def test_nothing_the_appliance_sent_left_the_lab(lab_daemon):
    lab, daemon = lab_daemon
    counters = lab.ns.exec(lab.lan_ns, ["ip6tables", "-L", "OUTPUT", "-v", "-n", "-x"]).stdout
    leak = [line for line in counters.splitlines() if "hw-leak" in line]
    assert leak and int(leak[0].split()[0]) == 0, counters
    store = daemon.store()
    try:
        contacts = store.db.execute("SELECT DISTINCT src, dst FROM contacts").fetchall()
    finally:
        store.close()
    assert contacts
    link_local = ipaddress.ip_network("fe80::/10")  # the UPnP search of the router: it cannot leave the link
    for src, dst in contacts:
        assert all(ipaddress.ip_address(a) in LAB_NET or ipaddress.ip_address(a) in link_local for a in (src, dst)), \
            (src, dst)


def test_sigterm_stops_cleanly_and_the_next_start_records_the_pause(lab_daemon):
    lab, daemon = lab_daemon
    assert daemon.stop() == 0
    assert "stopped cleanly" in daemon.log_tail()
    store = daemon.store()
    try:
        assert store.status()["clean_stop"] is True
    finally:
        store.close()
    stopped_at = time.time()
    daemon.start()
    gap = daemon.wait_for(lambda s: [g for g in s.gaps() if g["reason"] == "daemon-stopped" and g["end"] >= stopped_at],
                          timeout=30)
    assert gap[0]["start"] <= stopped_at
