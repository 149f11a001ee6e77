"""The SQLite store: idempotent imports, attribution kinds, schema version, crash safety."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

from appliance.store.db import MIGRATIONS, Store
from appliance.synthlog import generate
from test_seed import seed_log


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
        generate(out, 400_000, seed=5)
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
