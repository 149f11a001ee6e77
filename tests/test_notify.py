"""Notifications: a confirmed harvester and a lost firewall are told once each, through Apprise, to a
real webhook receiver on this machine's loopback (Apprise's json:// posts what it tells as JSON)."""
from __future__ import annotations

import http.server
import json
import socket
import threading

import pytest

from appliance.notify import Notifier, findings
from appliance.store.db import Store
from tests.test_live_store import HARV, HONEST, PROBE_A, T0, probe

NOW = T0 + 3600


class Receiver(http.server.HTTPServer):
    address_family = socket.AF_INET6

    def __init__(self):
        self.received: list[dict] = []
        self.refuse = False
        super().__init__(("::1", 0), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.refuse:
            self.send_response(503)
        else:
            self.server.received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "hw.sqlite"))
    store.add_pool_members("2.debian.pool.ntp.org", [HARV, HONEST], T0)
    probe_id = probe(store, PROBE_A, HARV, T0, observation=86400)
    store.add_touches({(probe_id, "2001:db8:bad:1::66", "TCP", 22): (T0 + 42, T0 + 43, 3)})
    store.set_status({"started": T0, "firewall": {"in_force": True, "problems": []}})
    yield store
    store.close()


def test_a_harvester_is_told_once_with_what_to_do(store, receiver, tmp_path):
    notifier = Notifier([f"json://[::1]:{receiver.server_port}/hook"], store.path, clock=lambda: NOW)
    assert notifier.check(store) == [f"harvester {HARV}"]
    (told,) = receiver.received
    assert told["title"] == f"HarvestWatch: {HARV} harvests IPv6 addresses"
    assert "2.debian.pool.ntp.org" in told["message"] and "stop using this server" in told["message"]
    assert "3 packets, the first 42 s after the probe" in told["message"]
    assert notifier.check(store) == [] and len(receiver.received) == 1   # at most once
    # ... even after a restart: what was told is in the store.
    again = Notifier([f"json://[::1]:{receiver.server_port}/hook"], store.path, clock=lambda: NOW)
    assert again.check(store) == [] and len(receiver.received) == 1


def test_a_lost_firewall_is_told_once_per_episode_and_an_undelivered_one_again(store, receiver):
    notifier = Notifier([f"json://[::1]:{receiver.server_port}/hook"], store.path, clock=lambda: NOW)
    notifier.check(store)
    receiver.received.clear()
    store.set_status({"firewall": {"in_force": False, "problems": ["chain HW-IN is missing (ip6tables-legacy)"]}})
    receiver.refuse = True
    assert notifier.check(store) == []          # not delivered: not marked as told
    receiver.refuse = False
    assert notifier.check(store) == ["firewall"]
    assert "chain HW-IN is missing" in receiver.received[0]["message"]
    assert notifier.check(store) == []
    store.set_status({"firewall": {"in_force": True, "problems": []}})
    assert notifier.check(store) == []          # right again: nothing to tell, the episode is over
    store.set_status({"firewall": {"in_force": False, "problems": ["INPUT does not jump to HW-IN"]}})
    assert notifier.check(store) == ["firewall"]   # a new episode
    assert len(receiver.received) == 2


def test_findings_claim_only_what_the_store_shows(tmp_path):
    store = Store(str(tmp_path / "empty.sqlite"))
    assert findings(store, NOW) == []      # nothing known: nothing told, not "all is well" either
    store.close()


def test_a_url_apprise_does_not_know_is_named_without_its_secrets(store, caplog):
    notifier = Notifier(["nosuchscheme://token-secret@host"], store.path)
    assert notifier.bad_urls == ["nosuchscheme://token-secret@host"]
    assert "token-secret" not in caplog.text and "nosuchscheme://…" in caplog.text


def test_a_store_that_cannot_be_written_makes_nothing_be_told_twice(store, receiver, monkeypatch):
    import sqlite3

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")
    notifier = Notifier([f"json://[::1]:{receiver.server_port}/hook"], store.path, clock=lambda: NOW)
    monkeypatch.setattr(store, "set_status", disk_full)
    for _ in range(3):  # each check fails to write what it told; the thread logs that and goes on
        with pytest.raises(sqlite3.OperationalError):
            notifier.check(store)
    assert len(receiver.received) == 1
