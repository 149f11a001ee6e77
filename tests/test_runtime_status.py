"""The daemon's live status lives in RAM (/run), not on the card: the store is written with data,
every STATUS_PERSIST_EVERY seconds and at a clean stop, while the page and `status` still see a
heartbeat of seconds ago. (`make bench-writes` measures what this saves on a card.)"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time

import pytest

from appliance import config as configuration
from appliance.daemon import WAL_COPY_EVERY, WAL_COPY_QUIET, Daemon
from appliance.probe.prober import Prober
from appliance.store import runtime
from appliance.store.db import Store
from appliance.web import create_app


@pytest.fixture
def quiet_daemon(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "RUNTIME_DIR", str(tmp_path / "run"))
    conf = configuration.from_dict({"appliance": {"state_dir": str(tmp_path / "state")}})
    os.makedirs(conf.appliance.state_dir)
    daemon = Daemon(conf)
    daemon.store = Store(conf.db_path)
    yield daemon
    daemon.store.close()


def stored_heartbeat(store: Store):
    row = store.db.execute("SELECT value FROM status WHERE key='heartbeat'").fetchone()
    return None if row is None else float(row[0])


def test_a_quiet_daemon_writes_its_status_to_the_card_once_an_hour_only(quiet_daemon):
    daemon, store, start = quiet_daemon, quiet_daemon.store, time.time()
    commits = []
    every = int(runtime.STATUS_PERSIST_EVERY)
    for step in range(0, 2 * every + 100, 5):  # over two hours of flushes every 5 s, nothing else happening
        before = store.db.total_changes
        daemon._status({"heartbeat": start + step}, start + step, data_written=False)
        if store.db.total_changes != before:
            commits.append(step)
    assert commits == [0, every, 2 * every]  # the first, then every STATUS_PERSIST_EVERY
    before = store.db.total_changes
    daemon._status({"heartbeat": start + 2 * every + 100}, start + 2 * every + 100, data_written=True)
    assert store.db.total_changes > before and stored_heartbeat(store) == start + 2 * every + 100


def stored(store: Store) -> dict:
    return {key: json.loads(value) for key, value in store.db.execute("SELECT key, value FROM status")}


def test_only_the_parts_of_the_status_that_changed_are_written_again(quiet_daemon):
    daemon, store, now = quiet_daemon, quiet_daemon.store, time.time()
    plans = {"servers": [{"address": f"2001:db8:5::{n:x}", "next": now + n} for n in range(200)]}
    daemon._status({"heartbeat": now, "prober": plans, "counters": {"packets": 1}}, now, data_written=True)
    before = store.db.total_changes
    daemon._status({"heartbeat": now + 5, "prober": plans, "counters": {"packets": 2}}, now + 5, data_written=True)
    assert store.db.total_changes - before == 2  # heartbeat and counters; the prober's plans stay as they are
    assert stored(store) == {"heartbeat": now + 5, "prober": plans, "counters": {"packets": 2}}


def test_a_status_written_by_another_path_is_not_taken_for_unchanged(quiet_daemon):
    daemon, store, now = quiet_daemon, quiet_daemon.store, time.time()
    daemon._status({"heartbeat": now, "store": {"full": False}}, now, data_written=True)
    daemon._set_status({"store": {"full": True}}, now + 1)     # the disk-full path writes directly
    daemon._status({"heartbeat": now + 2, "store": {"full": False}}, now + 2, data_written=True)
    assert stored(store)["store"] == {"full": False}


def test_every_reader_sees_the_live_heartbeat_over_the_cards(quiet_daemon):
    daemon, store, now = quiet_daemon, quiet_daemon.store, time.time()
    daemon._status({"heartbeat": now - 300}, now - 300, data_written=False)  # on the card
    daemon._status({"heartbeat": now}, now, data_written=False)               # in RAM only
    assert stored_heartbeat(store) == now - 300 and store.status()["heartbeat"] == now
    page = create_app(daemon.config.db_path).test_client().get("/api/overview",
                                                                environ_base={"REMOTE_ADDR": "::1"})
    assert page.get_json()["daemon"]["alive"] is True
    # The live status of a store replaced at the same path since (a restore) is not laid over it.
    os.replace(daemon.config.db_path, daemon.config.db_path + ".old")
    Store(daemon.config.db_path).close()
    assert Store(daemon.config.db_path, readonly=True).status() == {}


def test_without_ram_the_status_goes_to_the_card_every_time(quiet_daemon, tmp_path, monkeypatch):
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setattr(runtime, "RUNTIME_DIR", str(tmp_path / "not-a-dir" / "run"))
    daemon, store, now = quiet_daemon, quiet_daemon.store, time.time()
    for step in range(3):
        daemon._status({"heartbeat": now + step * 5}, now + step * 5, data_written=False)
        assert stored_heartbeat(store) == now + step * 5


def in_the_store_file(path: str, tmp_path) -> dict:
    """What the store file itself holds, without its WAL: a copy of the file alone, read."""
    copy = tmp_path / "store-file-only.sqlite"
    copy.unlink(missing_ok=True)
    shutil.copyfile(path, copy)
    with contextlib.closing(sqlite3.connect(copy)) as db:
        return {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM status")}


def copy_when_quiet(daemon: Daemon, now: float) -> None:
    """Flushes that wrote nothing, at `now` and once the store has been quiet long enough."""
    daemon._copy_the_wal(now)
    daemon._copy_the_wal(now + WAL_COPY_QUIET)


def test_a_quiet_store_has_its_wal_copied_without_waiting_for_a_busy_reader(quiet_daemon, tmp_path):
    """Reads of a store whose WAL holds frames not in the store write to the card (make bench-writes):
    once the store is quiet, the daemon copies the WAL into the store, but never waits for a reader."""
    daemon, now = quiet_daemon, time.time()
    copy_when_quiet(daemon, now - 2 * WAL_COPY_EVERY)  # the new store's tables, long enough ago
    reader = Store(daemon.config.db_path, readonly=True)
    reader.db.execute("BEGIN")
    reader.db.execute("SELECT count(*) FROM status").fetchone()  # a snapshot from before the write
    daemon._status({"heartbeat": now}, now, data_written=True)
    daemon._copy_the_wal(now + 5)
    daemon._copy_the_wal(now + WAL_COPY_QUIET / 2)
    assert "heartbeat" not in in_the_store_file(daemon.config.db_path, tmp_path)  # in the WAL only
    started = time.monotonic()
    daemon._copy_the_wal(now + 5 + WAL_COPY_QUIET)
    assert time.monotonic() - started < 1.0  # busy: left for the next flush
    assert "heartbeat" not in in_the_store_file(daemon.config.db_path, tmp_path)
    reader.db.execute("COMMIT")
    daemon._copy_the_wal(now + 10 + WAL_COPY_QUIET)
    assert in_the_store_file(daemon.config.db_path, tmp_path)["heartbeat"] == now
    assert reader.status()["heartbeat"] == now  # nothing lost
    reader.close()


def test_a_burst_of_writes_by_any_connection_is_copied_once_after_it(quiet_daemon, tmp_path, monkeypatch):
    """A probe's writes come from the prober's connection, seconds apart, and probes a minute apart:
    one copy once they stop, none while nothing is written, and at most one every WAL_COPY_EVERY
    (six hours) however often the prober writes (a copy costs more than a probe's writes)."""
    daemon, start = quiet_daemon, time.time()
    copy_when_quiet(daemon, start - 2 * WAL_COPY_EVERY)
    copies = []
    checkpoint = daemon.store.checkpoint
    monkeypatch.setattr(daemon.store, "checkpoint", lambda: copies.append(now) or checkpoint())
    prober = Store(daemon.config.db_path)
    writes = {0: "2001:db8:123::1", 30: "2001:db8:123::2", 90: "2001:db8:123::3"}
    for step in range(0, 3600, 5):  # an hour of flushes that wrote nothing themselves
        now = start + step
        if step in writes:
            prober.add_pool_members("2.debian.pool.ntp.org", [writes[step]], now)
        daemon._copy_the_wal(now)
    assert len(copies) == 1 and copies[0] >= start + 90 + WAL_COPY_QUIET
    file_only = shutil.copyfile(daemon.config.db_path, tmp_path / "file-only.sqlite")
    with contextlib.closing(sqlite3.connect(file_only)) as db:
        assert {row[0] for row in db.execute("SELECT address FROM pool_members")} == set(writes.values())

    every = int(WAL_COPY_EVERY)
    for step in range(3600, 3600 + 3 * every, 5):  # three such spells with a write every ten minutes
        now = start + step
        if step % 600 == 0:
            prober.add_pool_members("2.debian.pool.ntp.org", [f"2001:db8:124::{step:x}"], now)
        daemon._copy_the_wal(now)
    assert len(copies) == 4 and all(b - a >= WAL_COPY_EVERY for a, b in zip(copies, copies[1:]))
    prober.close()


def test_a_quiet_hours_contacts_go_in_the_status_transaction(quiet_daemon):
    daemon, store, now = quiet_daemon, quiet_daemon.store, time.time()
    daemon._status({"heartbeat": now}, now, data_written=True)
    daemon.unstored["contacts"] = {("2001:db8:1::1", "UDP", "2001:db8:123::1", 123): [now, now + 1]}
    daemon._status({"heartbeat": now + 5}, now + 5, data_written=False)  # not due: neither is written
    assert store.db.execute("SELECT count(*) FROM contacts").fetchone()[0] == 0
    before = store.db.total_changes
    daemon._status({"heartbeat": now + runtime.STATUS_PERSIST_EVERY},
                   now + runtime.STATUS_PERSIST_EVERY, data_written=False)
    assert [tuple(row) for row in store.db.execute("SELECT src, dst FROM contacts")] == [
        ("2001:db8:1::1", "2001:db8:123::1")]
    assert store.db.total_changes - before == 2 and daemon.unstored["contacts"] == {}


def test_pool_sightings_wait_for_the_hourly_transaction_and_survive_a_failed_one(quiet_daemon, monkeypatch):
    """The pools are asked every 15 minutes and their answers rotate: a member seen again is written
    with the status once an hour (one commit), never lost if that write fails (a full disk)."""
    daemon, store, now = quiet_daemon, quiet_daemon.store, time.time()
    store.add_pool_members("2.debian.pool.ntp.org", ["2001:db8:123::1", "2001:db8:123::2"], now - 7200)
    daemon._status({"heartbeat": now}, now, data_written=True)
    prober = Prober(daemon.config, daemon.config.db_path)
    for minutes in (15, 30, 45):  # what Prober._resolve records of each answer
        member = f"2001:db8:123::{2 - minutes // 15 % 2}"  # ::1, ::2, ::1 again
        prober.sightings[("2.debian.pool.ntp.org", member)] = now + 60 * minutes
    daemon.unstored["pool_seen"].update(prober.take_sightings())
    assert prober.take_sightings() == {}
    daemon._status({"heartbeat": now + 2700}, now + 2700, data_written=False)  # not due yet
    last_seen = "SELECT last_seen FROM pool_members ORDER BY address"
    assert [row[0] for row in store.db.execute(last_seen)] == [now - 7200, now - 7200]

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(store, "set_status", full)
    due = now + runtime.STATUS_PERSIST_EVERY
    with pytest.raises(sqlite3.OperationalError):
        daemon._status({"heartbeat": due}, due, data_written=False)
    monkeypatch.undo()
    before = store.db.total_changes
    daemon._status({"heartbeat": due + 5}, due + 5, data_written=False)
    assert [row[0] for row in store.db.execute(last_seen)] == [now + 45 * 60, now + 30 * 60]
    assert store.db.total_changes - before == 3  # the heartbeat and two members, in one transaction
