"""What the live appliance keeps: the probe ledger, touches, pinholes, verdicts per server, gaps,
scans that grow."""
import pytest

from appliance.attribute.triggers import Candidate
from appliance.detect.scans import PORTSCAN, Scan
from appliance.report.evidence import scan_document
from appliance.store.db import CERTAIN, MAX_TOUCH_ROWS, Store

HARV, HONEST, OTHER = "2001:db8:f00d::123", "2001:db8:a1::123", "2001:db8:a2::123"
PROBE_A, PROBE_B, PROBE_C = "2001:db8:1:1::a", "2001:db8:1:1::b", "2001:db8:1:1::c"
SCANNER_1, SCANNER_2 = "2001:db8:bad:1::66", "2001:db8:bad:2::77"
T0 = 1_700_000_000.0


def portscan(scanner, target, start, ports=100, candidates=()):
    return Scan(PORTSCAN, scanner, target, start, start + 0.5, ports,
                [("TCP", p) for p in range(1, ports + 1)], candidates=list(candidates))


def probe(store, address, server, at, kind="udp321", port=321, observation=86400.0, reach="declared", note=None,
          pinholes=()):
    """A probe as the prober writes it: the ledger row with how it can be reached, then what came of it."""
    probe_id = store.plan_probe(address, server, kind, port, at + observation, planned=at - 0.2, reach=reach,
                                reach_note=note, pinholes=pinholes)
    store.record_probe(probe_id, sent_at=at, sport=40000)
    return probe_id


def test_a_scan_of_a_probe_address_names_its_server_even_hours_later(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("0.pool.lab.test", [HARV, HONEST], T0)
    store.add_pool_members("1.pool.lab.test", [HARV, OTHER], T0)
    probe(store, PROBE_A, HARV, T0 + 10)
    probe(store, PROBE_B, HONEST, T0 + 70)
    # First wave 5 s after the probe (the firewall logged the probe too), second wave 3 hours
    # later from another /64: far outside any lookback, the ledger still names the server.
    logged = Candidate(T0 + 10.003, PROBE_A, 40000, HARV, 321, "UDP")
    store.add_scans([portscan(SCANNER_1, PROBE_A, T0 + 15, candidates=[logged]),
                     portscan(SCANNER_2, PROBE_A, T0 + 3 * 3600)])
    store.refresh()

    scans = store.scans()
    assert [s["attribution"] for s in scans] == [CERTAIN, CERTAIN]
    assert all(s["probe_id"] == 1 for s in scans)
    second = scan_document(store, scans[1])["candidates"]
    assert [(c["dst"], c["dport"], round(c["lag"])) for c in second] == [(HARV, 321, 3 * 3600 - 10)]
    assert len(scan_document(store, scans[0])["candidates"]) == 1  # the logged packet, not a second copy

    verdicts = {v["server"]: v for v in store.server_verdicts()}
    assert verdicts[HARV]["verdict"] == "harvester"
    assert verdicts[HARV]["probe_scans"] == 2 and round(verdicts[HARV]["min_lag"]) == 5
    assert sorted(verdicts[HARV]["pools"]) == ["0.pool.lab.test", "1.pool.lab.test"]
    # The honest server's window passed long ago, untouched, with the router declared open.
    assert verdicts[HONEST]["verdict"] == "clean" and verdicts[HONEST]["probes_by_kind"] == {"udp321": 1}
    assert verdicts[OTHER]["verdict"] == "unprobed"
    store.close()


def test_a_scan_after_the_observation_window_is_not_blamed_on_the_probe(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("pool", [HONEST], T0)
    probe(store, PROBE_A, HONEST, T0, observation=3600)
    store.add_scans([portscan(SCANNER_1, PROBE_A, T0 + 7200)])
    store.refresh()
    assert store.scans()[0]["attribution"] == "unattributed"
    assert store.server_verdicts()[0]["verdict"] == "clean"
    store.close()


def test_a_planned_probe_that_never_left_proves_nothing(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("pool", [HONEST], T0)
    probe_id = store.plan_probe(PROBE_A, HONEST, "ntp", 123, T0 + 86400, planned=T0)
    store.record_probe(probe_id, sent_at=None, error="network unreachable")
    store.add_scans([portscan(SCANNER_1, PROBE_A, T0 + 5)])
    store.refresh()
    assert store.server_verdicts()[0]["verdict"] == "unprobed"
    assert store.probes()[0]["error"] == "network unreachable"
    store.close()


def test_a_trigger_candidate_is_a_suspect_until_clean_probes_clear_it(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("pool", [HONEST], T0)
    # The appliance's own temporary address synced its clock and was scanned: a candidate.
    own = "2001:db8:1:1::7e49"
    store.add_scans([portscan(SCANNER_1, own, T0 + 30, candidates=[Candidate(T0, own, 123, HONEST, 123, "UDP")])])
    store.refresh()
    assert store.server_verdicts()[0]["verdict"] == "suspect"
    for n, address in enumerate((PROBE_A, PROBE_B, PROBE_C)):
        probe(store, address, HONEST, T0 + 100 + n)  # each window over and clean: T0 is long ago
        expected = "suspect" if n < 2 else "clean"
        assert store.server_verdicts()[0]["verdict"] == expected
    store.close()


def test_a_scan_still_going_on_grows_in_place(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    early = portscan(SCANNER_1, PROBE_A, T0, ports=12)
    (first_id,) = store.add_scans([early])
    (again_id,) = store.add_scans([portscan(SCANNER_1, PROBE_A, T0, ports=200)])
    (stale_id,) = store.add_scans([early])  # a late snapshot never shrinks what is stored
    assert first_id == again_id == stale_id
    (row,) = store.scans()
    assert row["port_count"] == 200 and row["packets"] == 200
    store.close()


def test_a_window_the_capture_did_not_see_whole_is_unverified_not_clean(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    window = 7 * 86400.0
    first, later = T0, T0 + 3 * 86400  # two windows; only the first holds the daemon's downtime
    store.add_pool_members("pool", [HONEST, OTHER], T0)
    probe(store, "2001:db8:1:1::1", OTHER, first, observation=window)
    probe(store, "2001:db8:1:1::2", HONEST, later, observation=window)
    done = later + window + 1
    assert {v["server"]: v["verdict"] for v in store.server_verdicts(done)} == {HONEST: "clean", OTHER: "clean"}
    store.add_gap(first - 7200, first - 3600, "daemon-down")  # before both windows: no matter
    store.add_gap(first + 86400, first + 86400 + 600, "daemon-down")
    verdicts = {v["server"]: v for v in store.server_verdicts(done)}
    assert verdicts[HONEST]["verdict"] == "clean"
    assert verdicts[OTHER]["verdict"] == "unverified"
    assert verdicts[OTHER]["unverified_why"].startswith(
        "the capture missed packets during the window (the daemon was not running, 600 s from ")
    # A flood limited elsewhere (probe addresses have their own limit, their scans no quota) hides
    # nothing about a probe address; a flood at the probe addresses does.
    for spared in ("flood", "flood-table", "scan-cap", "episode-cap"):
        store.add_gap(done - 10, done - 10, spared, 120)
    assert {v["server"]: v["verdict"] for v in store.server_verdicts(done)} == {HONEST: "clean", OTHER: "unverified"}
    store.add_gap(done - 10, done - 10, "probe-flood", 120)  # packets dropped in the later window too
    assert {v["verdict"] for v in store.server_verdicts(done)} == {"unverified"}
    assert "a flood at the probe addresses went over their limit" in store.server_verdicts(done)[0]["unverified_why"]
    store.close()


def test_gaps_and_status_survive_reopening(tmp_path):
    path = str(tmp_path / "hw.sqlite")
    store = Store(path)
    store.add_gap(T0, T0 + 60, "daemon-down")
    store.add_gap(T0 + 100, T0 + 100, "seq-gap", 3)
    store.add_gap(T0 + 100, T0 + 101, "seq-gap", 2)
    store.set_status({"heartbeat": T0, "prober": {"state": "paused", "reason": "no prefix"}})
    store.close()
    store = Store(path, readonly=True)
    gaps = [(g["reason"], g["lost"], g["end"] - g["start"]) for g in store.gaps()]
    assert gaps == [("daemon-down", None, 60), ("seq-gap", 5, 1)]
    assert store.status()["prober"]["reason"] == "no prefix"
    store.close()


def test_pool_answers_accumulate_with_first_and_last_seen(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    assert store.add_pool_members("pool", [HARV, HONEST], T0) == 2
    assert store.add_pool_members("pool", [HARV, OTHER], T0 + 900) == 1
    assert store.known_servers() == sorted([HARV, HONEST, OTHER])
    rows = {r["address"]: r for r in store.db.execute("SELECT * FROM pool_members")}
    assert rows[HARV]["first_seen"] == T0 and rows[HARV]["last_seen"] == T0
    # An answer naming only known members writes nothing (a write to the card per answer, otherwise):
    # their sightings are written together, with the daemon's hourly status.
    before = store.db.total_changes
    store.add_pool_members("pool", [HARV, HONEST], T0 + 1800)
    assert store.db.total_changes == before
    store.set_status({"heartbeat": T0 + 3600}, T0 + 3600,
                     pool_seen={("pool", HARV): T0 + 2700, ("pool", OTHER): T0 + 900, ("other pool", HONEST): T0})
    rows = {r["address"]: r for r in store.db.execute("SELECT * FROM pool_members")}
    assert rows[HARV]["last_seen"] == T0 + 2700 and rows[HARV]["first_seen"] == T0
    assert rows[OTHER]["last_seen"] == T0 + 900 and rows[HONEST]["last_seen"] == T0
    store.mark_pool_seen({("pool", HARV): T0 + 900})  # an older sighting never moves it back
    assert store.db.execute("SELECT last_seen FROM pool_members WHERE address=?", (HARV,)).fetchone()[0] == T0 + 2700
    assert store.db.execute("SELECT count(*) FROM pool_members").fetchone()[0] == 3  # none made by a sighting
    store.close()


def test_verdicts_say_what_is_known(tmp_path):
    """watching while a window is open; clean only for a whole window that packets could reach;
    unverified when nothing shows they could; a single touch, an echo request, confirms."""
    servers = {name: f"2001:db8:a{n}::123" for n, name in enumerate(
        ("watched", "held", "lapsed", "closed", "pinged", "refused"))}
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("pool", list(servers.values()), T0)
    now = T0 + 10 * 86400
    window = 7 * 86400.0
    ids = {}
    for n, (name, server) in enumerate(servers.items()):
        sent = now - 3600 if name == "watched" else now - window - 3600  # one still open, the others over
        reach = {"closed": "none", "refused": "none"}.get(name, "pinholes")
        granted = [("tcp", 8080, n + 100, sent - 0.3, sent + 86400, None)] if reach == "pinholes" else []
        ids[name] = probe(store, f"2001:db8:1:1::{n + 1}", server, sent, observation=window, reach=reach,
                          pinholes=granted,
                          note="the router lets nothing unsolicited in" if name == "closed" else
                          ("the router refused every pinhole: tcp/8080: not authorized" if name == "refused" else None))
    # Renewed every half day; the store learns the last lease end (the one that reaches the window's
    # end) and the giving back; an older lease end written late does not undo it.
    for name in ("held", "lapsed", "pinged"):
        sent = store.probe(ids[name])["sent_at"]
        store.update_pinholes(ends=[(ids[name], "tcp", 8080, sent + window)])
        store.update_pinholes(ends=[(ids[name], "tcp", 8080, sent + window - 86400)],
                            closes=[(ids[name], "tcp", 8080, sent + 3 * 86400, sent + window + 30)])
    store.update_pinholes(lost=[(ids["lapsed"], "tcp", 8080, now - window + 3 * 86400,
                               "the router does not know this pinhole")])
    sent = store.probe(ids["pinged"])["sent_at"]
    store.add_touches({(ids["pinged"], "2001:db8:5ca1::9", "ICMPv6", 128): [sent + 42.0, sent + 42.0, 1]})

    verdicts = {v["server"]: v for v in store.server_verdicts(now)}
    say = {name: verdicts[server]["verdict"] for name, server in servers.items()}
    assert say == {"watched": "watching", "held": "clean", "lapsed": "unverified", "closed": "unverified",
                   "pinged": "harvester", "refused": "unverified"}
    assert verdicts[servers["watched"]]["watch_ends"] == pytest.approx(now - 3600 + window)
    assert verdicts[servers["held"]]["clean_open_to"] == ["tcp/8080"]
    assert "not held throughout" in verdicts[servers["lapsed"]]["unverified_why"]
    assert verdicts[servers["closed"]]["unverified_why"] == ("scans could not reach this appliance: "
                                                             "the router lets nothing unsolicited in")
    assert "refused every pinhole" in verdicts[servers["refused"]]["unverified_why"]
    pinged = verdicts[servers["pinged"]]
    assert pinged["min_lag"] == pytest.approx(42.0) and pinged["touches"] == 1 and pinged["probe_scans"] == 0
    # Order: most serious first.
    assert [v["verdict"] for v in store.server_verdicts(now)] == [
        "harvester", "unverified", "unverified", "unverified", "watching", "clean"]
    store.close()


def test_touches_add_up_and_a_flood_at_one_probe_address_is_bounded(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    probe_id = probe(store, PROBE_A, HARV, T0)
    key = (probe_id, SCANNER_1, "TCP", 8080)
    assert store.add_touches({key: [T0 + 5, T0 + 6, 2]}) == 0
    assert store.add_touches({key: [T0 + 4, T0 + 9, 3]}) == 0
    (row,) = store.touches_of(probe_id)
    assert (row["first_ts"], row["last_ts"], row["packets"], row["src_net"]) == (
        T0 + 4, T0 + 9, 5, "2001:db8:bad:1::/64")
    flood = {(probe_id, f"2001:db8:bad:{n // 60000 + 3:x}::{n % 60000 + 1:x}", "UDP", 9): [T0 + 10, T0 + 10, 1]
             for n in range(MAX_TOUCH_ROWS + 500)}
    dropped = store.add_touches(flood)
    assert dropped == 501  # the cap holds 10,000 rows; the first stored row counts too
    assert len(store.touches_of(probe_id)) == MAX_TOUCH_ROWS
    # A row already held still grows past the cap: evidence is never lost, only new rows are.
    assert store.add_touches({key: [T0 + 20, T0 + 20, 1]}) == 0
    assert next(r for r in store.touches_of(probe_id) if r["src"] == SCANNER_1)["packets"] == 6
    store.close()
