"""The daemon's live status lives in RAM (/run), not on the card: the store is written with data,
every STATUS_PERSIST_EVERY seconds and at a clean stop, while the page and `status` still see a
heartbeat of seconds ago. (`make bench-writes` measures what this saves on a card.)"""
from __future__ import annotations

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


def test_a_quiet_daemon_writes_its_status_to_the_card_every_quarter_hour_only(quiet_daemon):
    daemon, store, start = quiet_daemon, quiet_daemon.store, time.time()
    commits = []
    every = int(runtime.STATUS_PERSIST_EVERY)
    for step in range(0, 2 * every + 100, 5):  # over half an hour of flushes every 5 s, nothing else happening
        before = store.db.total_changes
        daemon._status({"heartbeat": start + step}, start + step, data_written=False)
        if store.db.total_changes != before:
            commits.append(step)
    assert commits == [0, every, 2 * every]  # the first, then every STATUS_PERSIST_EVERY
    before = store.db.total_changes
    daemon._status({"heartbeat": start + 2 * every + 100}, start + 2 * every + 100, data_written=True)
    assert store.db.total_changes > before and stored_heartbeat(store) == start + 2 * every + 100


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
