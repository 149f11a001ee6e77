"""The daemon's live status lives in RAM (/run), not on the card: the store is written with data,
every STATUS_PERSIST_EVERY seconds and at a clean stop, while the page and `status` still see a
heartbeat of seconds ago. (`make bench-writes` measures what this saves on a card.)"""
from __future__ import annotations

import json
import os
import time

import pytest

from appliance import config as configuration
from appliance.daemon import Daemon
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


def test_a_quiet_store_has_its_wal_emptied_without_waiting_for_a_busy_reader(quiet_daemon):
    """Reads of a store whose WAL holds frames write to the card (make bench-writes): once a flush
    wrote nothing, the daemon empties the WAL, but never waits for a reader to let it."""
    daemon, now = quiet_daemon, time.time()
    wal = daemon.config.db_path + "-wal"
    daemon._status({"heartbeat": now}, now, data_written=True)
    assert os.path.getsize(wal) > 0
    reader = Store(daemon.config.db_path, readonly=True)
    reader.db.execute("BEGIN")
    reader.db.execute("SELECT count(*) FROM status").fetchone()
    started = time.monotonic()
    daemon._empty_the_wal()
    assert time.monotonic() - started < 1.0 and os.path.getsize(wal) > 0  # busy: left for the next flush
    reader.db.execute("COMMIT")
    daemon._empty_the_wal()
    assert os.path.getsize(wal) == 0
    assert reader.status()["heartbeat"] == now  # nothing lost: it is in the store itself now
    reader.close()
