"""The status page through Flask's test client: every page and document, the empty, missing and
analyze-only stores, hostile strings, the LAN-only rule, bad input and the security headers."""
from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from markupsafe import escape

from appliance.detect.scans import PORTSCAN, Scan
from appliance.store.db import Store
from appliance.web import create_app
from appliance.web.hosts import OwnNamesOnly
from appliance.words import LABELS, Verdict
from tests import web_store as ws

LOCAL = "::1"
HTML_PAGES = ["/", "/servers", "/scans", "/scanners", "/probes", "/about"]
API = ["/api/", "/api/overview", "/api/servers", "/api/scans", "/api/scanners", "/api/probes", "/api/harvesters"]
EXPORTS = ["/export/harvesters.csv", "/export/harvesters.json", "/metrics"]


# -- stores and clients --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    path = tmp_path_factory.mktemp("realistic") / "harvestwatch.sqlite"
    facts = ws.fill_realistic_store(path)
    return str(path), facts


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "harvestwatch.sqlite"
    ws.fill_realistic_store(path, hostile=True)
    return str(path)


@pytest.fixture(scope="module")
def empty(tmp_path_factory):
    path = tmp_path_factory.mktemp("empty") / "harvestwatch.sqlite"
    Store(str(path)).close()
    return str(path)


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory):
    path = tmp_path_factory.mktemp("analyzed") / "analyze.sqlite"
    truth = ws.fill_analyze_only_store(path)
    return str(path), truth


class Client:
    """A test client that comes from one remote address (the LAN check reads REMOTE_ADDR)."""

    def __init__(self, db_path: str, remote: str = LOCAL, **options):
        self.app = create_app(db_path, **options)
        self.client = self.app.test_client()
        self.remote = remote

    def get(self, url: str, remote: str | None = None, **kwargs):
        return self.client.get(url, environ_base={"REMOTE_ADDR": remote or self.remote}, **kwargs)

    def open(self, url: str, method: str):
        return self.client.open(url, method=method, environ_base={"REMOTE_ADDR": self.remote})

    def html(self, url: str) -> str:
        response = self.get(url)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:500])
        assert response.mimetype == "text/html"
        return response.get_data(as_text=True)

    def json(self, url: str):
        response = self.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert response.mimetype == "application/json"
        return response.get_json()


@pytest.fixture(scope="module")
def site(realistic):
    return Client(realistic[0])


def main_of(html: str) -> str:
    """The page's own content (<main>), without the navigation and footer."""
    return html[html.index("<main"):html.index("</main>")]


def text_of(html: str) -> str:
    """Roughly what a reader sees: block tags become spaces, inline tags vanish, whitespace collapses."""
    blocks = re.sub(r"</?(?:br|p|div|section|pre|ul|li|dl|dt|dd|table|thead|tbody|tr|th|td|h\d)\b[^>]*>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", blocks)).strip()


def row_with(html: str, needle: str) -> str:
    """The table row that holds `needle`."""
    rows = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", html, re.S) if needle in row]
    assert len(rows) == 1, (needle, rows)
    return rows[0]


def scan_ids(site: Client, **filters) -> list[int]:
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    return [s["id"] for s in site.json(f"/api/scans?{query}")["scans"]]


# -- the realistic store ---------------------------------------------------------------------------
@pytest.mark.parametrize("url", HTML_PAGES + API + EXPORTS + ["/static/style.css", "/static/page.js"])
def test_every_route_answers(site, url):
    response = site.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.data


def test_overview_leads_with_the_harvester_and_what_to_do(site, realistic):
    _, facts = realistic
    html = main_of(site.html("/"))
    said = text_of(html)
    # The answer first, then one card per confirmed harvester, before anything about the plumbing.
    assert said.startswith("Am I being harvested? Yes: 1 NTP server has passed this appliance's addresses on")
    card = html[html.index('<article class="card harvester-card">'):html.index("</article>")]
    assert html.index("harvester-card") < html.index("Is it working?") < html.index('<dl class="health">')
    card_text = text_of(card)
    assert f"{ws.HARVESTER} is a confirmed harvester" in card_text
    assert f"Named by {ws.POOL_0}, {ws.POOL_1}." in card_text
    assert "was reached from the internet 5.1 s later" in card_text
    assert "1 of its 1 probe addresses touched, by 2 sources in 2 scanner families (136 packets, 2 scans)" in card_text
    assert f"block {ws.HARVESTER} (UDP port 123) on your router" in card_text
    # Its evidence, each link leading to what it names.
    assert f'href="/servers?server={ws.HARVESTER}"' in card
    assert f'href="/probes/{facts["harvester_probe_id"]}"' in card
    assert f'href="/probes?server={ws.HARVESTER}"' in card
    assert f'href="/scans?server={ws.HARVESTER}"' in card and 'href="/export/harvesters.csv"' in card
    for family in ("2001:db8:5ca0:10::/64", "2001:db8:5ca1:10::/64"):
        assert f'href="/scans?family={family}"' in card
    # Times are <time> elements with the exact UTC time: page.js makes them local and relative.
    assert re.search(r'Caught <time datetime="(\d{4}-\d\d-\d\d)T(\d\d:\d\d):[\d.]+Z" title="\1T[\d:.]+Z" '
                     r'data-style="ago">\1 \2 UTC</time>', card)
    # The servers still watched, then health in one line, the parts folded below it.
    watching = text_of(html[html.index('<ul class="watching">'):])
    assert watching.startswith(f"{ws.HONEST_1} {ws.POOL_0} · until")
    assert html.index("watching") > html.index("</article>")
    assert "All working: the daemon runs, the clock is synchronised, the firewall is in force" in said
    health = text_of(html[html.index('<dl class="health">'):html.index("</dl>")])
    assert "Daemon running · last heartbeat" in health
    assert "Firewall rules in force" in health and "120 packets dropped unlogged by the flood limits" in health
    assert "Privacy addresses in force" in health
    assert f"prefix {ws.PREFIX} · 4 live probe addresses (at most 500)" in health
    assert "agrees with the pools: 3.4 ms (median of 3 NTP replies)" in health
    assert "3 lost, 0 overruns, 1 malformed" in health
    assert "not-netfilter 14, truncated 2" in health
    assert "Gaps 3 times the capture could not see everything" in health
    assert "flood-limit, 120 packets" in health and "seq-gap, 3 packets" in health
    assert "Clock synchronised to 2001:db8:e625:1::1 (chronyd, stratum 2)" in health
    assert ("Reachable from the internet declared open: the configuration says the router lets all inbound IPv6 "
            "through") in health
    assert "Unsolicited packets from the internet, last 24 h: TCP 120, UDP 16" in health
    assert "cap 512 MB, 3000 MB free on the disk" in health and "DISK FULL" not in health
    assert "ordinary records kept 90 days, evidence always" in health
    assert "deleted 40 contacts, 12 scans" in health
    assert ("Security updates on · last run 2026-" in health
            and "a reboot is waiting (linux-image-6.12.48+deb13-arm64): it will happen at 04:00" in health)
    # Every tile is a link to the list it counts.
    for number, label, href in ((1, "confirmed harvester", "/servers?verdict=harvester"),
                                (1, "suspect", "/servers?verdict=suspect"),
                                (1, "being watched", "/servers?verdict=watching"),
                                (1, "clean server", "/servers?verdict=clean"),
                                (1, "unverified", "/servers?verdict=unverified"), (5, "scans", "/scans"),
                                (6, "scanners in 5 families", "/scanners"), (6, "probes sent", "/probes")):
        assert f'<a href="{href}"><b>{number}</b>{label}</a>' in html
    # The chart: bars with their counts, a labelled time axis and the peak.
    assert re.search(r'<rect class="scan" [^>]*><title>\d+ scans?</title>', html)
    assert re.search(r'<rect class="probe" [^>]*><title>\d+ probes?</title>', html)
    axis = html[html.index('<div class="x-axis">'):]
    assert axis[:axis.index("</div>")].count("<time ") == 5
    assert 'data-refresh="30"' in site.html("/")


def test_the_health_line_names_what_is_wrong_and_its_fix(tmp_path):
    path = tmp_path / "harvestwatch.sqlite"
    ws.fill_realistic_store(path)
    store = Store(str(path))
    try:
        status = store.status()
        store.set_status({"heartbeat": status["heartbeat"] - 3600,
                          "firewall": {**status["firewall"], "in_force": False, "problems": ["INPUT has no jump"]}})
    finally:
        store.close()
    said = text_of(main_of(Client(str(path)).html("/")))
    assert "All working" not in said
    assert "2 things are wrong: The daemon is not running (last heard from 2026-" in said
    assert "Start it: sudo systemctl start harvestwatch" in said
    assert "The firewall rules are not in force: scans are not being logged." in said
    assert "INPUT has no jump" in said
    assert Client(str(path)).json("/api/overview")["health"]["state"] == "problems"


def test_a_reboot_that_waits_for_nobody_and_updates_switched_off_are_problems(tmp_path):
    path = tmp_path / "harvestwatch.sqlite"
    ws.fill_realistic_store(path)
    store = Store(str(path))
    try:
        updates = store.status()["updates"]
        store.set_status({"updates": {**updates, "auto_reboot": False}})
        said = text_of(main_of(Client(str(path)).html("/")))
        assert "All working" not in said
        assert ("A reboot is waiting for an update to take effect (linux-image-6.12.48+deb13-arm64). sudo reboot"
                in said)
        store.set_status({"updates": {**updates, "enabled": False, "reboot_required": False}})
        said = text_of(main_of(Client(str(path)).html("/")))
        assert "Security updates are off: unattended-upgrades is installed but not switched on." in said
        assert "Security updates OFF" in said
    finally:
        store.close()


def test_all_working_is_said_only_of_what_the_daemon_reported(tmp_path):
    path = tmp_path / "harvestwatch.sqlite"
    ws.fill_realistic_store(path)
    store = Store(str(path))
    try:
        prober = store.status()["prober"]
        store.set_status({"prober": {**prober, "reachability": {**prober["reachability"], "state": "not asked yet",
                                                                "detail": "no probe has been sent yet"}},
                          "privacy": None})
    finally:
        store.close()
    said = text_of(main_of(Client(str(path)).html("/")))
    assert "All working" not in said
    assert ("Nothing is wrong that the daemon has seen, but it has not yet reported the privacy addresses or "
            "whether scans can reach this appliance.") in said


def test_servers_page_shows_each_verdict(site, realistic):
    _, facts = realistic
    html = main_of(site.html("/servers"))
    harvester = text_of(row_with(html, f"<code>{ws.HARVESTER}</code>"))
    assert harvester.startswith("confirmed harvester")
    assert f"{ws.POOL_0}, {ws.POOL_1}" in harvester
    assert "a probe address was touched 5.1 s after its probe (1 probe, 1 touched, 136 packets)" in harvester
    assert 'class="verdict-harvester"' in row_with(html, ws.HARVESTER)
    assert text_of(row_with(html, ws.SUSPECT)).startswith("suspect")
    assert "preceded 2 scans of ordinary addresses, not yet cleared" in text_of(row_with(html, ws.SUSPECT))
    watching = text_of(row_with(html, ws.HONEST_1))
    assert watching.startswith("watching") and re.search(r"watching its probe address, 1 d \d+ h left \(2 probes\)",
                                                         watching)
    assert "(ntp 1, udp123 1)" in row_with(html, ws.HONEST_1)
    clean = text_of(row_with(html, ws.HONEST_2))
    assert clean.startswith("clean") and "a whole window with no touch, open to everything (router set open)" in clean
    assert "(ntp 1, udp321 1)" in row_with(html, ws.HONEST_2)
    unverified = text_of(row_with(html, ws.UNVERIFIED))
    assert unverified.startswith("unverified")
    assert "scans could not reach this appliance: the router lets nothing unsolicited in (1 probe)" in unverified
    assert text_of(row_with(html, ws.UNPROBED)).startswith("unprobed")
    # Most serious first.
    order = [html.index(f"<code>{server}</code>") for server in (ws.HARVESTER, ws.SUSPECT, ws.UNVERIFIED, ws.HONEST_1,
                                                                  ws.HONEST_2, ws.UNPROBED)]
    assert order == sorted(order)
    assert 'href="/export/harvesters.csv"' in html and 'href="/export/harvesters.json"' in html
    # The Overview's tiles and cards lead here, filtered.
    for verdict, server in ((Verdict.HARVESTER, ws.HARVESTER), (Verdict.WATCHING, ws.HONEST_1)):
        doc = site.json(f"/api/servers?verdict={verdict}")
        assert [s["server"] for s in doc["servers"]] == [server] and doc["filters"] == {"verdict": verdict}
        page = text_of(main_of(site.html(f"/servers?verdict={verdict}")))
        assert f"Showing the servers whose verdict is {LABELS[verdict]}: 1 server" in page
    assert [s["server"] for s in site.json(f"/api/servers?server={ws.SUSPECT}")["servers"]] == [ws.SUSPECT]
    assert site.json("/api/servers?server=2001:db8:dead::1")["servers"] == []
    assert "No server matches." in site.html("/servers?server=2001:db8:dead::1")
    assert site.get("/servers?verdict=evil").status_code == 400
    assert f'href="/scans?server={ws.HARVESTER}"' in row_with(html, f"<code>{ws.HARVESTER}</code>")


def test_scan_page_of_a_probe_address_is_certain_and_gives_the_lag(site, realistic):
    _, facts = realistic
    first, second = sorted(scan_ids(site, target=ws.PROBE_HARVESTER))
    html = main_of(site.html(f"/scans/{first}"))
    said = text_of(html)
    # One plain sentence first; the raw detection line kept below for the expert.
    assert said.startswith(f"Scan {first} {ws.SCANNER_1} tried 96 ports of {ws.PROBE_HARVESTER} (TCP 66, UDP 30) "
                           "in 0.6 s, ")
    assert (f"Certain. {ws.PROBE_HARVESTER} is the address of probe {facts['harvester_probe_id']}: it sent one packet "
            f"(ntp, UDP port 123) to {ws.HARVESTER} 5.1 s before the scan") in said
    assert said.index("Certain.") < said.index("SCAN DETECTED:")
    assert f"SRC={ws.SCANNER_1} DST={ws.PROBE_HARVESTER}" in html[html.index('<details id="raw">'):]
    assert f'href="/probes/{facts["harvester_probe_id"]}"' in html and f'href="/servers?server={ws.HARVESTER}"' in html
    assert f'href="/scans?scanner={ws.SCANNER_1}"' in html and 'href="/scans?family=2001:db8:5ca0:10::/64"' in html
    assert "Trigger candidates certain" in said
    trigger = text_of(row_with(html, f"[{ws.HARVESTER}]:123</code> UDP"))
    assert trigger.startswith("#1 5.1 s ")  # rank, lag
    assert f"[{ws.PROBE_HARVESTER}]:40123" in trigger
    assert "These endpoints across all scans" in said
    # Ports as ranges, once, under Ports.
    ports = said[said.index(" Ports ") + 7:]
    assert ports.startswith("TCP 21–23, 25, 53, 80, 81, 110, 111, 135") and ", UDP 53, 67, 69, 111, 123" in ports
    # The second wave, hours later from another family: the ledger's probe packet is its trigger.
    later = text_of(main_of(site.html(f"/scans/{second}")))
    assert "3 h 0 min before the scan" in later and "#1 3 h 0 min" in later


def test_scan_page_of_the_lans_own_address_lists_its_trigger_packets(site):
    (scan_id,) = scan_ids(site, target=ws.LAN_TEMP_1)
    html = main_of(site.html(f"/scans/{scan_id}"))
    said = text_of(html)
    assert "Trigger candidates candidate" in said and "Certain" not in said
    assert (f"Before the scan {ws.LAN_TEMP_1} contacted 3 endpoints; the most likely trigger is {ws.WEB} TCP 443, "
            "40.0 s before") in said
    rows = re.findall(r'<tr><td>#\d+</td><td data-label="Lag">([\d.]+) s</td>.*?</tr>', html, re.S)
    assert sorted(rows) == ["11.9", "12.4", "40.0"]
    assert f"[{ws.SUSPECT}]:123</code> UDP" in html and f"[{ws.RESOLVER}]:53</code> UDP" in html
    endpoint = text_of(row_with(html, f"[{ws.SUSPECT}]:123/UDP"))
    assert endpoint == f"[{ws.SUSPECT}]:123/UDP 2 0 3 66.7 % 11.9 s / 21.4 s"


def test_unattributed_scan_and_sweep_pages(site):
    (scan_id,) = scan_ids(site, attribution="unattributed", kind="portscan")
    said = text_of(main_of(site.html(f"/scans/{scan_id}")))
    assert f"DST={ws.STABLE}" in said
    assert f"{ws.STABLE} sent nothing in the minutes before the scan: nothing it did can have triggered it." in said
    (sweep_id,) = scan_ids(site, kind="sweep")
    said = text_of(main_of(site.html(f"/scans/{sweep_id}")))
    assert said.startswith(f"Sweep {sweep_id} {ws.SWEEPER} tried 9 addresses of yours (TCP 1) in 4.0 s")
    assert "2001:db8:e625:1::20, 2001:db8:e625:1::21" in said and "Ports TCP 22 " in said
    assert "SWEEP DETECTED:" in said


def test_scans_list_filters_and_pages(site):
    html = main_of(site.html("/scans"))
    assert "Scans A scan is one source" in text_of(html) and "6 scans Started" in text_of(html)
    assert html.count('<span class="badge certain">certain</span>') == 2  # one word for it: page, filter, JSON
    assert html.count('<span class="badge candidate">candidate</span>') == 2
    assert f'<a href="/servers?server={ws.HARVESTER}"><code>{ws.HARVESTER}</code></a> UDP 123, 5.1 s before' in html
    for filters, count in (({"attribution": "certain"}, 2), ({"attribution": "candidate"}, 2),
                           ({"kind": "sweep"}, 1), ({"scanner": ws.SCANNER_4}, 1),
                           ({"family": "2001:db8:5ca2:10::/64"}, 2), ({"target": ws.PROBE_HARVESTER}, 2),
                           ({"target": ws.PROBE_HARVESTER, "scanner": ws.SCANNER_2}, 1),
                           ({"server": ws.HARVESTER}, 2), ({"server": ws.HONEST_1}, 0),
                           ({"scanner": "2001:db8:dead::1"}, 0)):
        doc = site.json("/api/scans?" + "&".join(f"{k}={v}" for k, v in filters.items()))
        assert doc["total"] == len(doc["scans"]) == count, filters
        assert doc["filters"] == filters
        page = main_of(site.html("/scans?" + "&".join(f"{k}={v}" for k, v in filters.items())))
        assert f"{count} scan{'' if count == 1 else 's'} match{'es' if count == 1 else ''}" in text_of(page)
    # A filter is shown back in the form; an address is compared in its compressed form.
    doc = site.json("/api/scans?scanner=2001:0db8:5ca3:0010:0000:0000:0000:0001")
    assert doc["total"] == 1 and doc["filters"] == {"scanner": ws.SCANNER_4}
    assert f'name="scanner" value="{ws.SCANNER_4}"' in site.html(f"/scans?scanner={ws.SCANNER_4}")
    # Pages beyond the last are empty, not errors.
    doc = site.json("/api/scans?page=3")
    assert doc["page"] == 3 and doc["scans"] == [] and doc["pages"] == 1 and doc["total"] == 6
    assert "No scans." in site.html("/scans?page=3")
    assert "No scans match." in site.html("/scans?scanner=2001:db8:dead::1")


def test_scanners_page_groups_families_with_confirmed_names(site):
    html = main_of(site.html("/scanners"))
    said = text_of(html)
    assert f"{ws.SCANNER_1} {ws.RDNS} · 1 scan " in said
    assert said.count("of probe addresses") == 2
    assert f"{ws.SWEEPER} · 1 sweep" in said and "0 scans" not in said
    # Which harvester fed each family that reached a probe address.
    assert said.count(f"Fed by {ws.HARVESTER}: it reached probe addresses that only this server knew.") == 2
    assert html.count(f'href="/servers?server={ws.HARVESTER}"') == 2
    assert f'href="/scans?scanner={ws.SCANNER_3B}"' in html
    doc = site.json("/api/scanners")
    families = {f["family"]: f for f in doc["families"]}
    assert set(families) == {"2001:db8:5ca0:10::/64", "2001:db8:5ca1:10::/64", "2001:db8:5ca2:10::/64",
                             "2001:db8:5ca3:10::/64", "2001:db8:5ca4:10::/64"}
    assert [s["address"] for s in families["2001:db8:5ca2:10::/64"]["scanners"]] == [ws.SCANNER_3, ws.SCANNER_3B]
    names = {s["address"]: s["rdns"] for f in doc["families"] for s in f["scanners"]}
    assert names[ws.SCANNER_1] == ws.RDNS and names[ws.SCANNER_2] is None
    assert families["2001:db8:5ca0:10::/64"]["fed_by"] == [ws.HARVESTER]
    assert families["2001:db8:5ca2:10::/64"]["fed_by"] == []


def test_probes_page_is_the_ledger(site):
    html = main_of(site.html("/probes"))
    said = text_of(html)
    assert "7 probes, 4 addresses still watched · the prober is probing" in said
    assert f"prefix {ws.PREFIX}" in said
    # One line per round of probes: two servers in the next, one in the round after.
    rounds = re.findall(r"<li>(.*?)</li>", html[html.index("Next planned"):html.index("The ledger")])
    assert [re.findall(r"<code>([^<]+)</code>", line) for line in rounds] == \
        [[ws.HONEST_2, ws.SUSPECT], [ws.UNPROBED]], rounds
    never = text_of(row_with(html, ws.PROBE_NEVER_SENT))
    assert "never sent" in never and ws.NORMAL_PROBE_ERROR in never
    harvested = row_with(html, ws.PROBE_HARVESTER)
    assert 'class="verdict-harvester"' in harvested
    assert "stratum 2, offset 3.4 ms, delay 18.1 ms" in harvested
    assert harvested.endswith(">136 packets</a>, 2 scans</td></tr>") and ">declared open</td>" in harvested
    assert f'<a href="/servers?server={ws.HARVESTER}"><code>{ws.HARVESTER}</code></a>' in harvested
    assert "ended" in text_of(row_with(html, ws.PROBE_EXPIRED))
    assert '<span class="bad">no</span>' in row_with(html, ws.PROBE_UNREACHABLE)
    assert "udp321" in row_with(html, ws.PROBE_HONEST_2_UDP321)
    assert len(re.findall(r'<tr[^>]*><td><a href="/probes/\d+">Probe \d+</a>', html)) == 7
    # One server's probes, from its row on Servers.
    assert f'href="/probes?server={ws.HONEST_1}"' in site.html("/servers")
    mine = site.json(f"/api/probes?server={ws.HONEST_1}")
    assert {p["server"] for p in mine["probes"]} == {ws.HONEST_1} and len(mine["probes"]) == 2
    assert f"Showing the probes of {ws.HONEST_1}" in text_of(main_of(site.html(f"/probes?server={ws.HONEST_1}")))
    assert site.get("/probes?server=pool.ntp.org").status_code == 400


def test_a_probe_page_shows_every_source_that_touched_it(site, realistic):
    _, facts = realistic
    html = main_of(site.html(f"/probes/{facts['harvester_probe_id']}"))
    said = text_of(html)
    assert (f"2 sources in 2 scanner families touched this address: only {ws.HARVESTER} ever knew it, so it passed "
            "the address on.") in said
    first, second = text_of(row_with(html, ws.SCANNER_1)), text_of(row_with(html, ws.SCANNER_2))
    assert "2001:db8:5ca0:10::/64" in first and " 5.1 s 96 TCP 21–23, 25," in first
    assert "2001:db8:5ca1:10::/64" in second and " 3 h 0 min 40 " in second
    assert html.index(ws.SCANNER_1) < html.index(ws.SCANNER_2)  # by first touch
    assert f'href="/scans?scanner={ws.SCANNER_1}"' in html and f'href="/servers?server={ws.HARVESTER}"' in html
    doc = site.json(f"/api/probes/{facts['harvester_probe_id']}")
    assert [s["src"] for s in doc["sources"]] == [ws.SCANNER_1, ws.SCANNER_2]
    assert doc["families"] == ["2001:db8:5ca0:10::/64", "2001:db8:5ca1:10::/64"]
    assert doc["reach"] == "declared" and len(doc["scans"]) == 2
    assert site.get("/probes/999").status_code == 404


def test_a_probe_page_says_how_long_each_pinhole_was_held(tmp_path):
    """The store learns a pinhole's lease end when it is granted, when a renewal carries it to the
    window's end, and when it is given back; renewals between are in the prober's memory only (each
    would be a write to the card). The page must not read an older lease end as a pinhole gone."""
    path = tmp_path / "harvestwatch.sqlite"
    now, window = time.time(), 7 * 86400.0
    store = Store(str(path))
    ids = {}
    try:
        store.add_pool_members(ws.POOL_0, [ws.HONEST_2], now - 8 * 86400)
        for n, (name, sent) in enumerate([("renewing", now - 3 * 86400), ("to the end", now - 6.5 * 86400),
                                          ("given back", now - window - 3600), ("short", now - window - 7200),
                                          ("lost", now - 2 * 86400)]):
            ids[name] = store.plan_probe(f"2001:db8:1:1::7{n}", ws.HONEST_2, "udp321", 321, sent + window,
                                         planned=sent, reach="pinholes",
                                         pinholes=[("tcp", 8080, n + 1, sent - 0.2, sent + 86400, None)])
            store.record_probe(ids[name], sent_at=sent, sport=40000 + n)
        probe_of = {name: store.probe(probe_id) for name, probe_id in ids.items()}
        ends = {name: row["expires"] for name, row in probe_of.items()}
        store.update_pinholes(ends=[(ids["to the end"], "tcp", 8080, ends["to the end"])],
                              closes=[(ids["given back"], "tcp", 8080, ends["given back"], ends["given back"] + 30),
                                      (ids["short"], "tcp", 8080, ends["short"] - 3 * 86400, ends["short"] + 30)],
                              lost=[(ids["lost"], "tcp", 8080, now - 86400, "the router does not know this pinhole")])
    finally:
        store.close()
    site = Client(str(path))
    said = {name: text_of(main_of(site.html(f"/probes/{probe_id}"))) for name, probe_id in ids.items()}
    assert "tcp 8080: granted" in said["renewing"] and "renewed while the address is watched" in said["renewing"]
    assert "held only" not in said["renewing"] and "lost" not in said["renewing"]
    assert "held to the window's end" in said["to the end"]
    assert "held to the window's end" in said["given back"] and "given back" in said["given back"]
    assert "held only until" in said["short"]
    assert "lost" in said["lost"] and "does not know this pinhole" in said["lost"]
    doc = site.json(f"/api/probes/{ids['to the end']}")
    assert doc["pinholes"][0]["to_the_end"] is True and doc["pinholes"][0]["closed"] is None


CSV_COLUMNS = ["server", "probe_address", "probe_kind", "probe_port", "probe_time", "probe_source_port",
               "touched_by", "scanner_family", "protocol", "port", "first_touch", "last_touch", "packets",
               "lag_seconds"]


def test_csv_export_has_one_row_per_touch_of_a_probe_address(site, realistic):
    _, facts = realistic
    response = site.get("/export/harvesters.csv")
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True)))
    assert reader.fieldnames == CSV_COLUMNS
    rows = list(reader)
    assert len(rows) == facts["touches"]
    assert {r["server"] for r in rows} == {ws.HARVESTER}
    assert {r["probe_address"] for r in rows} == {ws.PROBE_HARVESTER}
    assert {(r["probe_kind"], r["probe_port"], r["probe_source_port"]) for r in rows} == {("ntp", "123", "40123")}
    assert rows[0]["lag_seconds"] == "5.1" and rows[0]["touched_by"] == ws.SCANNER_1
    assert (rows[0]["protocol"], rows[0]["port"], rows[0]["packets"]) == ("TCP", "21", "1")
    assert [r["touched_by"] for r in rows].count(ws.SCANNER_2) == 40
    assert rows[-1]["scanner_family"] == "2001:db8:5ca1:10::/64"


def test_json_export_and_api_carry_the_same_evidence(site):
    response = site.get("/export/harvesters.json")
    assert response.mimetype == "application/json" and "attachment" in response.headers["Content-Disposition"]
    exported = response.get_json()["harvester_evidence"]
    assert exported == site.json("/api/harvesters")["harvester_evidence"]
    assert [list(row) for row in exported] == [CSV_COLUMNS] * 136
    assert exported[0]["lag_seconds"] == 5.1 and exported[-1]["lag_seconds"] == 10800.195


def test_metrics(site):
    response = site.get("/metrics")
    assert response.mimetype == "text/plain"
    lines = response.get_data(as_text=True).splitlines()
    for expected in ('harvestwatch_servers{verdict="harvester"} 1', 'harvestwatch_servers{verdict="suspect"} 1',
                     'harvestwatch_servers{verdict="unverified"} 1', 'harvestwatch_servers{verdict="watching"} 1',
                     'harvestwatch_servers{verdict="clean"} 1', "harvestwatch_daemon_up 1",
                     "harvestwatch_firewall_in_force 1", "harvestwatch_privacy_in_force 1", "harvestwatch_scans 5",
                     "harvestwatch_sweeps 1", "harvestwatch_probes_sent 6", "harvestwatch_gaps 3",
                     "harvestwatch_capture_lost_packets 3"):
        assert expected in lines
    # Every sample has its HELP and TYPE, as Prometheus wants.
    samples = {line.split("{")[0].split()[0] for line in lines if not line.startswith("#")}
    for name in samples:
        assert f"# TYPE {name} gauge" in lines and any(line.startswith(f"# HELP {name} ") for line in lines)


def test_json_documents(site, realistic):
    _, facts = realistic
    overview = site.json("/api/overview")
    assert list(overview) == ["generated", "daemon", "firewall", "privacy", "prober", "clock", "last_record",
                              "capture", "skipped_lines", "gaps", "daemon_clock", "reachability", "inbound_24h",
                              "storage", "updates", "numbers", "harvesters", "watching_servers", "timeline",
                              "health"]
    assert overview["daemon"]["alive"] is True and overview["daemon"]["seen"] is True
    assert overview["numbers"] == {"scans": 5, "sweeps": 1, "scanners": 6, "scanner_families": 5, "probes": 6,
                                   "servers": 6, "harvesters": 1, "suspects": 1, "watching": 1, "clean": 1,
                                   "unverified": 1}
    assert overview["prober"]["prefix"] == ws.PREFIX and overview["prober"]["state"] == "probing"
    (card,) = overview["harvesters"]
    assert card["server"] == ws.HARVESTER and card["min_lag"] == 5.1
    assert card["first_probe"] == facts["harvester_probe_id"]
    assert card["sources"] == 2 and card["packets"] == 136 and card["scans"] == 2 and card["probes_touched"] == 1
    assert card["families"] == ["2001:db8:5ca0:10::/64", "2001:db8:5ca1:10::/64"]
    assert [w["server"] for w in overview["watching_servers"]] == [ws.HONEST_1]
    assert overview["health"] == {"state": "all working", "summary": overview["health"]["summary"], "problems": [],
                                  "unknown": []}
    assert overview["daemon_clock"]["synchronised"] is True and overview["reachability"]["state"] == "declared open"
    assert overview["gaps"]["total"] == 3 and overview["clock"] == {"offset_ms": 3.4, "replies": 3}
    assert sum(overview["timeline"]["scans"]) == 6 and len(overview["timeline"]["probes"]) == 48

    servers = site.json("/api/servers")["servers"]
    assert {s["server"]: s["verdict"] for s in servers} == facts["servers"]
    harvester = servers[0]
    assert harvester["server"] == ws.HARVESTER and round(harvester["min_lag"], 3) == 5.1
    assert harvester["touched_probes"] == 1 and harvester["touches"] == 136
    assert sorted(harvester["pools"]) == [ws.POOL_0, ws.POOL_1] and harvester["probes_by_kind"] == {"ntp": 1}

    first = min(scan_ids(site, target=ws.PROBE_HARVESTER))
    scan = site.json(f"/api/scans/{first}")
    assert scan["attribution"] == "certain" and scan["scanner"] == ws.SCANNER_1
    assert scan["probe"] == {"id": facts["harvester_probe_id"], "address": ws.PROBE_HARVESTER,
                             "server": ws.HARVESTER, "kind": "ntp", "port": 123, "sent_at": scan["probe"]["sent_at"],
                             "sport": 40123, "lag": 5.1}
    assert [(c["dst"], c["dport"], c["lag"]) for c in scan["candidates"]] == [(ws.HARVESTER, 123, 5.097)]
    assert scan["trigger_endpoints"][0]["dst"] == ws.HARVESTER and scan["trigger_endpoints"][0]["certain"] == 2

    listing = site.json("/api/scans")
    assert listing["total"] == 6 and listing["pages"] == 1 and listing["per_page"] == 50
    assert {"id", "kind", "scanner", "family", "target", "start", "duration", "ports", "packets", "protocols",
            "attribution", "probe_id", "trigger"} == set(listing["scans"][0])

    probes = site.json("/api/probes")
    assert probes["total"] == 7 and probes["live"] == 4 and probes["state"] == "probing"
    assert [n["server"] for n in probes["next"]] == [ws.HONEST_2, ws.SUSPECT, ws.UNPROBED]
    never = next(p for p in probes["probes"] if p["address"] == ws.PROBE_NEVER_SENT)
    assert never["sent_at"] is None and never["error"] == ws.NORMAL_PROBE_ERROR and never["live"] is False


# -- other stores ----------------------------------------------------------------------------------
def test_an_empty_store_renders_every_page(empty):
    site = Client(empty)
    for url in HTML_PAGES + API + EXPORTS:
        assert site.get(url).status_code == 200, url
    overview = text_of(main_of(site.html("/")))
    assert "Nothing recorded yet: no daemon has written to this store." in overview
    assert "No daemon has written to this store" in overview and "All working" not in overview
    assert "No NTP servers known yet" in site.html("/servers")
    assert "0 scans Started" not in text_of(site.html("/scans")) and "No scans." in site.html("/scans")
    assert "No scanners seen yet." in site.html("/scanners")
    assert "No probes yet." in site.html("/probes")
    assert site.get("/export/harvesters.csv").get_data(as_text=True).strip() == ",".join(CSV_COLUMNS)
    assert site.json("/api/harvesters") == {"harvester_evidence": []}
    metrics = site.get("/metrics").get_data(as_text=True).splitlines()
    assert "harvestwatch_daemon_up 0" in metrics and 'harvestwatch_servers{verdict="harvester"} 0' in metrics
    assert site.get("/scans/1").status_code == 404


def test_a_missing_store_says_so_with_503(tmp_path):
    path = tmp_path / "not-yet" / "harvestwatch.sqlite"
    site = Client(str(path))
    for url in ["/", "/servers", "/scans", "/scans/1", "/probes", "/scanners", "/metrics",
                "/export/harvesters.csv"]:
        response = site.get(url)
        assert response.status_code == 503, url
        assert response.mimetype == "text/html"
        assert f"No HarvestWatch store at {path} yet: the daemon has not run." in response.get_data(as_text=True)
    for url in API[1:]:  # the list of JSON views needs no store
        response = site.get(url)
        assert response.status_code == 503 and response.mimetype == "application/json"
        assert response.get_json() == {"error": f"No HarvestWatch store at {path} yet: the daemon has not run.",
                                       "status": 503}
    assert site.get("/about").status_code == 200 and site.get("/api/").status_code == 200  # these need no store
    assert not path.exists()  # reading never creates one
    # A stranger learns nothing about the store, not even that it is missing.
    stranger = site.get("/api/overview", remote="2001:db8:ffff::1")
    assert stranger.status_code == 403 and str(path) not in stranger.get_data(as_text=True)


@pytest.mark.parametrize("content", [b"", b"this is not an SQLite database\n" * 64], ids=["zero-bytes", "garbage"])
def test_an_unreadable_store_says_so_with_503(tmp_path, content):
    path = tmp_path / "harvestwatch.sqlite"
    path.write_bytes(content)
    site = Client(str(path))
    page = site.get("/")
    assert page.status_code == 503 and f"The store at {path} cannot be read" in page.get_data(as_text=True)
    doc = site.get("/api/scans")
    assert doc.status_code == 503 and doc.get_json()["error"].startswith(f"The store at {path} cannot be read")
    assert site.get("/", remote="203.0.113.9").status_code == 403


def test_scanners_are_paged_by_family_and_a_huge_family_stays_small(tmp_path):
    # 120 families of one scanner each, and one family whose scans came from 3,000 addresses of one
    # /64 (a scan spread wide): every page stays small, every family is reachable, none is cut silently.
    path = tmp_path / "harvestwatch.sqlite"
    store = Store(str(path))
    try:
        start = 1_700_000_000.0
        store.add_scans([ws._portscan(f"2001:db8:{0x1000 + n:x}::5", ws.STABLE, start + n, 12) for n in range(120)]
                        + [ws._portscan(f"2001:db8:beef::{n + 1:x}", ws.STABLE, start + n, 12) for n in range(3000)])
        store.refresh()
    finally:
        store.close()
    site = Client(str(path))
    first = site.json("/api/scanners")
    assert (first["total"], first["pages"], len(first["families"])) == (121, 3, 50)
    wide = first["families"][0]
    assert wide["family"] == "2001:db8:beef::/64" and wide["members"] == 3000 and wide["scans"] == 3000
    assert len(wide["scanners"]) == 50
    last = site.json("/api/scanners?page=3")
    assert len(last["families"]) == 21 and last["families"][-1]["family"] == "2001:db8:1077::/64"  # ties by name
    seen = {f["family"] for page in (1, 2, 3) for f in site.json(f"/api/scanners?page={page}")["families"]}
    assert len(seen) == 121
    html = site.html("/scanners")
    assert "and 2950 more addresses" in html and "page 1 of 3" in html and len(html) < 200_000


def test_servers_are_paged(tmp_path):
    path = tmp_path / "harvestwatch.sqlite"
    store = Store(str(path))
    try:
        store.add_pool_members("0.pool.lab.test", [f"2001:db8:123:{n:x}::123" for n in range(250)], 1_700_000_000.0)
    finally:
        store.close()
    site = Client(str(path))
    pages = [site.json(f"/api/servers?page={n}") for n in (1, 2, 3)]
    assert [(p["total"], p["pages"], len(p["servers"])) for p in pages] == [(250, 3, 100), (250, 3, 100), (250, 3, 50)]
    assert len({s["server"] for p in pages for s in p["servers"]}) == 250
    html = site.html("/servers?page=2")
    assert "250 servers · page 2 of 3" in html and "← previous" in html and "next →" in html


def test_a_store_damaged_inside_says_so_with_503_not_500(analyzed, tmp_path):
    # The header and schema read fine; the pages behind them are garbage (a bad SD card sector).
    path = tmp_path / "harvestwatch.sqlite"
    good = open(analyzed[0], "rb").read()
    assert len(good) > 64 * 1024
    path.write_bytes(good[:8192] + b"\xa5" * (len(good) - 8192))
    site = Client(str(path))
    for url in ("/scans", "/api/scans", "/scanners"):
        response = site.get(url)
        assert response.status_code == 503, (url, response.status_code)
        assert f"The store at {path} cannot be read" in response.get_data(as_text=True)
    stranger = site.get("/api/scans", remote="203.0.113.9")
    assert stranger.status_code == 403 and str(path) not in stranger.get_data(as_text=True)


@pytest.mark.parametrize("host", ["localhost", "harvestwatch.local", "HarvestWatch.Local.", "harvestwatch.lan",
                                  "harvestwatch.fritz.box", "harvestwatch.home.arpa", "harvestwatch.local:8080",
                                  "127.0.0.1:8080", "[::1]:8080", "192.0.2.7"])
def test_the_page_answers_its_own_names_and_address_literals(site, host):
    assert site.get("/api/probes", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize("host", ["attacker.example", "harvestwatch.attacker.example", "harvestwatch.local.evil.test",
                                  "localhost.attacker.example", "rebind-192-0-2-7.example:80", ""])
def test_a_rebinding_name_is_refused_even_from_the_lan(site, host):
    # DNS rebinding: a page on the internet points its own name at the appliance; a LAN browser
    # then sends that name. It must not read the live probe addresses.
    response = site.get("/api/probes", headers={"Host": host})
    assert response.status_code == 403 and "answers its own names only" in response.get_json()["error"]
    page = site.get("/", headers={"Host": host})
    assert page.status_code == 403 and "2001:db8" not in page.get_data(as_text=True)


def test_an_address_literal_must_be_the_one_the_request_arrived_on():
    class Connection:  # what gunicorn puts in the environ: the accepted socket (only its name is read)
        def getsockname(self):
            return ("2001:db8:1:1::5", 80, 0, 0)
    own = OwnNamesOnly()
    environ = {"gunicorn.socket": Connection()}
    assert own.allowed("[2001:db8:1:1::5]", environ) and own.allowed("[2001:db8:1:1::5]:80", environ)
    assert own.allowed("127.0.0.1", environ)  # a tunnel or port forward from the user's own machine
    assert not own.allowed("[2001:db8:1:1::6]", environ) and not own.allowed("198.51.100.1", environ)


def test_a_store_filled_by_analyze_alone(analyzed):
    path, truth = analyzed
    site = Client(path)
    overview = text_of(main_of(site.html("/")))
    assert "no daemon has written to this store (filled by harvestwatch analyze)" in overview
    assert (f"This store holds what harvestwatch analyze found in firewall logs: {truth['portscans']} scans and "
            f"{truth['sweeps']} sweep") in overview and "All working" not in overview
    assert "Firewall unknown" in overview and "Prober not running" in overview
    html = site.html("/")
    assert "<b>0</b>confirmed harvesters" in html and f"<b>{truth['portscans']}</b>scans" in html
    assert "No NTP servers known yet" in site.html("/servers")
    assert site.json("/api/servers") == {"filters": {}, "page": 1, "per_page": 100, "total": 0, "pages": 1,
                                         "servers": []}
    doc = site.json("/api/overview")
    assert doc["daemon"] == {"seen": False, "alive": False, "heartbeat": None, "started": None, "clean_stop": False}
    assert doc["prober"] is None and doc["numbers"]["harvesters"] == doc["numbers"]["suspects"] == 0
    assert sum(doc["timeline"]["scans"]) > 0  # the timeline ends at the newest scan of the old log
    scans = site.json("/api/scans?kind=portscan")
    assert scans["total"] == truth["portscans"] and truth["candidate"] > 0
    assert f"{truth['portscans'] + truth['sweeps']} scans Started" in text_of(site.html("/scans"))
    (candidate, *_) = [s for s in scans["scans"] if s["attribution"] == "candidate"]
    page = text_of(main_of(site.html(f"/scans/{candidate['id']}")))
    assert "Trigger candidates candidate" in page and "These endpoints across all scans" in page
    assert "Certain" not in page
    assert site.json(f"/api/scans/{candidate['id']}")["trigger_endpoints"]
    assert "No probes yet." in site.html("/probes")
    metrics = site.get("/metrics")
    assert metrics.status_code == 200 and "harvestwatch_daemon_up 0" in metrics.get_data(as_text=True)


# -- hostile strings -------------------------------------------------------------------------------
HOSTILE_ON = {"/": ["gap", "prober_reason", "pool_error", "firewall_problem", "privacy_problem", "skipped",
                    "reboot_package"],
              "/servers": ["pool"], "/probes": ["probe_error", "prober_reason"], "/scanners": ["rdns"]}


def test_hostile_strings_are_escaped_everywhere(hostile):
    site = Client(hostile)
    urls = HTML_PAGES + [f"/scans/{s['id']}" for s in site.json("/api/scans")["scans"]]
    for url in urls:
        html = site.html(url)
        for raw in ("<script>alert", "<img src=x", "<b onmouseover"):
            assert raw not in html, (url, raw)
        # The only script is the page's own file.
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/page.js" defer>'], url
    for url, fields in HOSTILE_ON.items():
        html = site.html(url)
        for field in fields:
            assert str(escape(ws.HOSTILE[field])) in html, (url, field)
    assert "&lt;script&gt;alert(&#39;gap&#39;)&lt;/script&gt;" in site.html("/")
    # The CSV and the metrics carry no markup of theirs either way, but must still answer.
    assert site.get("/metrics").status_code == 200 and site.get("/export/harvesters.csv").status_code == 200


def test_hostile_strings_come_back_raw_but_inert_as_json(hostile):
    site = Client(hostile)
    response = site.get("/api/overview")
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    overview = json.loads(response.get_data(as_text=True))
    assert overview["firewall"]["problems"] == [ws.HOSTILE["firewall_problem"]]
    assert overview["prober"]["reason"] == ws.HOSTILE["prober_reason"]
    assert list(overview["prober"]["pool_errors"].values()) == [ws.HOSTILE["pool_error"]]
    assert ws.HOSTILE["skipped"] in overview["skipped_lines"]
    assert ws.HOSTILE["gap"] in [gap["reason"] for gap in overview["gaps"]["latest"]]
    servers = site.json("/api/servers")["servers"]
    assert ws.HOSTILE["pool"] in servers[0]["pools"]
    probes = site.json("/api/probes")
    assert ws.HOSTILE["probe_error"] in [p["error"] for p in probes["probes"]]
    names = [s["rdns"] for f in site.json("/api/scanners")["families"] for s in f["scanners"]]
    assert ws.HOSTILE["rdns"] in names


# -- LAN only --------------------------------------------------------------------------------------
@pytest.mark.parametrize("remote", ["127.0.0.1", "::1", "fe80::1", "fe80::1%eth0", "fd00::1", "fd12:3456::7",
                                    "192.168.1.20", "10.1.2.3", "::ffff:192.168.1.2",
                                    "2001:db8:e625:1::99", "2001:db8:e625:1:ffff:ffff:ffff:ffff"])
def test_the_lan_gets_the_page(site, remote):
    assert site.get("/", remote=remote).status_code == 200
    assert site.get("/api/overview", remote=remote).status_code == 200


@pytest.mark.parametrize("remote", ["2001:db8:ffff::1", "2001:db8:e625:2::1", "203.0.113.7", "::ffff:203.0.113.7",
                                    "2001:db8:e625::1", "not-an-address"])
def test_everyone_else_gets_403(site, remote):
    page = site.get("/", remote=remote)
    assert page.status_code == 403 and page.mimetype == "text/html"
    assert "This HarvestWatch page answers its own LAN only." in page.get_data(as_text=True)
    assert ws.HARVESTER not in page.get_data(as_text=True)
    doc = site.get("/api/servers", remote=remote)
    assert doc.status_code == 403 and doc.mimetype == "application/json"
    assert doc.get_json() == {"error": "This HarvestWatch page answers its own LAN only.", "status": 403}
    for url in ("/export/harvesters.csv", "/metrics", "/static/style.css", "/scans/1", "/about"):
        assert site.get(url, remote=remote).status_code == 403, url


def test_configured_prefixes_widen_the_lan_and_the_check_can_be_turned_off(realistic):
    path, _ = realistic
    outsider = "2001:db8:ffff::1"
    assert Client(path, extra_lan=("2001:db8:ffff::/48",)).get("/", remote=outsider).status_code == 200
    assert Client(path, lan_only=False).get("/", remote="203.0.113.7").status_code == 200


# -- bad input, methods, headers ---------------------------------------------------------------------
@pytest.mark.parametrize("query", ["scanner=nonsense", "family=2001:db8::/129", "target=%3Cscript%3Ex",
                                   "attribution=maybe", "kind=ping", "page=abc", "page=1.5",
                                   "page=99999999999999999999999"])
def test_bad_filter_values_give_400(site, query):
    page = site.get(f"/scans?{query}")
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert "<script>x" not in page.get_data(as_text=True)
    doc = site.get(f"/api/scans?{query}")
    assert doc.status_code == 400 and doc.get_json()["status"] == 400 and doc.get_json()["error"]


def test_a_bad_value_is_named_and_escaped_in_the_400(site):
    html = site.get("/scans?target=%3Cscript%3Ex").get_data(as_text=True)
    assert "target: &#39;&lt;script&gt;x&#39; is not an IP address or network" in html
    assert site.get("/api/scans?kind=ping").get_json()["error"] == "kind must be portscan or sweep"


@pytest.mark.parametrize("url", ["/scans/999", "/api/scans/999", "/scans/0", "/scans/99999999999999999999999",
                                 "/api/scans/99999999999999999999999", "/scans/abc", "/nowhere", "/api/nowhere"])
def test_unknown_scans_and_pages_give_404(site, url):
    response = site.get(url)
    assert response.status_code == 404
    if url.startswith("/scans/") and url[7:].isdigit():
        assert f"No scan {url[7:]}." in response.get_data(as_text=True)
    if url == "/api/scans/999":
        assert response.get_json() == {"error": "No scan 999.", "status": 404}


@pytest.mark.parametrize("url", ["/", "/scans/1", "/api/overview", "/metrics", "/export/harvesters.csv",
                                 "/static/style.css", "/scans/999", "/scans?kind=x"])
def test_security_headers(site, url):
    headers = site.get(url).headers
    csp = headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert site.get(url, remote="203.0.113.7").headers["Content-Security-Policy"] == csp  # the 403 too


def test_pages_need_nothing_inline(site):
    """The CSP allows no inline script or style: the pages must not rely on any."""
    first = min(scan_ids(site, target=ws.PROBE_HARVESTER))
    for url in HTML_PAGES + [f"/scans/{first}"]:
        html = site.html(url)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\sstyle=", html) and "<style" not in html, url
        assert not re.search(r"\son[a-z]+=", html), url


def test_no_route_accepts_a_write(site):
    rules = list(site.app.url_map.iter_rules())
    assert len(rules) == len(HTML_PAGES + API + EXPORTS) + 5  # + a scan and a probe page, their JSON, the static files
    assert site.json("/api/")["views"][0] == {"path": "/api/overview", "what": site.json("/api/")["views"][0]["what"]}
    for view in site.json("/api/")["views"]:  # every JSON view listed answers
        assert site.get(view["path"].replace("<id>", "1")).status_code == 200, view
    for rule in rules:
        assert rule.methods <= {"GET", "HEAD", "OPTIONS"}, rule
        url = re.sub(r"<(?:int:)?(?:scan|probe)_id>", "1", re.sub(r"<(?:path:)?filename>", "style.css", rule.rule))
        assert "<" not in url, url
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert site.open(url, method).status_code == 405, (method, url)


def test_pages_kept_between_commits_follow_what_changes_them(tmp_path):
    """The Scanners page is kept while its scans, touches and names stay the same (a heartbeat
    changes none), the Probes page per commit and minute: a new scan, touch or probe shows at once."""
    path = tmp_path / "harvestwatch.sqlite"
    facts = ws.fill_realistic_store(path)
    site = Client(str(path))
    before = site.html("/scanners")
    assert site.html("/scanners") == before
    newcomer = "2001:db8:5ca9:10::77"
    store = Store(str(path))
    try:
        store.set_status({"heartbeat": facts["now"]})  # a commit that changes no scan: the same page
        assert site.html("/scanners") == before
        store.add_scans([Scan(PORTSCAN, newcomer, ws.STABLE, facts["now"] - 20, facts["now"] - 19, 12,
                              [("TCP", port) for port in range(1, 13)])])
        after = site.html("/scanners")
        assert newcomer in after and "6 families" in text_of(after)
        # A touch of the harvester's probe address from the newcomer's family: it was fed too.
        touch = [facts["now"] - 10, facts["now"] - 9, 1]
        store.add_touches({(facts["harvester_probe_id"], newcomer, "TCP", 22): touch})
        page = site.html("/scanners")
        family = text_of(page[page.index("2001:db8:5ca9:10::/64"):])
        assert family.split("Fed by")[1].startswith(f" {ws.HARVESTER}")
        # Probes: a new probe shows on the next request.
        assert "8 probes" not in text_of(site.html("/probes"))
        store.plan_probe(ws.PROBE_NEVER_SENT.replace("f005", "f006"), ws.HONEST_2, "ntp", 123, facts["now"] + 3600,
                         planned=facts["now"] - 5)
        assert "8 probes" in text_of(site.html("/probes"))
    finally:
        store.close()


def test_a_window_that_ends_changes_the_verdict_on_the_page_with_no_commit(tmp_path):
    """Verdicts and the Servers page are kept between commits; the end of a probe's window (the
    clock alone, no commit: the daemon writes rarely, for the card's sake) must show at once."""
    path = tmp_path / "harvestwatch.sqlite"
    store = Store(str(path))
    try:
        store.add_pool_members(ws.POOL_0, [ws.HONEST_2], time.time() - 60)
        ws._probe(store, ws.PROBE_HONEST_2_UDP321, ws.HONEST_2, "ntp", time.time() - 10, sport=40200, window=12.0)
    finally:
        store.close()
    site = Client(str(path))
    assert "watching its probe address" in site.html("/servers")
    assert site.json("/api/overview")["numbers"]["watching"] == 1
    deadline = time.time() + 8
    while time.time() < deadline and "a whole window with no touch" not in site.html("/servers"):
        time.sleep(0.5)
    assert "a whole window with no touch" in site.html("/servers")
    assert site.json("/api/overview")["numbers"]["clean"] == 1
