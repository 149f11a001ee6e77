"""Upgrades keep the evidence: a store and a configuration written by an earlier release are read
(and the store migrated) by this one, and `harvestwatch backup` / `restore` move both to a new card.

tests/files/release-0.1.0/ holds what release 0.1.0 wrote (its store as an SQL dump, its config).
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import tarfile
import time
from pathlib import Path

import pytest

from appliance import config
from appliance.store.db import MIGRATIONS, Store
from appliance.web import create_app
from appliance.words import Verdict
from tests import web_store as ws

RELEASES = Path(__file__).parent / "files"


def store_of_release(release: str, path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript((RELEASES / f"release-{release}" / "store.sql").read_text())
    db.close()
    return path


@pytest.mark.parametrize("release", ["0.1.0"])
def test_a_store_and_config_of_an_earlier_release_are_read_by_this_one(tmp_path, release):
    path = store_of_release(release, tmp_path / "harvestwatch.sqlite")
    written = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert 0 < written <= len(MIGRATIONS)
    store = Store(str(path))  # the daemon's open: migrates to this release's schema
    try:
        assert store.schema_version() == len(MIGRATIONS)
        verdicts = {v["server"]: v["verdict"] for v in store.server_verdicts(time.time())}
        assert verdicts[ws.HARVESTER] == Verdict.HARVESTER  # the evidence holds whatever the time now
        assert store.db.execute("SELECT count(*) FROM scans").fetchone()[0] == 6
        assert store.db.execute("SELECT count(*) FROM touches").fetchone()[0] > 0
    finally:
        store.close()
    page = create_app(str(path)).test_client().get("/", environ_base={"REMOTE_ADDR": "::1"})
    assert page.status_code == 200 and f"{ws.HARVESTER}</code></a> is a confirmed harvester" in page.get_data(True)
    loaded = config.load(str(RELEASES / f"release-{release}" / "config.toml"))
    assert loaded.probe.pools == ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]


def test_a_store_of_the_first_schema_is_migrated_with_its_scans(tmp_path):
    path = tmp_path / "harvestwatch.sqlite"
    db = sqlite3.connect(path)
    db.executescript("BEGIN;" + MIGRATIONS[0] + "PRAGMA user_version=1;COMMIT;")
    columns = [row[1] for row in db.execute("PRAGMA table_info(scans)")]
    row = {"kind": "portscan", "scanner": ws.SCANNER_4, "scanner_net": "2001:db8:5ca3:10::/64", "target": ws.STABLE,
           "start": 1796126400.0, "end": 1796126400.6, "packets": 12, "port_count": 10,
           "ports": json.dumps([["TCP", p] for p in range(10)]), "protocols": json.dumps({"TCP": 10}),
           "targets": "[]"}
    given = {key: value for key, value in row.items() if key in columns}
    db.execute(f"INSERT INTO scans({', '.join(given)}) VALUES ({', '.join('?' * len(given))})", list(given.values()))
    db.commit()
    db.close()
    store = Store(str(path))
    try:
        assert store.schema_version() == len(MIGRATIONS)
        (scan,) = store.scans([1])
        assert scan["scanner"] == ws.SCANNER_4 and scan["port_count"] == 10
    finally:
        store.close()


# -- backup and restore ----------------------------------------------------------------------------
@pytest.fixture
def card(tmp_path):
    """An appliance's state on a card: its config names a state directory holding a store whose
    daemon stopped cleanly."""
    state = tmp_path / "card" / "state"
    state.mkdir(parents=True)
    conf = tmp_path / "card" / "config.toml"
    conf.write_text(f'[appliance]\nstate_dir = "{state}"\n\n[probe]\npools = ["0.pool.lab.test"]\n')
    facts = ws.fill_realistic_store(state / "harvestwatch.sqlite")
    store = Store(str(state / "harvestwatch.sqlite"))
    store.set_status({"clean_stop": True})
    store.close()
    return conf, state / "harvestwatch.sqlite", facts


def evidence(db: Path) -> list:
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [reader.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
                for table in ("probes", "touches", "scans", "pool_members")]
    finally:
        reader.close()


def test_backup_and_restore_move_the_evidence_and_settings_to_a_new_card(card, tmp_path, run_cli):
    conf, db, facts = card
    before = evidence(db)
    backup = tmp_path / "harvestwatch.tar.gz"
    code, out, err = run_cli("backup", backup, "--config", conf)
    assert code == 0, err
    assert f"backed up {db} (schema {len(MIGRATIONS)}) and {conf} to {backup}" in err
    with tarfile.open(backup) as tar:
        assert sorted(tar.getnames()) == ["harvestwatch/config.toml", "harvestwatch/harvestwatch.sqlite",
                                          "harvestwatch/manifest.json"]
    # A new card: nothing of the old one is left.
    shutil.rmtree(conf.parent)
    code, out, err = run_cli("restore", backup, "--config", conf)
    assert code == 0, err
    assert f"to {db} and the configuration to {conf}" in out and "kept" not in out
    assert evidence(db) == before
    assert conf.read_text().startswith("[appliance]") and config.load(str(conf)).db_path == str(db)
    code, out, _ = run_cli("status", "--config", conf)
    assert code == 0 and "CONFIRMED HARVESTER" in out and ws.HARVESTER in out


def test_a_backup_taken_while_the_daemon_writes_is_consistent(card, tmp_path, run_cli):
    conf, db, _ = card
    writer = Store(str(db))
    try:
        writer.db.execute("BEGIN")
        writer.db.execute("DELETE FROM touches")  # uncommitted: no backup may hold half of it
        code, _, err = run_cli("backup", tmp_path / "during.tar.gz", "--config", conf)
        assert code == 0, err
    finally:
        writer.db.rollback()
        writer.close()
    restored = tmp_path / "restored.sqlite"
    code, _, err = run_cli("restore", tmp_path / "during.tar.gz", "--config", conf, "--db", restored)
    assert code == 0, err
    assert evidence(restored) == evidence(db)


def test_restore_keeps_what_it_replaces(card, tmp_path, run_cli):
    conf, db, _ = card
    code, _, err = run_cli("backup", tmp_path / "b.tar.gz", "--config", conf)
    assert code == 0, err
    old_config = conf.read_text()
    Store(str(db)).close()
    original = db.read_bytes()
    code, out, err = run_cli("restore", tmp_path / "b.tar.gz", "--config", conf)
    assert code == 0, err
    assert f"kept what it replaced: {db}.before-restore" in out and f"{conf}.before-restore" in out
    assert Path(f"{db}.before-restore").read_bytes() == original
    assert Path(f"{conf}.before-restore").read_text() == old_config


def test_a_backup_through_a_pipe(card, tmp_path, capsysbinary):
    from appliance.cli import main
    conf, db, _ = card
    assert main(["backup", "-", "--config", str(conf)]) == 0
    data = capsysbinary.readouterr().out
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert "harvestwatch/harvestwatch.sqlite" in tar.getnames()


@pytest.mark.parametrize("spoil, message", [
    ("flip", "does not match its manifest: damaged in transit?"),
    ("garbage", "not a HarvestWatch backup (a gzip'd tar)"),
    ("newer", "newer than this HarvestWatch"),
    ("bad-config", "probe.kinds"),
    ("stranger", "not a HarvestWatch backup: it holds 'harvestwatch/../../etc/passwd'"),
])
def test_a_bad_backup_is_refused_and_nothing_changes(card, tmp_path, run_cli, spoil, message):
    conf, db, _ = card
    good = tmp_path / "good.tar.gz"
    assert run_cli("backup", good, "--config", conf)[0] == 0
    bad = tmp_path / "bad.tar.gz"
    members = {}
    with tarfile.open(good) as tar:
        for member in tar:
            members[member.name] = tar.extractfile(member).read()
    store_bytes = bytearray(members["harvestwatch/harvestwatch.sqlite"])
    manifest = json.loads(members["harvestwatch/manifest.json"])
    if spoil == "flip":
        store_bytes[len(store_bytes) // 2] ^= 0xFF
    elif spoil == "newer":
        scratch = tmp_path / "newer.sqlite"
        scratch.write_bytes(store_bytes)
        writer = sqlite3.connect(scratch)
        writer.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
        writer.close()  # the last connection: its journal is folded into the file
        store_bytes = bytearray(scratch.read_bytes())
        manifest["files"]["harvestwatch.sqlite"] = hashlib.sha256(store_bytes).hexdigest()
    elif spoil == "bad-config":
        members["harvestwatch/config.toml"] = b'[probe]\nkinds = ["ping"]\n'
        manifest["files"]["config.toml"] = hashlib.sha256(members["harvestwatch/config.toml"]).hexdigest()
    members["harvestwatch/harvestwatch.sqlite"] = bytes(store_bytes)
    members["harvestwatch/manifest.json"] = json.dumps(manifest).encode()
    if spoil == "stranger":
        members["harvestwatch/../../etc/passwd"] = b"root:x:0:0::/root:/bin/sh\n"
    if spoil == "garbage":
        bad.write_bytes(b"this is not a backup\n" * 100)
    else:
        with tarfile.open(bad, "w:gz") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    before, config_before = db.read_bytes(), conf.read_text()
    code, out, err = run_cli("restore", bad, "--config", conf)
    assert code == 2 and message in err, err
    assert "Traceback" not in err
    assert db.read_bytes() == before and conf.read_text() == config_before
    assert not Path(f"{db}.before-restore").exists()
    assert not (tmp_path.parent / "etc" / "passwd").exists()


def test_restore_refuses_while_the_daemon_runs(card, tmp_path, run_cli):
    conf, db, _ = card
    assert run_cli("backup", tmp_path / "b.tar.gz", "--config", conf)[0] == 0
    store = Store(str(db))
    store.set_status({"clean_stop": False, "heartbeat": time.time()})
    store.close()
    before = db.read_bytes()
    code, _, err = run_cli("restore", tmp_path / "b.tar.gz", "--config", conf)
    assert code == 2 and "the daemon is running on this store: stop it first" in err
    assert db.read_bytes() == before


def test_backup_mistakes_get_one_line(tmp_path, run_cli):
    code, _, err = run_cli("backup", tmp_path / "b.tar.gz", "--db", tmp_path / "none.sqlite")
    assert code == 2 and err.strip() == f"harvestwatch: no store at {tmp_path / 'none.sqlite'}: nothing to back up"
    assert not (tmp_path / "b.tar.gz").exists() and not (tmp_path / "b.tar.gz.partial").exists()
    code, _, err = run_cli("restore", tmp_path / "missing.tar.gz", "--db", tmp_path / "x.sqlite")
    assert code == 2 and "No such file" in err and "Traceback" not in err
