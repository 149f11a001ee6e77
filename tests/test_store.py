"""The SQLite store: idempotent imports, attribution kinds, schema version, crash safety."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

from test_seed import seed_log

from appliance.store.db import MIGRATIONS, Store
from appliance.synthlog import generate


def counts(path):
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("scans", "candidates", "contacts", "suspects")}
    finally:
        db.close()


def test_importing_the_same_log_twice_stores_nothing_twice(tmp_path, run_cli):
    log, db = tmp_path / "kern.log", tmp_path / "hw.sqlite"
    log.write_text(seed_log())
    assert run_cli("analyze", "--year", "2016", "--db", db, log)[0] == 0
    first = counts(db)
    assert first["scans"] == 3 and first["candidates"] == 4 and first["suspects"] == 4
    assert run_cli("analyze", "--year", "2016", "--db", db, log)[0] == 0
    assert counts(db) == first
    store = Store(str(db), readonly=True)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert len(store.db.execute("SELECT * FROM imports").fetchall()) == 2
    store.close()


def test_newer_schema_is_refused_with_a_clear_error(tmp_path, run_cli):
    db = tmp_path / "hw.sqlite"
    sqlite3.connect(db).execute(f"PRAGMA user_version={len(MIGRATIONS) + 5}")
    log = tmp_path / "kern.log"
    log.write_text(seed_log())
    code, _, err = run_cli("analyze", "--db", db, log)
    assert code == 1 and "newer than this HarvestWatch" in err


def test_killed_import_keeps_what_was_committed(tmp_path):
    """SIGKILL an import mid-run: the store opens, passes an integrity check, and a rerun completes it."""
    log, db = tmp_path / "big.log", tmp_path / "hw.sqlite"
    with open(log, "w") as out:
        generate(out, 150_000, seed=5)  # an import of a second or two: killed after its first commit
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "analyze", "--db", str(db), str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if counts(db)["scans"] > 0:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "import finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    partial = counts(db)
    assert partial["scans"] > 0
    check = sqlite3.connect(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    done = subprocess.run([sys.executable, "-m", "appliance", "analyze", "--db", str(db), str(log)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    final = counts(db)
    assert final["scans"] >= partial["scans"] and final["suspects"] > 0


def test_reports_list_every_scans_candidates_in_rank_order_across_fetch_chunks(tmp_path):
    """The reports fetch candidates 500 scans at a time: each of 1,200 scans still gets its own
    candidates, most likely trigger first, as the one-scan document (the status page) shows them."""
    import io
    import json
    from types import SimpleNamespace

    from appliance.attribute.triggers import Candidate
    from appliance.detect.scans import PORTSCAN, Scan
    from appliance.report.document import write_json
    from appliance.report.evidence import iso, scan_document
    from appliance.report.text import write_text

    store = Store(str(tmp_path / "hw.sqlite"))
    t0, scans = 1_700_000_000.0, []
    for n in range(1200):
        target, start = f"2001:db8:1:1::{n:x}", t0 + 10 * n
        # The popular endpoint (contacted before every scan) is contacted last, so rank order is not time order.
        candidates = [Candidate(start - 30, target, 40000, f"2001:db8:a{n % 7}::123", 123, "UDP"),
                      Candidate(start - 2, target, 40001, "2001:db8:f00d::123", 123, "UDP")]
        scans.append(Scan(PORTSCAN, f"2001:db8:bad:{n % 5 + 1}::{n:x}", target, start, start + 1, 20,
                          [("TCP", p) for p in range(1, 21)], candidates=candidates))
    ids = store.add_scans(scans)
    store.refresh()
    rows = store.scans(ids)
    store.select_scans(ids)
    out = io.StringIO()
    result = SimpleNamespace(lines=0, empty=0, out_of_order=0, records=0, skipped={}, touches={})
    write_json(out, store, parameters={}, result=result)
    document = json.loads(out.getvalue())
    documents = document["scans"]
    assert [d["id"] for d in documents] == ids
    # Each family with every one of its addresses, sorted, and its first and last scan.
    assert document["scanner_families"] == [
        {"net": f"2001:db8:bad:{k + 1}::/64",
         "scanners": sorted(f"2001:db8:bad:{k + 1}::{n:x}" for n in range(k, 1200, 5)),
         "scans": 240, "sweeps": 0, "first": iso(t0 + 10 * k), "last": iso(t0 + 10 * (1195 + k) + 1)}
        for k in range(5)]
    for document, row in zip(documents, rows):
        assert [c["rank"] for c in document["candidates"]] == [1, 2]
        assert document["candidates"][0]["dst"] == "2001:db8:f00d::123"
        assert document == json.loads(json.dumps(scan_document(store, row)))
    text = io.StringIO()
    write_text(text, store, 300)
    assert text.getvalue().count(" #1 lag=2.0s ") == 1200 and text.getvalue().count(" #2 lag=30.0s ") == 1200
    assert [line.split()[2] for line in text.getvalue().splitlines() if line.startswith("SCAN DETECTED")] == [
        f"startTime={iso(row['start'])}" for row in rows]
    assert f"  {'2001:db8:bad:1::/64':<24}  addresses  240  scans   240  sweeps   0" in text.getvalue()


def test_candidate_ranks_follow_the_evidence_and_change_when_it_does(tmp_path):
    """Two endpoints with the same record: the one contacted nearer the scan ranks first. Once
    another scan follows a contact of the farther one, that one ranks first, in the earlier scan too."""
    from appliance.attribute.triggers import Candidate
    from appliance.detect.scans import PORTSCAN, Scan
    from appliance.report.evidence import scan_document

    store = Store(str(tmp_path / "hw.sqlite"))
    t0, far, near = 1_700_000_000.0, "2001:db8:a::123", "2001:db8:b::53"

    def scan(target, start, *candidates):
        return Scan(PORTSCAN, "2001:db8:bad::1", target, start, start + 1, 20, [("TCP", p) for p in range(1, 21)],
                    candidates=[Candidate(start - lag, target, 40000, dst, port, "UDP")
                                for lag, dst, port in candidates])

    def ranks(scan_id):
        (row,) = store.scans([scan_id])
        return [(c["dst"], c["rank"]) for c in scan_document(store, row)["candidates"]]

    (first,) = store.add_scans([scan("2001:db8:1::1", t0, (50, far, 123), (5, near, 53))])
    store.refresh()
    assert ranks(first) == [(near, 1), (far, 2)]
    store.add_scans([scan("2001:db8:1::2", t0 + 600, (40, far, 123))])
    store.refresh()
    assert ranks(first) == [(far, 1), (near, 2)]
    store.close()


def test_refresh_while_another_connection_writes(tmp_path, run_cli):
    # The daemon refreshes while its prober and namer threads write through connections of their
    # own: a refresh must wait its turn, never fail with "database is locked".
    import threading

    log, db = tmp_path / "kern.log", tmp_path / "hw.sqlite"
    with open(log, "w") as out:
        generate(out, 20_000, seed=4)
    assert run_cli("analyze", "--db", db, log)[0] == 0
    expected = counts(db)
    done = threading.Event()
    failures = []

    def prober():
        other = Store(str(db))
        try:
            n = 0
            while not done.is_set():
                other.set_status({"heartbeat": n}, now=float(n))
                n += 1
        except sqlite3.Error as exc:
            failures.append(exc)
        finally:
            other.close()

    writer = threading.Thread(target=prober)
    writer.start()
    store = Store(str(db))
    try:
        for _ in range(15):
            store.refresh()
    finally:
        done.set()
        writer.join()
        store.close()
    assert not failures
    assert counts(db) == expected
