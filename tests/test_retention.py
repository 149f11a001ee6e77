"""The retention policy: ordinary records age out and give way under the size cap; evidence stays."""
from appliance.attribute.triggers import Candidate
from appliance.store.db import Store
from appliance.store.retention import DAY
from tests.test_live_store import HARV, HONEST, PROBE_A, T0, portscan, probe

OWN = "2001:db8:1:1::1"
NOW = T0 + 200 * DAY


def kinds(store) -> dict:
    return {table: store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("scans", "contacts", "gaps", "pool_members", "probes", "touches")}


def filled(tmp_path) -> Store:
    """A store of 200 days: a harvester's probe (day 1) touched and scanned, ordinary scans and
    contacts every day, a gap in the probe's window and one outside every window."""
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("pool", [HARV, HONEST], T0)
    probe_id = probe(store, PROBE_A, HARV, T0 + DAY, observation=7 * DAY)
    store.add_touches({(probe_id, "2001:db8:bad:1::66", "TCP", 22): (T0 + DAY + 60, T0 + DAY + 61, 2)})
    scans = [portscan("2001:db8:bad:1::66", PROBE_A, T0 + DAY + 60)]
    trigger = Candidate(T0, OWN, 40000, "2001:db8:a1::53", 53, "UDP")
    for day in range(200):
        at = T0 + day * DAY + 3600
        scans.append(portscan(f"2001:db8:5ca:{day:x}::1", OWN, at))                          # unattributed
        scans.append(portscan(f"2001:db8:5cb:{day:x}::1", OWN, at + 60,
                              candidates=[trigger._replace(ts=at + 30)]))                        # with a candidate
    store.add_scans(scans)
    store.add_contacts({(OWN, "UDP", f"2001:db8:c0:{day:x}::53", 53): [T0 + day * DAY, T0 + day * DAY]
                        for day in range(200)})
    store.add_gap(T0 + 2 * DAY, T0 + 2 * DAY + 600, "daemon-down")    # inside the probe's window
    store.add_gap(T0 + 20 * DAY, T0 + 20 * DAY + 600, "daemon-down")  # outside every window
    store.refresh()
    return store


def test_ordinary_records_age_out_and_the_evidence_stays(tmp_path):
    store = filled(tmp_path)
    before = kinds(store)
    verdicts = {v["server"]: v["verdict"] for v in store.server_verdicts(NOW)}
    deleted = store.prune(NOW, keep_days=90, max_bytes=1 << 30)
    after = kinds(store)
    # Days 0..109 are older than 90 days: their unattributed scans and contacts go.
    assert deleted["scans"] == 110 and deleted["contacts"] == 110 and deleted["gaps"] == 1, deleted
    assert after["scans"] == before["scans"] - 110
    assert store.db.execute("SELECT count(*) FROM scans WHERE probe_id IS NOT NULL").fetchone()[0] == 1
    assert after["probes"] == before["probes"] and after["touches"] == before["touches"] == 1
    # The gap inside the probe's window stays, with it the window's verdict; the honest server
    # was never probed and is not seen for 90 days: its pool answer goes.
    assert [row[0] for row in store.db.execute("SELECT start FROM gaps")] == [T0 + 2 * DAY]
    assert {v["server"]: v["verdict"] for v in store.server_verdicts(NOW)} == \
        {HARV: verdicts[HARV]}
    assert store.oldest_record() == T0 + 3660   # day 0: a scan with a trigger candidate is kept
    assert store.prune(NOW, keep_days=90, max_bytes=1 << 30) == {}  # nothing more to do
    store.close()


def test_over_the_size_cap_the_oldest_ordinary_records_go_first_and_the_evidence_never(tmp_path):
    store = filled(tmp_path)
    store.add_scans([portscan(f"2001:db8:5cc:{n:x}::1", OWN, NOW - n, ports=200) for n in range(3000)])
    store.refresh()
    used = store.used_bytes()
    cap = used // 2
    deleted = store.prune(NOW, keep_days=3650, max_bytes=cap)
    assert store.used_bytes() <= cap, deleted
    assert deleted["scans"] > 0
    newest_gone = store.db.execute("SELECT min(start) FROM scans WHERE attribution='unattributed'").fetchone()[0]
    assert newest_gone > T0 + 199 * DAY, "the oldest unattributed scans went first"
    assert store.db.execute("SELECT count(*) FROM scans WHERE probe_id IS NOT NULL").fetchone()[0] == 1
    assert kinds(store)["touches"] == 1 and kinds(store)["probes"] == 1
    # A cap below what the evidence alone needs deletes every ordinary record, and no evidence.
    store.prune(NOW, keep_days=3650, max_bytes=4096)
    assert kinds(store)["scans"] == 1 and kinds(store)["contacts"] == 0 and kinds(store)["touches"] == 1
    store.close()


def test_a_scan_or_sweep_that_reached_a_probe_address_is_evidence_before_it_is_tied_to_its_probe(tmp_path):
    from appliance.detect.scans import SWEEP, Scan
    store = Store(str(tmp_path / "hw.sqlite"))
    probe(store, PROBE_A, HARV, T0, observation=7 * DAY)
    sweep = Scan(SWEEP, "2001:db8:bad:9::1", "*", T0 + 60, T0 + 61, 9, [("TCP", 22)],
                 targets=[f"2001:db8:1:1::{n}" for n in range(1, 9)] + [PROBE_A])
    store.add_scans([sweep, portscan("2001:db8:bad:8::1", PROBE_A, T0 + 90)])  # no refresh(): not tied yet
    store.add_scans([portscan("2001:db8:bad:7::1", OWN, T0 + 120)])
    deleted = store.prune(NOW, keep_days=90, max_bytes=4096)
    assert deleted == {"scans": 1}
    assert sorted(row["scanner"] for row in store.scans()) == ["2001:db8:bad:8::1", "2001:db8:bad:9::1"]
    store.close()
