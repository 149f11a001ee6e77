"""The appliance as an exposed host: the router lets every inbound packet through (a Fritz!Box's
"open firewall for this device", a DMZ), as `reachability.router = "open"` declares.

Everything a harvester sends reaches the probe address here, so this module shows the touches a
pinhole would not let through: one SYN to 443, and a scan spread over 20 sources in 20 /64s of one
/48, five ports each (no source makes a scan; every one touches). Beside them: a stranger's scan of
the appliance's stable address, which sent nothing and so blames no one; a 2000-port burst taken
whole; the appliance's own services answering the LAN only.
"""
from __future__ import annotations

import ipaddress
import json
import sys
import time

import pytest

from tests.lab.appliance import SERVICE_PORTS, ApplianceDaemon, write_config

PLANS = {
    "hsyn": [{"delay": 2, "scanner": "scan2", "kind": "syn", "port": 443}],
    "hspread": [{"delay": 2, "scanner": "spread", "kind": "spread", "ports": list(range(1, 101)), "per_source": 5}],
}


@pytest.fixture(scope="module")
def lab_daemon(tmp_path_factory, start_lab):
    with start_lab(tmp_path_factory.mktemp("lab"), harvesters=PLANS, router="open") as lab:
        work = tmp_path_factory.mktemp("appliance")
        state = work / "state"
        # A webhook receiver beside the daemon, on the appliance's own loopback: what it is told.
        told = work / "told.jsonl"
        receiver = lab.ns.popen(lab.lan_ns, [sys.executable, "-c", RECEIVER, str(told)])
        config = write_config(lab, work / "config.toml", state_dir=state, router="open", family_prefix=48,
                              observation=3600, notify=(f"json://[::1]:{RECEIVER_PORT}/hook",))
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        daemon.told = told
        daemon.wait_for(lambda store: store.status().get("firewall", {}).get("in_force"), timeout=30)
        listeners = [lab.ns.popen(lab.lan_ns, ["python3", "-c", LISTENER, str(port)]) for port in SERVICE_PORTS]
        try:
            yield lab, daemon
        finally:
            daemon.stop()
            receiver.kill()
            for listener in listeners:
                listener.kill()


RECEIVER_PORT = 8765
RECEIVER = """
import http.server, json, socket, sys
class Server(http.server.HTTPServer):
    address_family = socket.AF_INET6
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[1], "a") as out:
            out.write(json.dumps(json.loads(body)) + "\\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
Server(("::1", %d), Handler).serve_forever()
""" % RECEIVER_PORT

LISTENER = """
import socket, sys
server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("::", int(sys.argv[1])))
server.listen(8)
server.settimeout(300)
while True:
    connection, _ = server.accept()
    connection.sendall(b"hello from the appliance\\n")
    connection.close()
"""

CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as c:
        print(c.recv(64).decode().strip())
except OSError as exc:
    print("refused-or-timeout", type(exc).__name__)
"""


def verdicts(daemon) -> dict[str, dict]:
    store = daemon.store()
    try:
        return {v["server"]: v for v in store.server_verdicts()}
    finally:
        store.close()


def probe_page(daemon, server: str) -> dict:
    from appliance.web import create_app
    store = daemon.store()
    try:
        (probe_id,) = [p["id"] for p in store.probes() if p["server"] == server]
    finally:
        store.close()
    return create_app(daemon.db_path, lan_only=False).test_client().get(f"/api/probes/{probe_id}").get_json()


def test_one_syn_to_443_confirms_its_harvester(lab_daemon):
    lab, daemon = lab_daemon
    server = lab.harvesters["hsyn"]
    daemon.wait_for(lambda s: verdicts(daemon).get(server, {}).get("verdict") == "harvester", timeout=60)
    page = probe_page(daemon, server)
    assert [(s["src"], s["packets"], s["ports"][0]["proto"], s["ports"][0]["port"]) for s in page["sources"]] == [
        (lab.addresses["scan2"], 1, "TCP", 443)]
    assert page["reach"] == "declared"


def test_a_scan_spread_over_twenty_64s_is_one_harvester_one_family_every_source_shown(lab_daemon):
    lab, daemon = lab_daemon
    server = lab.harvesters["hspread"]
    daemon.wait_for(lambda s: len(probe_page(daemon, server)["sources"]) == len(lab.spread_sources), timeout=90)
    assert verdicts(daemon)[server]["verdict"] == "harvester"
    page = probe_page(daemon, server)
    assert sorted(s["src"] for s in page["sources"]) == sorted(lab.spread_sources)
    assert page["families"] == [str(ipaddress.ip_network(f"{lab.spread_sources[0]}/48", strict=False))]
    assert all(len(s["ports"]) == 5 for s in page["sources"])
    assert page["scans"] == []  # no source made a scan (5 ports each): only the touches show it


def test_a_strangers_scan_of_the_stable_address_blames_no_honest_server(lab_daemon):
    lab, daemon = lab_daemon
    stable = lab.lan_address()
    done = lab.ns.exec(lab.ns.name("scan1"), ["nmap", "-6", "-Pn", "-n", "-sS", "-T5", "--max-retries", "0",
                                               "-p", "1-200", stable], timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    scan = daemon.wait_for(lambda s: s.db.execute("SELECT * FROM scans WHERE target=? AND scanner=?",
                                                  (stable, lab.addresses["scan1"])).fetchone(), timeout=30)
    time.sleep(4)  # a flush or two: the scan judged and refreshed
    store = daemon.store()
    try:
        scan = store.db.execute("SELECT * FROM scans WHERE id=?", (scan["id"],)).fetchone()
        blamed = {row[0] for row in store.db.execute("SELECT DISTINCT dst FROM candidates WHERE scan_id=?",
                                                     (scan["id"],))}
    finally:
        store.close()
    assert scan["attribution"] == "unattributed" and not blamed  # the stable address never sends
    shown = verdicts(daemon)
    for honest in lab.honest:
        assert shown[honest]["verdict"] == "watching", shown[honest]


def test_a_burst_of_1000_tcp_and_1000_udp_ports_is_captured_complete(lab_daemon):
    lab, daemon = lab_daemon
    target = lab.lan_address()
    started = time.time()
    # From scan2, which has not scanned this address before: the scan is the burst alone.
    done = lab.ns.exec(lab.ns.name("scan2"), ["nmap", "-6", "-Pn", "-n", "-sS", "-sU", "-T5", "--max-retries", "0",
                                               "--min-rate", "20000", "--host-timeout", "30s",
                                               "-p", "T:1-1000,U:1-1000", target], timeout=60, check=False)
    assert done.returncode == 0, done.stderr

    def burst(store):
        row = store.db.execute("SELECT * FROM scans WHERE target=? AND scanner=? AND end>=? ORDER BY port_count DESC",
                               (target, lab.addresses["scan2"], started)).fetchone()
        return row if row and row["port_count"] >= 2000 else None
    scan = daemon.wait_for(burst, timeout=30)
    protocols = json.loads(scan["protocols"])
    print(f"\nburst: {scan['packets']} packets, {scan['port_count']} ports in {scan['end'] - scan['start']:.3f} s")
    assert protocols == {"TCP": 1000, "UDP": 1000}
    store = daemon.store()
    try:
        lost = store.db.execute("SELECT count(*) FROM gaps WHERE reason IN ('overrun', 'seq-gap', 'flood-limit', "
                                "'flood', 'flood-table', 'probe-flood', 'episode-cap')").fetchone()[0]
        assert lost == 0
    finally:
        store.close()


def test_services_answer_the_lan_and_not_the_internet(lab_daemon):
    lab, daemon = lab_daemon
    target = lab.lan_address()
    for port in SERVICE_PORTS:
        from_lan = lab.ns.python(lab.cli_ns, CONNECT, target, str(port)).stdout.strip()
        from_outside = lab.ns.python(lab.ns.name("scan1"), CONNECT, target, str(port)).stdout.strip()
        assert from_lan == "hello from the appliance", (port, from_lan)
        assert from_outside.startswith("refused-or-timeout"), (port, from_outside)


def test_an_open_router_is_taken_as_declared_and_never_asked(lab_daemon):
    lab, daemon = lab_daemon
    reach = daemon.wait_for(lambda s: s.status().get("prober", {}).get("reachability"), timeout=60)
    store = daemon.store()
    try:
        pinholes = store.db.execute("SELECT count(*) FROM pinholes").fetchone()[0]
    finally:
        store.close()
    assert reach["state"] == "declared open" and reach["advice"] == [] and pinholes == 0
    # The passive sign of an open door: the harvesters' scans, counted per protocol in the status.
    # The spreading harvester alone sends 100 SYNs (20 sources, 5 ports each).
    daemon.wait_for(lambda s: s.status().get("inbound_24h", {}).get("TCP", 0) >= 100, timeout=60)


def test_each_confirmed_harvester_is_told_once(lab_daemon):
    lab, daemon = lab_daemon
    harvesters = {lab.harvesters[name] for name in PLANS}

    def told():
        if not daemon.told.exists():
            return []
        return [json.loads(line)["title"] for line in daemon.told.read_text().splitlines()]

    def all_told(store):
        titles = told()
        return titles if all(any(address in title for title in titles) for address in harvesters) else None
    daemon.wait_for(all_told, timeout=120)
    time.sleep(35)  # another check of the notifier: nothing is told twice
    titles = told()
    for address in harvesters:
        assert sum(address in title for title in titles) == 1, titles
    assert all(title.endswith("harvests IPv6 addresses") for title in titles), titles
