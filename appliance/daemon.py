"""`harvestwatch run`: the live appliance in one process.

The main thread captures (NFLOG), detects scans and touches and attributes with the same stages
`analyze` uses, and writes the store in batches every `store.flush_every` seconds; the prober runs
beside it in its own thread. Every 30 s it checks that the firewall and the privacy sysctls are
still in force (restoring them if not). What the capture could not see is written down as a gap:
the time the daemon was not running (found from the last heartbeat at start), socket overruns,
sequence gaps, and packets the flood limit dropped unlogged.

Nothing is stamped with the wall clock before it is known to be right (clock.source): until then
the firewall is in force and packets are captured and held, with the monotonic time they came;
once the clock is right they are given their true times and go through the stages, and only then
do the prober and the records start.
"""
from __future__ import annotations

import logging
import os
import selectors
import signal
import time

from .attribute.names import ScannerNamer
from .attribute.triggers import TriggerHistory
from .capture.nflog import NflogError, NflogReader
from .detect.scans import Scan, ScanDetector
from .detect.touches import TouchDetector
from .host import clock, firewall, privacy
from .lan import LanNetworks
from .packet import INBOUND, OUTBOUND, Packet
from .probe import addresses
from .probe.prober import Prober
from .store.db import Store

log = logging.getLogger("harvestwatch")
HEALTH_EVERY = 30.0
CLOCK_EVERY = 5.0          # while waiting for the clock, ask this often
HELD_LIMIT = 50_000        # packets held while the clock is not right; beyond, counted as lost
INBOUND_HOURS = 24         # the passive sign of reachability: unsolicited inbound from outside, last 24 h


class Daemon:
    def __init__(self, config):
        self.config = config
        self.stopping = False
        self.pending: list[Scan] = []
        self.counters = {"packets": 0, "inbound": 0, "outbound": 0, "scans": 0, "touches": 0}
        self.last_record: float | None = None
        self.ruleset: firewall.Ruleset | None = None
        self.onlink: str | None = None
        self.flood_seen = 0
        self.health: dict = {}
        self.lan = LanNetworks(config.appliance.lan_prefixes)
        self.touches = TouchDetector(self.lan)
        self.synced = False
        self.clock_state: clock.ClockState | None = None
        self.held: list[tuple[float, float, list[Packet]]] = []  # (wall, monotonic, packets) before the clock was right
        self.held_count = self.held_lost = 0
        self.inbound: dict[int, dict[str, int]] = {}  # hour -> protocol -> packets from outside the LAN

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> int:
        config = self.config
        # First of all: a SIGTERM during start-up (firewall, NFLOG bind) must still end in a clean stop.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._ask_stop)
        os.makedirs(config.appliance.state_dir, exist_ok=True)
        self.store = store = Store(config.db_path)
        store.family_prefix = config.detect.family_prefix
        self.previous = store.status()  # the last run's, for the downtime (written down once the clock is right)
        store.set_status({"started": time.time(), "clean_stop": False, "pid": os.getpid(), "heartbeat": time.time(),
                          "interface": config.appliance.interface})
        if config.firewall.manage:
            self._apply_firewall(self._lan_prefix())
        reader = NflogReader(config.firewall.nflog_group)
        d = config.detect
        self.history = TriggerHistory(d.lookback)
        self.detector = ScanDetector(self.pending.append, min_ports=d.min_ports, window=d.window,
                                     min_hosts=d.min_hosts, candidates=self.history.candidates)
        prober = Prober(config, config.db_path, on_probe=self.touches.watch,
                        clock_ok=lambda: self.synced) if config.probe.enabled else None
        if prober:
            prober.start()
        namer = ScannerNamer(config.db_path, nameservers=config.probe.nameservers or None) \
            if config.detect.scanner_names else None
        if namer:
            namer.start()
        selector = selectors.DefaultSelector()
        selector.register(reader.fileno(), selectors.EVENT_READ)
        log.info("capturing NFLOG group %d on %s; store %s", config.firewall.nflog_group,
                 config.appliance.interface, config.db_path)
        next_flush = next_health = next_clock = time.monotonic()
        try:
            while not self.stopping:
                if selector.select(timeout=0.5):
                    packets = reader.read_available()
                    if self.synced:
                        self._take(packets)
                    else:
                        self._hold(packets)
                now = time.monotonic()
                if not self.synced and now >= next_clock:
                    self._check_clock()
                    next_clock = now + CLOCK_EVERY
                if now >= next_health:
                    self._check_health(prober)
                    next_health = now + HEALTH_EVERY
                if now >= next_flush:
                    self._flush(time.time(), reader, prober)
                    next_flush = now + config.store.flush_every
            # A clean stop judges what is still open: those scans are as complete as they will get.
            packets = reader.read_available()
            if self.synced:
                self._take(packets)
                self.detector.flush()
            self._flush(time.time(), reader, prober)
            store.set_status({"clean_stop": True, "heartbeat": time.time(),
                              **({"synced_heartbeat": time.time()} if self.synced else {})})
            log.info("stopped cleanly")
        finally:
            for thread in (prober, namer):
                if thread:
                    thread.stop()
                    thread.join(timeout=10)
            selector.close()
            reader.close()
            store.close()
        return 0

    def _ask_stop(self, signum, frame) -> None:
        self.stopping = True

    # -- the clock ------------------------------------------------------------------------
    def _check_clock(self) -> None:
        state = clock.check(self.config.clock.source)
        if state != self.clock_state:
            (log.info if state.synchronised else log.warning)("clock: %s", state.detail)
        self.clock_state = state
        if state.synchronised:
            self._start_recording()

    def _hold(self, packets: list[Packet]) -> None:
        """Keep what came while the clock was not right, with the monotonic time it came."""
        if not packets:
            return
        room = HELD_LIMIT - self.held_count
        if len(packets) > room:
            self.held_lost += len(packets) - max(room, 0)
            packets = packets[:max(room, 0)]
        if packets:
            self.held.append((time.time(), time.monotonic(), packets))
            self.held_count += len(packets)

    def _start_recording(self) -> None:
        """The clock is right: what came before gets its true time, the ledger's open windows are
        watched, the downtime is written down, and the stages (and the prober) start."""
        now, mono = time.time(), time.monotonic()
        self._note_downtime(now)
        for probe_id, address, planned, expires in self.store.watched_probes(now):
            self.touches.watch(address, probe_id, planned, expires)
        for wall, received, packets in self.held:
            # Each packet's stamp came from the wrong clock; by how much it was wrong follows from
            # the monotonic clock, which no step moves.
            shift = (now - (mono - received)) - wall
            self._take([packet._replace(ts=packet.ts + shift) for packet in packets])
        if self.held_lost:
            log.warning("clock: %d packets came before the clock was right and could not be held", self.held_lost)
            self.store.add_gap(now, now, "clock-wait", self.held_lost)
        self.held, self.held_count, self.held_lost = [], 0, 0
        self.synced = True

    # -- capture --------------------------------------------------------------------------
    def _take(self, packets: list[Packet]) -> None:
        if not packets:
            return
        # History first: a probe and the first packets of its scan may share one read. A probe
        # address's own LAN traffic (its pinhole requests to the router) is no trigger of anything.
        self.history.feed(self.touches.triggers(packets))
        self.detector.feed(packets)
        self.touches.feed(packets)
        self.counters["packets"] += len(packets)
        hour = int(time.time() // 3600)
        counts = self.inbound.setdefault(hour, {})
        for packet in packets:
            if packet.direction is INBOUND:
                self.counters["inbound"] += 1
                if self.lan.came_from_internet(packet.src, packet.dst):
                    counts[packet.proto] = counts.get(packet.proto, 0) + 1
            elif packet.direction is OUTBOUND:
                self.counters["outbound"] += 1
        self.last_record = packets[-1].ts

    def _flush(self, now: float, reader: NflogReader, prober: Prober | None) -> None:
        store = self.store
        values = {"heartbeat": now, "counters": self.counters, **self.health,
                  "capture": {"lost": reader.lost, "overruns": reader.overruns, "malformed": reader.malformed},
                  "clock": {"synchronised": self.synced, "source": self.config.clock.source,
                            "detail": self.clock_state.detail if self.clock_state else "not asked yet",
                            "held": self.held_count}}
        if prober is not None:
            values["prober"] = prober.status
        if not self.synced:  # evidence waits for the clock; the status shows the wait
            store.set_status(values, now)
            return
        self.detector.expire(now)
        scans = self.pending + self.detector.open_scans()
        self.pending.clear()
        before = store.db.total_changes
        if scans:
            store.add_scans(scans)
        contacts = self.history.take_contacts()
        if contacts:
            store.add_contacts(contacts)
        touches = self.touches.take()
        if touches:
            self.counters["touches"] += sum(seen[2] for seen in touches.values())
            dropped = store.add_touches(touches)
            if dropped:
                store.add_gap(now, now, "touch-cap", dropped)
        self.touches.forget(now)
        if store.db.total_changes != before:
            store.refresh()
        for at, reason, lost in reader.take_events():
            log.warning("capture %s: %s packets lost", reason, "unknown" if lost is None else lost)
            store.add_gap(at, at, reason, lost)
        self.counters["scans"] = store.count_scans()
        hour = int(now // 3600)
        for old in [h for h in self.inbound if h <= hour - INBOUND_HOURS]:
            del self.inbound[old]
        inbound: dict[str, int] = {}
        for counts in self.inbound.values():
            for proto, n in counts.items():
                inbound[proto] = inbound.get(proto, 0) + n
        values.update({"synced_heartbeat": now, "last_record": self.last_record, "inbound_24h": inbound,
                       "open_episodes": self.detector.open_episodes(), "watched_addresses": self.touches.watched})
        if prober is not None and prober.prefix:
            self.lan.add(prober.prefix)
            if self.ruleset and prober.prefix not in self.ruleset.lan_prefixes and self.config.firewall.manage:
                log.warning("LAN prefix is now %s: re-applying the firewall", prober.prefix)
                self._apply_firewall(prober.prefix)
        store.set_status(values, now)

    # -- health ---------------------------------------------------------------------------
    def _check_health(self, prober: Prober | None) -> None:
        config = self.config
        p = config.privacy
        state = privacy.check(config.appliance.interface, privacy.wanted(p.temp_prefered_lft, p.temp_valid_lft),
                              restore=p.enforce)
        for message in state.restored:
            log.warning("privacy addresses: %s; restored", message)
        for message in state.problems:
            log.error("privacy addresses not in force: %s", message)
        health = {"privacy": {"in_force": state.in_force, "values": state.values, "problems": state.problems,
                              "restored": state.restored}}
        if self.ruleset is not None:
            problems = firewall.verify(self.ruleset)
            if problems:
                log.error("firewall not as applied: %s; re-applying", "; ".join(problems))
                self._apply_firewall(None)
                problems = firewall.verify(self.ruleset)
            dropped = firewall.flood_dropped()
            if dropped > self.flood_seen and self.synced:
                now = time.time()
                self.store.add_gap(now, now, "flood-limit", dropped - self.flood_seen)
            self.flood_seen = dropped
            health["firewall"] = {"in_force": not problems, "problems": problems, "backend": "iptables-legacy",
                                  "lan_prefixes": list(self.ruleset.lan_prefixes), "flood_dropped": dropped}
        self.health = health
        self.store.set_status(health)

    def _lan_prefix(self) -> str | None:
        try:
            prefix = addresses.global_prefix(self.config.appliance.interface)
        except addresses.InterfaceGone as exc:
            log.error("%s", exc)
            return None
        return str(prefix) if prefix else None

    def _apply_firewall(self, onlink: str | None) -> None:
        """(Re)apply the ruleset with the on-link prefix `onlink` as LAN (None: the one in force)."""
        if onlink is not None:
            self.onlink = onlink
            self.lan.add(onlink)
        self.ruleset = firewall.ruleset_from_config(self.config, [self.onlink] if self.onlink else [])
        firewall.apply(self.ruleset)
        self.flood_seen = firewall.flood_dropped()

    def _note_downtime(self, now: float) -> None:
        """Packets that came while no daemon ran were never seen: say so, with the span. Both ends
        are times of a clock known to be right (the last heartbeat written with one, now)."""
        status = self.previous
        # A store from before the clock gate has only heartbeats, all written with a clock taken as right.
        last = status.get("synced_heartbeat", status.get("heartbeat") if "clock" not in status else None)
        if last is None:
            return
        if float(last) > now:
            log.warning("the last heartbeat (%s) is later than now: no downtime gap recorded",
                        time.strftime("%F %T", time.localtime(float(last))))
            return
        reason = "daemon-stopped" if status.get("clean_stop") else "daemon-down"
        self.store.add_gap(float(last), now, reason, None)
        log.warning("not capturing from %s to %s (%s)", time.strftime("%F %T", time.localtime(last)),
                    time.strftime("%F %T", time.localtime(now)), reason)


def main(args) -> int:
    from .config import ConfigError, load_given
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_given(args.config)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    try:
        return Daemon(config).run()
    except (firewall.FirewallError, NflogError, OSError) as exc:
        log.error("%s", exc)
        return 1
