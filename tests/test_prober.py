"""The prober thread, run for real: pool names from dnsmasq, probes to chronyd and a capture socket,
probe addresses on a real interface, the ledger in a real store.

The namespaces, chronyd, dnsmasq and the capture socket are those of tests/probe_net.py. Each test
gets its own LAN link in app, a veth `lanN` to srv (srv routes 2001:db8:S:N00::/56 back over
it), so it can add, renumber and delete that LAN's /64 or the whole interface without disturbing
the other tests. The prober runs in a python process in app (pyroute2 and its sockets act on the
namespace they run in), with a config made by `appliance.config.from_dict`; the test asks that
process for snapshots of `prober.status` and reads the store the prober writes, read-only.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.config import from_dict
from appliance.store.db import MIGRATIONS, Store
from tests.probe_net import REPO, Net, Sink, net  # noqa: F401  (net: the namespaces fixture)

RUNNER_LIFETIME = 60  # seconds; `timeout` ends a leaked prober process after this
PROBE_PORTS = {"ntp": 123, "udp123": 123, "udp321": 321}
CHRONY_STRATUM = 8    # probe_net's chronyd: `local stratum 8`
# Long enough for chronyd's answer even when it waits for a neighbour solicitation retransmit (1 s):
# a NODAD address is usable at once, but the kernel joins its solicited-node group a moment later
# (from a work queue), and over a veth the answer comes back within that moment now and then.
REPLY_TIMEOUT = 2

RUNNER = r"""
import json, logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
from appliance.config import from_dict
from appliance.probe.prober import Prober
config = from_dict(json.loads(sys.argv[1]))
prober = Prober(config, config.db_path)
prober.start()
def snapshot():
    return {"status": prober.status, "prefix": prober.prefix, "alive": prober.is_alive(),
            "error": None if prober.error is None else repr(prober.error)}
for line in sys.stdin:  # one snapshot per line asked; "stop" stops the prober and ends
    if line.strip() == "stop":
        started = time.monotonic()
        prober.stop()
        prober.join(10)
        print(json.dumps({**snapshot(), "stopped_in": time.monotonic() - started}), flush=True)
        break
    print(json.dumps(snapshot()), flush=True)
"""


class RunningProber:
    """A Prober thread in a python process in app, asked for snapshots over a pipe."""

    def __init__(self, net: Net, settings: dict, log: Path):
        self.config = from_dict(settings)  # the process builds its own from the same dict
        self.db_path, self.log = self.config.db_path, log
        with open(log, "ab") as handle:
            self.process = net.ns.popen(
                net.app, ["timeout", "-k", "5", str(RUNNER_LIFETIME), sys.executable, "-c", RUNNER,
                          json.dumps(settings)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=handle, cwd=REPO,
                env={**os.environ, "PYTHONPATH": REPO})
        self.last: dict | None = None

    def _ask(self, command: str, timeout: float = 15) -> dict:
        try:
            self.process.stdin.write(command.encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"the prober process is gone:\n{self.log_tail()}") from None
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            raise AssertionError(f"the prober process did not answer {command!r} within {timeout} s:\n"
                                 f"{self.log_tail()}")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the prober process died:\n{self.log_tail()}")
        self.last = json.loads(line)
        return self.last

    def snapshot(self) -> dict:
        return self._ask("status")

    def stop(self) -> dict:
        answer = self._ask("stop")
        self.process.wait(timeout=5)
        return answer

    def wait(self, what: str, check, seconds: float) -> object:
        """Poll `check(snapshot)` until it returns something true; that, or fail naming `what`."""
        deadline = time.monotonic() + seconds
        while True:
            result = check(self.snapshot())
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {seconds} s\nlast snapshot: {self.last}\n"
                                     f"ledger: {ledger(self.db_path)}\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self) -> str:
        return "prober log:\n" + self.log.read_text()[-3000:] if self.log.exists() else "(no prober log)"

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()  # the runner ends at EOF
                self.process.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)  # `timeout` and the python under it
                self.process.wait(timeout=5)


def ledger(db_path: str) -> list[dict]:
    """The probe ledger as the page would read it (a read-only connection beside the prober's)."""
    if not Path(db_path).exists():
        return []
    store = Store(db_path, readonly=True)
    try:
        if store.db.execute("PRAGMA user_version").fetchone()[0] < len(MIGRATIONS):
            return []  # the prober is still creating the store
        return [dict(row) for row in store.probes()]
    finally:
        store.close()


def known_servers(db_path: str) -> list[str]:
    store = Store(db_path, readonly=True)
    try:
        return store.known_servers()
    finally:
        store.close()


def sent(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["sent_at"] is not None]


def within(address: str, prefix: str) -> bool:
    return ipaddress.IPv6Address(address) in ipaddress.IPv6Network(prefix)


# ---- a LAN link of its own per test --------------------------------------------------------------

LINK_NUMBERS = itertools.count(3)  # 1 is eth0's subnet, 2 the made-up pool.probe.test members


@dataclasses.dataclass
class Lan:
    net: Net
    dev: str
    number: int

    def prefix(self, subnet: int = 1) -> str:
        return f"{self.net.site}:{self.number:x}{subnet:02x}::/64"

    def address(self, subnet: int = 1) -> str:
        return f"{self.net.site}:{self.number:x}{subnet:02x}::10"

    def add(self, subnet: int = 1) -> None:
        # A plain global /64 address (static, permanent): enough for choose_prefix_source.
        self.net.ip("addr", "add", f"{self.address(subnet)}/64", "dev", self.dev)

    def probe_addresses(self) -> list[str]:
        """The /128s on the link, as `ip` (not pyroute2) shows them."""
        shown = json.loads(self.net.ip("-j", "-6", "addr", "show", "dev", self.dev) or "[]")
        return sorted(info["local"] for link in shown for info in link.get("addr_info", [])
                      if info.get("prefixlen") == 128 and info.get("scope") == "global")

    def unplug(self) -> None:
        self.net.ip("link", "del", self.dev)  # takes the srv end and its route with it

    def plug(self) -> None:
        ns, net = self.net.ns, self.net
        ns.veth(net.app, self.dev, net.srv, self.dev)
        ns.exec(net.srv, ["ip", "route", "add", f"{net.site}:{self.number:x}00::/56", "dev", self.dev])


@pytest.fixture
def lan(net):
    number = next(LINK_NUMBERS)
    link = Lan(net, f"lan{number}", number)
    link.plug()  # app's default accept_dad is 0 (probe_net): addresses added here are usable at once
    yield link
    net.ns.exec(net.app, ["ip", "link", "del", link.dev], check=False)


@pytest.fixture
def start_prober(net, tmp_path):
    """start_prober(lan, **probe settings): a running Prober on `lan`; stopped and ended afterwards."""
    started: list[RunningProber] = []

    def start(lan: Lan, **probe) -> RunningProber:
        settings = {
            "appliance": {"interface": lan.dev, "state_dir": str(tmp_path / "state")},
            "probe": {"pools": ["chrony.probe.test"], "nameservers": [net.dns], "first_delay": 0, "min_gap": 0.5,
                      "round_every": 1,
                      "server_interval": 3600, "observation": 600, "reply_timeout": REPLY_TIMEOUT,
                      "resolve_every": 600, **probe},
            # The probing itself is tested here; asking a router for pinholes is the lab's (test_appliance_lab).
            "reachability": {"router": "closed"},
        }
        (tmp_path / "state").mkdir(exist_ok=True)
        prober = RunningProber(net, settings, tmp_path / f"prober{len(started)}.log")
        started.append(prober)
        return prober

    yield start
    for prober in started:
        prober.close()


def state(snapshot: dict) -> str | None:
    return snapshot["status"].get("state")


# ---- no prefix, new prefix, renumbering ------------------------------------------------------------

def test_without_a_global_prefix_nothing_is_sent_until_one_appears(net, lan, start_prober):
    with Sink(net, [(net.sink, 123, "capture"), (net.sink, 321, "capture")], seconds=40) as sink:
        # The capture socket is the only server: any probe at all would show there.
        prober = start_prober(lan, pools=["sink.probe.test"], reply_timeout=1)
        paused = prober.wait("paused for want of a prefix", lambda s: state(s) == "paused" and s, 10)
        reason = paused["status"]["reason"]
        assert "no global IPv6 prefix" in reason and lan.dev in reason, reason
        assert paused["status"]["prefix"] is None and paused["prefix"] is None
        assert paused["status"]["pool_errors"] == {}

        # A while later: still paused, and nothing minted, recorded or sent.
        until = time.monotonic() + 1.5
        while time.monotonic() < until:
            snapshot = prober.snapshot()
            assert state(snapshot) == "paused" and snapshot["alive"], str(snapshot)
            assert sink.next(0.1) is None, "a packet reached the server while there was no prefix"
        assert ledger(prober.db_path) == []
        assert lan.probe_addresses() == []
        # The pool was looked up all the same: its members are known, ready for the prefix.
        assert known_servers(prober.db_path) == [net.sink]

        lan.add(1)  # the router's prefix arrives
        prober.wait("the probe", lambda s: len(sent(ledger(prober.db_path))) >= 1, 10)
        snapshot = prober.wait("status probing", lambda s: state(s) == "probing" and s, 5)
        assert prober.stop()["alive"] is False  # nothing is sent after this
        rows = ledger(prober.db_path)
        datagrams = sink.datagrams(1)

    assert snapshot["status"]["prefix"] == lan.prefix(1) and snapshot["prefix"] == lan.prefix(1)
    assert snapshot["status"]["servers"] == 1
    [to_sink] = rows  # server_interval is an hour: one probe
    assert to_sink["server"] == net.sink and to_sink["sent_at"] is not None
    assert within(to_sink["address"], lan.prefix(1)) and to_sink["address"] != lan.address(1), str(to_sink)
    assert [(d["source"], d["sport"], d["to"]) for d in datagrams] == \
        [(to_sink["address"], to_sink["sport"], [net.sink, to_sink["port"]])]


def test_renumbered_lan_prefix_is_followed_by_the_next_probes(net, lan, start_prober):
    lan.add(1)
    # chronyd again and again, about once a second, always a real NTP request: each one answered
    prober = start_prober(lan, server_interval=1, kinds=["ntp"])
    prober.wait("a probe in the first prefix",
                lambda s: [r for r in sent(ledger(prober.db_path)) if within(r["address"], lan.prefix(1))], 10)
    assert prober.snapshot()["prefix"] == lan.prefix(1)

    renumbered = time.time()
    net.ns.exec(net.app, ["ip", "-batch", "-"], input=f"addr del {lan.address(1)}/64 dev {lan.dev}\n"
                                                        f"addr add {lan.address(2)}/64 dev {lan.dev}\n")
    prober.wait("two answered probes in the new prefix", lambda s: len(
        [r for r in ledger(prober.db_path) if within(r["address"], lan.prefix(2)) and r["stratum"] is not None]) >= 2,
        10)
    snapshot = prober.wait("status prefix follows", lambda s: s["status"].get("prefix") == lan.prefix(2) and s, 5)
    assert snapshot["prefix"] == lan.prefix(2) and state(snapshot) == "probing"
    assert prober.stop()["alive"] is False  # every row complete: none in flight
    rows = ledger(prober.db_path)

    prefixes = [lan.prefix(1) if within(row["address"], lan.prefix(1)) else
                lan.prefix(2) if within(row["address"], lan.prefix(2)) else row["address"] for row in rows]
    switch = prefixes.index(lan.prefix(2))
    assert set(prefixes[:switch]) == {lan.prefix(1)} and set(prefixes[switch:]) == {lan.prefix(2)}, str(prefixes)
    # At most the one probe being minted at that moment comes after the renumbering in the old prefix.
    late_old = [row for row in rows[:switch] if row["planned"] > renumbered]
    assert len(late_old) <= 1, str(late_old)
    for row in rows[switch:]:
        assert row["server"] == net.chrony and row["address"] != lan.address(2)
    # The answers come back to the new prefix (one probe in a busy second may go unanswered within
    # its 2 s, as on any network: said in its row, never taken for an answer).
    answered = [row for row in rows[switch:] if row["error"] is None]
    assert len(answered) >= 2 and all(row["stratum"] == CHRONY_STRATUM for row in answered), str(rows[switch:])
    assert all(row["error"] == "no reply within 2 s" and row["stratum"] is None
               for row in rows[switch:] if row not in answered), str(rows[switch:])


# ---- the interface goes away ---------------------------------------------------------------------

def test_unplugged_interface_pauses_probing_and_stop_still_ends_the_thread(net, lan, start_prober):
    lan.add(1)
    prober = start_prober(lan)
    prober.wait("probing", lambda s: state(s) == "probing" and len(sent(ledger(prober.db_path))) == 1, 10)

    lan.unplug()
    gone = f"network interface '{lan.dev}' is not there (unplugged, renamed, deleted or never there"
    prober.wait("paused, naming the interface", lambda s: state(s) == "paused", 5)
    until = time.monotonic() + 1.0  # a while later: the thread lives on, still paused
    while time.monotonic() < until:
        snapshot = prober.snapshot()
        assert snapshot["alive"] and state(snapshot) == "paused", str(snapshot)
        assert snapshot["status"]["reason"].startswith(gone) and snapshot["status"]["prefix"] is None
        time.sleep(0.2)
    assert len(ledger(prober.db_path)) == 1

    stopped = prober.stop()  # while it waits out the pause
    assert stopped["alive"] is False and stopped["stopped_in"] < 2.0, str(stopped)
    assert stopped["error"] is None


def test_interface_unplugged_while_a_probe_waits_for_its_answer(net, lan, start_prober):
    # The worst moment: the address is minted, the ledger row committed, the packet sent, the
    # prober waits for the reply. Unplugging then must pause the prober like any other time.
    lan.add(1)
    with Sink(net, [(net.sink, 123, "capture"), (net.sink, 321, "capture")], seconds=40) as sink:
        prober = start_prober(lan, pools=["sink.probe.test"], server_interval=1, reply_timeout=1)
        first = sink.next(10)
        assert first is not None and first["to"] == [net.sink, 123], str(first)  # the NTP request
        lan.unplug()  # within the 1 s the prober waits for an answer that will not come
        snapshot = prober.wait("the prober notices", lambda s: state(s) not in ("starting", "probing") and s, 8)
        assert state(snapshot) == "paused" and snapshot["alive"], str(snapshot)
        assert snapshot["status"]["reason"].startswith(f"network interface '{lan.dev}' is not there (unplugged")
        [row] = ledger(prober.db_path)
        assert (row["address"], row["sport"], row["kind"]) == (first["source"], first["sport"], "ntp")
        assert row["sent_at"] is not None and row["error"] == "no reply within 1 s"

        # Plugged in again: probing resumes by itself, from the prefix on the new link.
        lan.plug()
        lan.add(1)
        prober.wait("probing again", lambda s: state(s) == "probing" and len(sent(ledger(prober.db_path))) >= 2, 10)
        assert prober.stop()["alive"] is False
        datagrams = sink.datagrams(0)
    rows = ledger(prober.db_path)
    assert all(within(row["address"], lan.prefix(1)) for row in rows)
    assert [(d["source"], d["sport"]) for d in [first, *datagrams]] == [(r["address"], r["sport"]) for r in sent(rows)]


# ---- the ledger and the wire --------------------------------------------------------------------

def test_each_probe_is_one_packet_from_its_own_ledger_address(net, lan, start_prober):
    lan.add(1)
    every = {(server, kind) for server in (net.chrony, net.sink) for kind in PROBE_PORTS}
    with Sink(net, [(net.sink, 123, "capture"), (net.sink, 321, "capture")], seconds=40) as sink:
        prober = start_prober(lan, pools=["ntp.probe.test"], server_interval=1)
        prober.wait("every server probed with every kind",
                    lambda s: {(r["server"], r["kind"]) for r in sent(ledger(prober.db_path))} >= every, 20)
        assert prober.stop()["alive"] is False
        rows = ledger(prober.db_path)
        datagrams = sink.datagrams(len([row for row in rows if row["server"] == net.sink]))

    assert len({row["address"] for row in rows}) == len(rows)  # a new address every time
    for row in rows:
        assert within(row["address"], lan.prefix(1)) and row["address"] != lan.address(1), str(row)
        assert row["server"] in (net.chrony, net.sink) and row["port"] == PROBE_PORTS[row["kind"]], str(row)
        assert row["sent_at"] is not None and row["planned"] <= row["sent_at"] < row["planned"] + 1, str(row)
        assert row["expires"] == pytest.approx(row["planned"] + 600, abs=2), str(row)
        if row["server"] == net.chrony and row["kind"] == "ntp":
            assert row["stratum"] == CHRONY_STRATUM and row["error"] is None, str(row)
            # Same clock on both ends: the offset is within half the round trip.
            assert 0 <= row["delay"] < REPLY_TIMEOUT and abs(row["offset"]) <= row["delay"] / 2 + 0.01, str(row)
        elif row["kind"] == "ntp":  # the capture socket never answers
            assert row["stratum"] is None and row["error"] == f"no reply within {REPLY_TIMEOUT} s", str(row)
        else:  # bare packets: nothing to wait for
            assert row["stratum"] is None and row["error"] is None, str(row)
    for server in (net.chrony, net.sink):  # each server's first three probes: one of each kind
        assert {row["kind"] for row in [r for r in rows if r["server"] == server][:3]} == set(PROBE_PORTS)

    # What reached the capture: exactly one datagram per probe of it, from the ledger's address
    # and port, to the ledger's port, and nothing else (nothing from the LAN address, no retries).
    expected = sorted((row["address"], row["sport"], row["port"], 48 if row["kind"] == "ntp" else 0)
                      for row in rows if row["server"] == net.sink)
    got = sorted((d["source"], d["sport"], d["to"][1], len(bytes.fromhex(d["data"]))) for d in datagrams)
    assert got == expected
    assert all(d["to"][0] == net.sink for d in datagrams)


def test_probes_leave_in_rounds_each_written_before_its_packets(net, lan, start_prober):
    lan.add(1)
    with Sink(net, [(net.sink, 123, "capture"), (net.sink, 321, "capture")], seconds=40) as sink:
        # Two servers due every second, rounds at most every 3 s of up to three probes.
        prober = start_prober(lan, pools=["ntp.probe.test"], server_interval=1, min_gap=1, round_every=3)
        prober.wait("three rounds", lambda s: len({r["planned"] for r in sent(ledger(prober.db_path))}) >= 3, 20)
        assert prober.stop()["alive"] is False
        rows = ledger(prober.db_path)
        datagrams = sink.datagrams(len([row for row in rows if row["server"] == net.sink]))

    rounds: dict[float, list[dict]] = {}
    for row in rows:
        rounds.setdefault(row["planned"], []).append(row)
    starts = sorted(rounds)
    assert all(b - a >= 3 for a, b in zip(starts, starts[1:])), str(starts)
    for start in starts:
        together = rounds[start]
        # Both servers in each round, each from its own address, sent after the round's rows were written,
        # and together: the sink never answers, yet chronyd's probe did not wait for its 2 s.
        assert sorted(row["server"] for row in together) == sorted([net.chrony, net.sink]), str(together)
        assert all(start <= row["sent_at"] < start + 1 for row in together), str(together)
        assert max(r["sent_at"] for r in together) - min(r["sent_at"] for r in together) < 0.5, str(together)
    assert len({row["address"] for row in rows}) == len(rows)
    assert sorted((d["source"], d["sport"]) for d in datagrams) == \
        sorted((row["address"], row["sport"]) for row in rows if row["server"] == net.sink)


# ---- DNS trouble and the live-address cap ---------------------------------------------------------

def test_pool_lookup_failure_is_reported_and_known_servers_are_still_probed(net, lan, start_prober, tmp_path):
    lan.add(1)
    (tmp_path / "state").mkdir()
    seeded = Store(str(tmp_path / "state" / "harvestwatch.sqlite"))  # as an earlier run left it
    seeded.add_pool_members("ntp.probe.test", [net.chrony], time.time() - 86400)
    seeded.close()
    silent = net.sink  # reads DNS queries, never answers
    with Sink(net, [(silent, 53, "capture")], seconds=40) as sink:
        prober = start_prober(lan, pools=["ntp.probe.test"], nameservers=[silent])
        snapshot = prober.wait("the known server probed", lambda s: state(s) == "probing" and sent(
            ledger(prober.db_path)) and s, 12)
        assert prober.stop()["alive"] is False
        queries = sink.datagrams(1)

    # 3 s: the look-up's whole time limit (pools.resolve_pool's default; the prober passes none)
    errors = snapshot["status"]["pool_errors"]
    assert errors == {"ntp.probe.test": f"ntp.probe.test: no answer within 3 s from {silent}"}
    assert snapshot["status"]["servers"] == 1 and snapshot["status"]["prefix"] == lan.prefix(1)
    assert queries and all(q["to"] == [silent, 53] for q in queries)  # it did ask the configured nameserver
    assert known_servers(prober.db_path) == [net.chrony]  # nothing learned, nothing forgotten
    [row] = ledger(prober.db_path)
    assert row["server"] == net.chrony and row["kind"] == "ntp" and row["stratum"] == CHRONY_STRATUM, str(row)


def test_no_more_than_max_live_probe_addresses_at_once(net, lan, start_prober):
    lan.add(1)
    prober = start_prober(lan, server_interval=1, max_live=2)  # chronyd is due again every second
    prober.wait("two probes", lambda s: len(sent(ledger(prober.db_path))) >= 2, 10)

    def hold(seconds: float, probes: int) -> dict:
        until = time.monotonic() + seconds
        while True:
            live = lan.probe_addresses()
            assert len(live) <= 2, str(live)
            assert len(ledger(prober.db_path)) == probes
            snapshot = prober.snapshot()
            if time.monotonic() > until:
                return snapshot
            time.sleep(0.1)

    snapshot = hold(2.0, 2)  # two loop passes with chronyd due
    status = snapshot["status"]
    assert state(snapshot) == "probing" and status["live_addresses"] == 2 and status["max_live"] == 2, str(status)
    assert status["next"][0]["at"] <= time.time()  # due: held back only by the cap
    assert sorted(row["address"] for row in ledger(prober.db_path)) == lan.probe_addresses()

    # One probe address goes (as when its observation window ends): room for exactly one more.
    net.ip("addr", "del", f"{ledger(prober.db_path)[0]['address']}/128", "dev", lan.dev)
    prober.wait("a third probe", lambda s: len(sent(ledger(prober.db_path))) >= 3, 5)
    hold(1.2, 3)
    rows = ledger(prober.db_path)
    assert lan.probe_addresses() == sorted(row["address"] for row in rows[1:])
