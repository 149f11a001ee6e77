"""Pinholes over a whole observation window: renewed at half their lease, given back at the window's
end, and written to the store (the SD card) only where a verdict or a restart needs it.

A week of a window passes here on a simulated clock, which no real router allows (miniupnpd holds
a lease for real seconds): so the router is a stand-in that grants everything and records what it
was asked. The real exchange with Debian's miniupnpd, and a real router losing its pinholes, are
tests/test_reachability_lab.py and tests/test_appliance_lab.py.
"""
from __future__ import annotations

import sqlite3

import pytest

from appliance import config as configuration
from appliance.probe import prober as prober_module
from appliance.probe.pinholes import FirewallStatus, RouterError
from appliance.probe.prober import Prober
from appliance.probe.reach import WRITE_EVERY, Reachability
from appliance.probe.send import ProbeResult
from appliance.store.db import Store

DAY, WEEK = 86400.0, 7 * 86400.0
T0 = 1_700_000_000.0
SERVER = "2001:db8:a1::123"


class RecordingRouter:
    """Grants every pinhole; remembers each request; `forget()` drops them all (a router restart)."""

    def __init__(self):
        self.location, self.uids, self.renewals, self.closed, self.held = "stand-in", 0, [], [], set()

    def find(self):
        return self.location

    def status(self, source):
        return FirewallStatus(enabled=True, pinholes_allowed=True)

    def open(self, source, proto, port, lease):
        self.uids += 1
        self.held.add(self.uids)
        return self.uids

    def renew(self, source, uid, lease):
        if uid not in self.held:
            raise RouterError("the router does not know this pinhole", 704)
        self.renewals.append((source, uid, lease))

    def close(self, source, uid):
        self.held.discard(uid)
        self.closed.append((source, uid))

    def forget(self):
        self.held.clear()


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore(Store):
    """The real store, counting the transactions that wrote pinholes."""

    writes = 0

    def update_pinholes(self, **updates):
        CountingStore.writes += 1
        return super().update_pinholes(**updates)


@pytest.fixture
def rig(tmp_path):
    CountingStore.writes = 0
    conf = configuration.from_dict({"appliance": {"state_dir": str(tmp_path)},
                                    "probe": {"observation": WEEK},
                                    "reachability": {"router": "upnp", "lease": DAY}})
    clock, router = Clock(T0), RecordingRouter()
    store = CountingStore(conf.db_path)
    store.add_pool_members("pool", [SERVER], T0)
    prober = Prober(conf, conf.db_path, clock=clock, router=router)
    prober.reach = Reachability(conf, store, router=router, clock=clock)
    yield conf, clock, router, store, prober
    store.close()


def probe(store, prober, clock, n=1) -> int:
    """A probe's two writes as Prober._round makes them (the packet itself is not sent here)."""
    address = f"2001:db8:1:1::{n:x}"
    reach = prober.reach.prepare(address, clock() + WEEK)
    probe_id = store.plan_probe(address, SERVER, "udp321", 321, clock() + WEEK, planned=clock(), **reach)
    store.record_probe(probe_id, sent_at=clock() + 0.01, sport=40000)
    return probe_id


def run(prober, store, clock, until: float, step: float = 60.0) -> None:
    """The prober's loop: pinholes looked after, then what it gathered written if due."""
    while clock.now < until:
        clock.now += step
        prober.reach.maintain()
        prober._write_gathered(store, clock.now)


def test_a_week_of_pinholes_costs_the_card_two_writes_and_ends_clean(rig):
    conf, clock, router, store, prober = rig
    probe_id = probe(store, prober, clock)
    run(prober, store, clock, T0 + WEEK + 3 * 60)
    # Renewed at half a day's lease, each pinhole about twice a day: never again at every pass (a lease
    # a fraction of a second short of the window's end was renewed every minute for its last 12 h).
    per_pinhole = len(router.renewals) / 3
    assert 12 <= per_pinhole <= 14, router.renewals[-6:]
    assert all(lease > 60 for _, _, lease in router.renewals)
    # The store learned the lease end that reaches the window's end: the window is clean at once.
    assert CountingStore.writes == 1
    [verdict] = store.server_verdicts(clock.now)
    assert verdict["verdict"] == "clean"
    # The giving back waits for the hour's other news (none here): a second write.
    run(prober, store, clock, T0 + WEEK + WRITE_EVERY + 3 * 60)
    assert CountingStore.writes == 2
    rows = store.db.execute("SELECT held_until, closed, uid, lapsed FROM pinholes WHERE probe_id=?",
                            (probe_id,)).fetchall()
    assert len(rows) == 3 and all(row["held_until"] >= T0 + WEEK and row["closed"] and row["uid"] is None
                                  and row["lapsed"] is None for row in rows)
    assert len(router.closed) == 3
    [verdict] = store.server_verdicts(clock.now)
    assert verdict["verdict"] == "clean" and sorted(verdict["clean_open_to"]) == ["tcp/3389", "tcp/8080", "udp/1900"]


def test_the_last_lease_end_is_written_before_the_window_ends(rig):
    conf, clock, router, store, prober = rig
    probe_id = probe(store, prober, clock)
    # The last renewal (the one that carries the pinholes to the window's end) comes 12 to 24 h before
    # it; the store shows it within the hour, long before the verdict needs it.
    run(prober, store, clock, T0 + WEEK - DAY / 2 + WRITE_EVERY + 120)
    held = [row[0] for row in store.db.execute("SELECT held_until FROM pinholes WHERE probe_id=?", (probe_id,))]
    assert held and all(until >= T0 + WEEK for until in held)


def test_a_clean_stop_writes_the_renewals_and_the_next_start_renews_only_what_is_due(rig):
    conf, clock, router, store, prober = rig
    probe_id = probe(store, prober, clock)
    run(prober, store, clock, T0 + 2 * DAY)
    renewed = {uid: clock.now + lease for _, uid, lease in router.renewals}
    assert CountingStore.writes == 0  # renewals in the middle of a window are kept in memory
    prober._write_gathered(store, clock.now, stopping=True)
    stored = dict(store.db.execute("SELECT uid, held_until FROM pinholes WHERE probe_id=?", (probe_id,)).fetchall())
    assert stored and all(stored[uid] >= renewed[uid] - 2 * DAY for uid in stored)
    assert min(stored.values()) > clock.now + DAY / 2  # each as last renewed: more than half a lease left

    # Started again: nothing is due, so nothing is asked of the router.
    before = len(router.renewals)
    again = Prober(conf, conf.db_path, clock=clock, router=router)
    again.reach = Reachability(conf, store, router=router, clock=clock)
    again.reach.maintain()
    assert len(router.renewals) == before


def test_after_a_power_cut_the_next_start_renews_early_and_the_window_still_ends_clean(rig):
    conf, clock, router, store, prober = rig
    probe(store, prober, clock)
    run(prober, store, clock, T0 + 2 * DAY)  # renewed twice; only in memory, then the power goes
    again = Prober(conf, conf.db_path, clock=clock, router=router)
    again.reach = Reachability(conf, store, router=router, clock=clock)
    before = len(router.renewals)
    clock.now += 60
    again.reach.maintain()  # the store says the first lease ends within half a lease: renewed now
    assert len(router.renewals) == before + 3
    run(again, store, clock, T0 + WEEK + 3 * 60)
    [verdict] = store.server_verdicts(clock.now)
    assert verdict["verdict"] == "clean"


def test_a_pinhole_the_router_forgot_is_written_at_once_and_the_window_ends_unverified(rig):
    conf, clock, router, store, prober = rig
    probe_id = probe(store, prober, clock)
    run(prober, store, clock, T0 + DAY)
    router.forget()
    writes = CountingStore.writes
    lost_at = None
    while lost_at is None:
        clock.now += 60
        prober.reach.maintain()
        prober._write_gathered(store, clock.now)
        lost_at = store.db.execute("SELECT min(lapsed) FROM pinholes WHERE probe_id=?", (probe_id,)).fetchone()[0]
    assert CountingStore.writes == writes + 1 and lost_at == clock.now  # in the pass that found it
    assert prober.reach.status["state"] == "pinholes lost"
    run(prober, store, clock, T0 + WEEK + 3 * 60)
    [verdict] = store.server_verdicts(clock.now)
    assert verdict["verdict"] == "unverified" and "not held throughout" in verdict["unverified_why"]


def test_what_could_not_be_written_is_kept_for_the_next_write(rig, monkeypatch):
    conf, clock, router, store, prober = rig
    probe_id = probe(store, prober, clock)
    while not prober.reach.write_due(clock.now):  # the last lease end, gathered an hour ago
        clock.now += 60
        prober.reach.maintain()
    assert clock.now < T0 + WEEK - DAY / 2

    def full(**updates):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "update_pinholes", full)
    with pytest.raises(OSError):
        prober._write_gathered(store, clock.now)
    monkeypatch.undo()
    prober._write_gathered(store, clock.now)  # room again: written by the next pass
    held = [row[0] for row in store.db.execute("SELECT held_until FROM pinholes WHERE probe_id=?", (probe_id,))]
    assert all(until >= T0 + WEEK for until in held)


def test_a_round_of_probes_is_two_writes_that_also_carry_older_pinholes_news(rig, monkeypatch):
    conf, clock, router, store, prober = rig
    old = probe(store, prober, clock)
    run(prober, store, clock, T0 + WEEK + 3 * 60)  # the old window ended: its give-backs wait for a write
    assert router.closed and store.db.execute("SELECT count(*) FROM pinholes WHERE closed IS NULL").fetchone()[0] == 3
    # The addresses and the packets are the lab's (tests/test_prober.py); here only what is written.
    minted = iter(f"2001:db8:1:1::b:{n:x}" for n in range(1, 100))
    monkeypatch.setattr(prober_module.addresses, "mint_probe_address", lambda interface, prefix, valid: next(minted))
    monkeypatch.setattr(prober_module.send, "send_probe", lambda source, server, kind, timeout: ProbeResult(
        kind=kind, source=source, server=server, port=321, sent_at=clock() + 0.01, sport=40000, reply=None,
        error=None))
    watched = []
    prober.on_probe = lambda address, probe_id, planned, expires: watched.append((address, probe_id))
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    servers = [f"2001:db8:a{n}::123" for n in range(2, 8)]
    last = prober._round(store, "lan0", "2001:db8:1:1::/64", [(server, "udp321") for server in servers])
    store.db.set_trace_callback(None)

    assert statements.count("COMMIT") == 2  # six probes: their rows, then what became of them
    rows = store.db.execute("SELECT id, address, server, planned, sent_at, reach FROM probes WHERE id > ? "
                            "ORDER BY id", (old,)).fetchall()
    assert [row["server"] for row in rows] == servers and len({row["address"] for row in rows}) == 6
    assert {row["planned"] for row in rows} == {clock()} and all(row["sent_at"] for row in rows)
    assert all(row["reach"] == "pinholes" for row in rows)
    assert [probe_id for _, probe_id in watched] == [row["id"] for row in rows]  # watched before sending
    assert last["id"] == rows[-1]["id"] and last["server"] == servers[-1]
    # Each new address got its three pinholes; the old window's give-backs went in the same write.
    held = store.db.execute("SELECT probe_id, count(*) FROM pinholes WHERE closed IS NULL GROUP BY probe_id").fetchall()
    assert sorted(tuple(row) for row in held) == [(row["id"], 3) for row in rows]
    assert not any(prober.reach.take_unwritten().values())


def test_a_round_the_store_refused_gives_up_its_addresses_and_pinholes_at_once(rig, monkeypatch):
    conf, clock, router, store, prober = rig
    old = probe(store, prober, clock)
    run(prober, store, clock, T0 + WEEK + 3 * 60)  # the old window's give-backs wait for a write
    minted = iter(f"2001:db8:1:1::c:{n:x}" for n in range(1, 100))
    removed: list[str] = []
    monkeypatch.setattr(prober_module.addresses, "mint_probe_address", lambda interface, prefix, valid: next(minted))
    monkeypatch.setattr(prober_module.addresses, "remove_probe_address",
                        lambda interface, address: removed.append(address))

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "plan_probes", full)
    before = list(router.closed)
    with pytest.raises(sqlite3.OperationalError):
        prober._round(store, "lan0", "2001:db8:1:1::/64", [(f"2001:db8:a{n}::123", "udp321") for n in range(2, 5)])

    # No probe will ever leave from them: the three addresses go now, their nine pinholes with them,
    # and the old window's give-backs wait for the next write.
    addresses = [f"2001:db8:1:1::c:{n:x}" for n in range(1, 4)]
    assert removed == addresses
    given_back = router.closed[len(before):]
    assert sorted({source for source, _ in given_back}) == addresses and len(given_back) == 9
    assert not router.held - {uid for _, uid in router.closed}
    news = prober.reach.take_unwritten()
    assert {probe_id for probe_id, *_ in news["closes"]} == {old} and len(news["closes"]) == 3


def test_a_stop_asked_during_a_round_ends_it_with_what_is_ready(rig, monkeypatch):
    conf, clock, router, store, prober = rig
    minted = iter(f"2001:db8:1:1::d:{n:x}" for n in range(1, 100))
    monkeypatch.setattr(prober_module.addresses, "mint_probe_address", lambda interface, prefix, valid: next(minted))
    monkeypatch.setattr(prober_module.send, "send_probe", lambda source, server, kind, timeout: ProbeResult(
        kind=kind, source=source, server=server, port=321, sent_at=clock() + 0.01, sport=40000, reply=None,
        error=None))
    granting = router.open

    def open_then_stop(source, proto, port, lease):  # the stop comes while the router is asked
        prober.stop()
        return granting(source, proto, port, lease)

    monkeypatch.setattr(router, "open", open_then_stop)
    prober._round(store, "lan0", "2001:db8:1:1::/64", [(f"2001:db8:a{n}::123", "udp321") for n in range(2, 62)])
    rows = store.db.execute("SELECT address, sent_at FROM probes").fetchall()
    assert [tuple(row) for row in rows] == [("2001:db8:1:1::d:1", clock() + 0.01)]  # sent and recorded
    assert next(minted) == "2001:db8:1:1::d:2"  # and no other address made
