"""`harvestwatch run`: the live appliance in one process.

The main thread captures (NFLOG), detects and attributes with the same stages `analyze` uses,
and writes the store in batches every `store.flush_every` seconds; the prober runs beside it in
its own thread. Every 30 s it checks that the firewall and the privacy sysctls are still in
force (restoring them if not). What the capture could not see is written down as a gap: the
time the daemon was not running (found from the last heartbeat at start), socket overruns,
sequence gaps, and packets the flood limit dropped unlogged.
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
from .host import firewall, privacy
from .probe import addresses
from .probe.prober import Prober
from .store.db import Store

log = logging.getLogger("harvestwatch")
HEALTH_EVERY = 30.0


class Daemon:
    def __init__(self, config):
        self.config = config
        self.stopping = False
        self.pending: list[Scan] = []
        self.counters = {"packets": 0, "inbound": 0, "outbound": 0, "scans": 0}
        self.last_record: float | None = None
        self.ruleset: firewall.Ruleset | None = None
        self.onlink: str | None = None
        self.flood_seen = 0
        self.health: dict = {}

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> int:
        config = self.config
        # First of all: a SIGTERM during start-up (firewall, NFLOG bind) must still end in a clean stop.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._ask_stop)
        os.makedirs(config.appliance.state_dir, exist_ok=True)
        self.store = store = Store(config.db_path)
        started = time.time()
        self._note_downtime(started)
        store.set_status({"started": started, "clean_stop": False, "pid": os.getpid(), "heartbeat": started,
                          "interface": config.appliance.interface})
        if config.firewall.manage:
            self._apply_firewall(self._lan_prefix())
        reader = NflogReader(config.firewall.nflog_group)
        d = config.detect
        self.history = TriggerHistory(d.lookback)
        self.detector = ScanDetector(self.pending.append, min_ports=d.min_ports, window=d.window,
                                     min_hosts=d.min_hosts, candidates=self.history.candidates)
        prober = Prober(config, config.db_path) if config.probe.enabled else None
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
        next_flush = next_health = time.time()
        try:
            while not self.stopping:
                if selector.select(timeout=0.5):
                    self._take(reader.read_available())
                now = time.time()
                if now >= next_health:
                    self._check_health(prober)
                    next_health = now + HEALTH_EVERY
                if now >= next_flush:
                    self._flush(now, reader, prober)
                    next_flush = now + config.store.flush_every
            # A clean stop judges what is still open: those scans are as complete as they will get.
            self._take(reader.read_available())
            self.detector.flush()
            self._flush(time.time(), reader, prober)
            store.set_status({"clean_stop": True, "heartbeat": time.time()})
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

    # -- capture --------------------------------------------------------------------------
    def _take(self, packets: list) -> None:
        if not packets:
            return
        # History first: a probe and the first packets of its scan may share one read.
        self.history.feed(packets)
        self.detector.feed(packets)
        self.counters["packets"] += len(packets)
        for packet in packets:
            self.counters["inbound" if packet.direction == "in" else "outbound"] += 1
        self.last_record = packets[-1].ts

    def _flush(self, now: float, reader: NflogReader, prober: Prober | None) -> None:
        store = self.store
        self.detector.expire(now)
        scans = self.pending + self.detector.open_scans()
        self.pending.clear()
        before = store.db.total_changes
        if scans:
            store.add_scans(scans)
        contacts = self.history.take_contacts()
        if contacts:
            store.add_contacts(contacts)
        if store.db.total_changes != before:
            store.refresh()
        for at, reason, lost in reader.take_events():
            log.warning("capture %s: %s packets lost", reason, "unknown" if lost is None else lost)
            store.add_gap(at, at, reason, lost)
        self.counters["scans"] = store.count_scans()
        values = {"heartbeat": now, "last_record": self.last_record, "counters": self.counters,
                  "capture": {"lost": reader.lost, "overruns": reader.overruns, "malformed": reader.malformed},
                  "open_episodes": self.detector.open_episodes(), **self.health}
        if prober is not None:
            values["prober"] = prober.status
            if prober.prefix and self.ruleset and prober.prefix not in self.ruleset.lan_prefixes \
                    and self.config.firewall.manage:
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
            if dropped > self.flood_seen:
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
        self.ruleset = firewall.ruleset_from_config(self.config, [self.onlink] if self.onlink else [])
        firewall.apply(self.ruleset)
        self.flood_seen = firewall.flood_dropped()

    def _note_downtime(self, now: float) -> None:
        """Packets that came while no daemon ran were never seen: say so, with the span."""
        status = self.store.status()
        last = status.get("heartbeat")
        if last is None:
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
