"""What the live appliance keeps: the probe ledger, verdicts per server, gaps, scans that grow."""
from appliance.attribute.triggers import Candidate
from appliance.detect.scans import PORTSCAN, Scan
from appliance.report.evidence import scan_document
from appliance.store.db import CERTAIN, Store

HARV, HONEST, OTHER = "2001:db8:f00d::123", "2001:db8:a1::123", "2001:db8:a2::123"
PROBE_A, PROBE_B, PROBE_C = "2001:db8:1:1::a", "2001:db8:1:1::b", "2001:db8:1:1::c"
SCANNER_1, SCANNER_2 = "2001:db8:bad:1::66", "2001:db8:bad:2::77"
T0 = 1_700_000_000.0


def portscan(scanner, target, start, ports=100, candidates=()):
    return Scan(PORTSCAN, scanner, target, start, start + 0.5, ports,
                [("TCP", p) for p in range(1, ports + 1)], candidates=list(candidates))


def probe(store, address, server, at, kind="udp321", port=321, observation=86400.0):
    probe_id = store.plan_probe(address, server, kind, port, at + observation, planned=at)
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
        probe(store, address, HONEST, T0 + 100 + n)
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
    assert rows[HARV]["first_seen"] == T0 and rows[HARV]["last_seen"] == T0 + 900
    assert rows[HONEST]["last_seen"] == T0
    store.close()
