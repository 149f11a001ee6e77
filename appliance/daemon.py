"""`harvestwatch run`: the live appliance in one process.

The main thread captures (NFLOG), detects scans and touches and attributes with the same stages
`analyze` uses, and writes the store in batches every `store.flush_every` seconds; the prober runs
beside it in its own thread. Every 30 s it checks that the firewall and the privacy sysctls are
still in force (restoring them if not). What the capture could not see is written down as a gap:
the time the daemon was not running (found from the last heartbeat at start), socket overruns,
sequence gaps, and packets the flood limits dropped unlogged (by reason: see firewall.flood_counts).

Nothing is stamped with the wall clock before it is known to be right (clock.source): until then
the firewall is in force and packets are captured and held, with the monotonic time they came;
once the clock is right they are given their true times and go through the stages, and only then
do the prober and the records start.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import sqlite3
import time

from .attribute.names import ScannerNamer
from .attribute.triggers import TriggerHistory
from .capture.nflog import NflogError, NflogReader
from .detect.quota import ScanQuota
from .detect.scans import Scan, ScanDetector
from .detect.touches import SLACK as TOUCH_SLACK
from .detect.touches import TouchDetector
from .host import clock, firewall, privacy, probe_set, updates
from .lan import LanNetworks
from .packet import INBOUND, OUTBOUND, Packet
from .probe import addresses
from .probe.prober import Prober
from .store import runtime, space
from .store.db import Store

log = logging.getLogger("harvestwatch")
HEALTH_EVERY = 30.0
UPDATES_EVERY = 600.0      # security updates run daily at most: their state is read this often
CLOCK_EVERY = 5.0          # while waiting for the clock, ask this often
# Ports listed per stored scan (its count stays true): with the hourly scan quota, what a flood of
# all-port scans can write is bounded (an all-port scan's list is about 1 MB; this, 40 KB).
MAX_STORED_PORTS = 4096
MAX_UNSTORED = 50_000      # scans, contacts and touches each, held while the disk is full
PRUNE_EVERY = 3600.0       # retention runs this often (and once the clock is right)
# The WAL is copied into the store once nothing was written for WAL_COPY_QUIET (one copy for a burst
# of writes: a probe's ledger and its answer, probes a minute apart), and at most once every
# WAL_COPY_EVERY: a copy costs the card more than the writes it follows, and the hours' writes touch
# the same pages, copied once (`make bench-writes`, a day at the probing cap: 10.2 MB with a copy an
# hour, 9.3 MB with one every six hours). The WAL then holds six hours of writes (a few hundred KB).
WAL_COPY_QUIET = 120.0
WAL_COPY_EVERY = 6 * 3600.0
FULL_DISK_SHRINK = 0.8     # a full disk: ordinary records are deleted down to this share of the store
MB = 1_000_000
OPEN_RETRY = 30.0          # seconds between attempts to open the store on a full disk
HELD_LIMIT = 50_000        # packets held while the clock is not right; beyond, counted as lost
# Episodes (source, destination) the detector follows at once: about 1 KB each, so a flood from
# many sources costs at most ~60 MB of the unit's 256 MB (packets to probe addresses may double it).
MAX_OPEN_EPISODES = 60_000
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
        self.flood_seen: dict[str, int] = {}
        self.unexempt: list[tuple[float, float]] = []  # windows of probes the firewall could not exempt
        self.health: dict = {}
        self.updates: dict | None = None
        self.status_persisted = float("-inf")
        self.wal_copied_at: tuple[int, int] | None = None  # Store.write_mark() at the last complete WAL copy
        self.wal_written: tuple[tuple[int, int] | None, float] = (None, 0.0)  # the last mark seen, and when
        self.wal_copy_time = float("-inf")  # when the WAL was last copied
        self.status_stored: dict[str, str] = {}  # what the store holds of the status, as JSON
        self.updates_checked = float("-inf")
        self.lan = LanNetworks(config.appliance.lan_prefixes)
        self.touches = TouchDetector(self.lan)
        self.synced = False
        self.clock_state: clock.ClockState | None = None
        self.held: list[tuple[float, float, list[Packet]]] = []  # (wall, monotonic, packets) before the clock was right
        self.held_count = self.held_lost = 0
        self.inbound: dict[int, dict[str, int]] = {}  # hour -> protocol -> packets from outside the LAN
        # What was gathered and not yet written (a full disk keeps it here, bounded).
        self.unstored: dict = {"scans": [], "contacts": {}, "touches": {}, "pool_seen": {}}
        self.unstored_gaps: list[tuple] = []
        self.disk_full_since: float | None = None
        self.next_prune = self.next_full_prune = 0.0
        self.store_status: dict = {}
        self.recording_since = 0.0      # when the clock was right and recording began
        self.contacts_dropped = 0

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> int:
        config = self.config
        # First of all: a SIGTERM during start-up (firewall, NFLOG bind) must still end in a clean stop.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._ask_stop)
        os.makedirs(config.appliance.state_dir, exist_ok=True)
        self.reserve = space.Reserve(config.appliance.state_dir)
        self.store = store = self._open_store()
        if store is None:
            return 0
        store.family_prefix = config.detect.family_prefix
        store.max_ports = MAX_STORED_PORTS
        self.previous = store.status()  # the last run's, for the downtime (written down once the clock is right)
        runtime.remove(config.db_path)  # a killed run's live status: the store's own is current again
        self._status_or_full({"started": time.time(), "clean_stop": False, "pid": os.getpid(),
                              "heartbeat": time.time(), "interface": config.appliance.interface})
        if config.firewall.manage:
            self._apply_firewall(self._lan_prefix())
        reader = NflogReader(config.firewall.nflog_group)
        d = config.detect
        self.history = TriggerHistory(d.lookback)
        self.detector = ScanDetector(self.pending.append, min_ports=d.min_ports, window=d.window,
                                     min_hosts=d.min_hosts, candidates=self.history.candidates,
                                     max_open=MAX_OPEN_EPISODES, keep=self.touches.is_watched)
        self.detector_refused: dict[str, int] = {}
        self.quota = ScanQuota(self._touches_probe)
        prober = Prober(config, config.db_path, on_probe=self._watch_probe,
                        clock_ok=lambda: self.synced) if config.probe.enabled else None
        if prober:
            prober.start()
        namer = ScannerNamer(config.db_path, nameservers=config.probe.nameservers or None) \
            if config.detect.scanner_names else None
        if namer:
            namer.start()
        notifier = None
        if config.notify.urls:
            from .notify import Notifier
            notifier = Notifier(config.notify.urls, config.db_path)
            notifier.start()
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
            self.status_persisted = float("-inf")  # the last flush writes the whole status to the store
            self._flush(time.time(), reader, prober)
            self._status_or_full({"clean_stop": True, "heartbeat": time.time(),
                                  **({"synced_heartbeat": time.time()} if self.synced else {})})
            runtime.remove(config.db_path)  # the store's status is the whole of it again
            log.info("stopped cleanly")
        finally:
            for thread in (prober, namer, notifier):
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
            self._watch_probe(address, probe_id, planned, expires, now)
        for wall, received, packets in self.held:
            # Each packet's stamp came from the wrong clock; by how much it was wrong follows from
            # the monotonic clock, which no step moves.
            shift = (now - (mono - received)) - wall
            self._take([packet._replace(ts=packet.ts + shift) for packet in packets])
        if self.held_lost:
            log.warning("clock: %d packets came before the clock was right and could not be held", self.held_lost)
            self._gap(now, now, "clock-wait", self.held_lost)
        self.held, self.held_count, self.held_lost = [], 0, 0
        self.synced = True
        self.recording_since = now
        # The next flush writes what was held, with its true time, and the whole status: a store
        # read now (the page, a backup) shows the recording started, not an hour later.
        self.status_persisted = float("-inf")

    def _watch_probe(self, address: str, probe_id: int, planned: float, expires: float,
                     now: float | None = None) -> None:
        """A probe address is watched from before its probe leaves: by the touch detector, and by the
        firewall's first flood rules (its own limit), until its window ends. Called from the prober's thread."""
        self.touches.watch(address, probe_id, planned, expires)
        if not self.config.firewall.manage:
            return
        now = time.time() if now is None else now
        try:
            probe_set.add(address, expires - now + TOUCH_SLACK)
        except probe_set.ProbeSetError as exc:
            # Its packets then share the limits of everything else: a flood's drops may hide its evidence.
            log.error("%s: probe %d shares the flood limits with all other traffic", exc, probe_id)
            self.unexempt.append((now, expires))

    def _touches_probe(self, scan: Scan) -> bool:
        return self.touches.is_watched(scan.target) or any(map(self.touches.is_watched, scan.targets))

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
        """Write what was gathered. A full disk stops nothing but the writing: what could not be
        written is kept for the next flush (bounded), and the store makes room (store.space)."""
        try:
            changes = self.store.db.total_changes
            self._write(now, reader, prober)
            if self.disk_full_since is not None:
                self._check_room(now)
            if self.synced and now >= self.next_prune:
                self._prune(now)
            if self.store.db.total_changes == changes:
                self._copy_the_wal(now)
        except (sqlite3.Error, OSError) as exc:
            if not space.is_disk_full(exc, self.config.appliance.state_dir):
                raise
            self._disk_full(now, exc)

    def _copy_the_wal(self, now: float) -> None:
        """A flush that wrote nothing: copy the WAL into the store if it is due. Copied, the WAL is
        written again from its start (the file keeps its blocks: nothing for the file system to
        allocate and journal), and reads find nothing in it to map; never copied, it grows to SQLite's
        own checkpoint (4 MB) and each transaction allocates blocks. But each copy costs the card more
        than a probe's writes (75 against 45 KB measured): so the WAL is copied once the store has had
        no write (by this connection, the prober's or the namer's) for WAL_COPY_QUIET, at most once
        every WAL_COPY_EVERY, and only if something was written since. Never waits: with a reader or
        another writer busy, the next quiet flush tries again."""
        mark = self.store.write_mark()
        if mark == self.wal_copied_at:
            return
        if mark != self.wal_written[0]:
            self.wal_written = (mark, now)
        elif (now - self.wal_written[1] >= WAL_COPY_QUIET and now - self.wal_copy_time >= WAL_COPY_EVERY
              and self.store.checkpoint()):
            self.wal_copied_at, self.wal_copy_time = mark, now

    def _gap(self, start: float, end: float, reason: str, lost: int | None = None) -> None:
        """A gap, written with the next flush (kept until it can be)."""
        self.unstored_gaps.append((start, end, reason, lost))

    def _gather(self, now: float, reader: NflogReader) -> list[Scan]:
        """Move what the stages finished into the unstored batch; returns the scans still open."""
        self.detector.expire(now)
        final, refused = self.quota.admit(self.pending, now)
        self.pending.clear()
        still_open, _ = self.quota.admit(self.detector.open_scans(), now, final=False)
        if refused:
            self._gap(now, now, "scan-cap", refused)
        detector = self.detector
        for reason, refused_now in (("episode-cap", detector.refused), ("probe-flood", detector.refused_keep)):
            capped = refused_now - self.detector_refused.get(reason, 0)
            if capped:
                log.warning("%d packets came from more sources at once than the detector follows (%s)", capped, reason)
                self._gap(now, now, reason, capped)
                self.detector_refused[reason] = refused_now
        for at, reason, lost in reader.take_events():
            log.warning("capture %s: %s packets lost", reason, "unknown" if lost is None else lost)
            self._gap(at, at, reason, lost)
        batch = self.unstored
        for scan in final:  # a long full disk: the oldest are kept, the rest counted; probe scans always
            if len(batch["scans"]) < MAX_UNSTORED or self._touches_probe(scan):
                batch["scans"].append(scan)
            else:
                self._gap(now, now, "scan-cap", scan.packets)
        for key, (first, last) in self.history.take_contacts().items():
            held = batch["contacts"].get(key)
            if held is not None:
                held[0], held[1] = min(held[0], first), max(held[1], last)
            elif len(batch["contacts"]) < MAX_UNSTORED:
                batch["contacts"][key] = [first, last]
            else:
                self.contacts_dropped += 1
        touches = self.touches.take()
        self.counters["touches"] += sum(seen[2] for seen in touches.values())
        for key, (first, last, packets) in touches.items():
            held = batch["touches"].get(key)
            if held is not None:
                held[0], held[1], held[2] = min(held[0], first), max(held[1], last), held[2] + packets
            elif len(batch["touches"]) < MAX_UNSTORED:
                batch["touches"][key] = [first, last, packets]
            else:
                self._gap(now, now, "touch-cap", packets)
        self.touches.forget(now)
        return still_open

    def _write(self, now: float, reader: NflogReader, prober: Prober | None) -> None:
        store = self.store
        values = {"heartbeat": now, "counters": self.counters, **self.health,
                  "capture": {"lost": reader.lost, "overruns": reader.overruns, "malformed": reader.malformed},
                  "clock": {"synchronised": self.synced, "source": self.config.clock.source,
                            "detail": self.clock_state.detail if self.clock_state else "not asked yet",
                            "held": self.held_count},
                  "store": self.store_status}
        if prober is not None:
            values["prober"] = prober.status
        if not self.synced:  # evidence waits for the clock; the status shows the wait
            self._status(values, now, data_written=False)
            return
        still_open = self._gather(now, reader)
        batch = self.unstored
        if prober is not None:  # pool members' sightings: in the status's hourly transaction (_status)
            for key, seen in prober.take_sightings().items():
                batch["pool_seen"][key] = max(seen, batch["pool_seen"].get(key, seen))
        before = store.db.total_changes
        # Each step its own transaction, each idempotent: what failed is written again next time.
        if batch["scans"] or still_open:
            store.add_scans(batch["scans"] + still_open)
            batch["scans"] = []
        # Outbound contacts (the appliance's own NTP, DNS, UPnP) come every few seconds and matter only
        # beside scans: written with evidence (before the scans' attribution is derived from them),
        # otherwise in the status's hourly transaction (_status: one commit to the card a quiet hour).
        evidence = bool(batch["touches"] or self.unstored_gaps or store.db.total_changes != before)
        if batch["contacts"] and evidence:
            store.add_contacts(batch["contacts"])
            batch["contacts"] = {}
        if self.contacts_dropped:
            # Outbound contacts (possible triggers) that a long full disk left no room to hold.
            log.warning("%d outbound contacts could not be held while the disk was full", self.contacts_dropped)
            self._set_status({"contacts_dropped": self.contacts_dropped}, now)
            self.contacts_dropped = 0
        if batch["touches"]:
            dropped = store.add_touches(batch["touches"])
            batch["touches"] = {}
            if dropped:
                self._gap(now, now, "touch-cap", dropped)
        while self.unstored_gaps:
            store.add_gap(*self.unstored_gaps[0])
            self.unstored_gaps.pop(0)
        data_written = store.db.total_changes != before
        if data_written:
            store.refresh()
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
        self._status(values, now, data_written=data_written)

    def _status_due(self, now: float) -> bool:
        return now >= self.status_persisted + runtime.STATUS_PERSIST_EVERY

    def _status(self, values: dict, now: float, *, data_written: bool) -> None:
        """The status: to RAM at every flush (store/runtime.py), to the store (the card) only along
        with data, every STATUS_PERSIST_EVERY seconds, or always if RAM cannot be written; only the
        parts that changed since the store last got them (fewer pages written)."""
        in_ram = runtime.write(self.config.db_path, values)
        if not in_ram or data_written or self._status_due(now):
            changed = {key: value for key, value in values.items()
                       if self.status_stored.get(key) != json.dumps(value, sort_keys=True)}
            contacts, pool_seen = self.unstored["contacts"], self.unstored["pool_seen"]
            if changed or contacts or pool_seen:
                self._set_status(changed, now, contacts=contacts, pool_seen=pool_seen)
                self.unstored["contacts"], self.unstored["pool_seen"] = {}, {}
            self.status_persisted = now

    def _set_status(self, values: dict, now: float | None = None, contacts: dict | None = None,
                    pool_seen: dict | None = None) -> None:
        """Every write of the status to the store goes here, so that `status_stored` stays what it holds."""
        self.store.set_status(values, now, contacts, pool_seen)
        self.status_stored.update({key: json.dumps(value, sort_keys=True) for key, value in values.items()})

    # -- room on the disk -------------------------------------------------------------------
    def _open_store(self) -> Store | None:
        """The store, even on a full disk (a restart must not die where the last run was stopped):
        the reserve is given up for the files SQLite opens with; with none left, the daemon waits
        for room (the boot unit's firewall stays in force) instead of dying again and again.
        None if asked to stop meanwhile."""
        directory = self.config.appliance.state_dir
        while not self.stopping:
            try:
                return Store(self.config.db_path)
            except (sqlite3.Error, OSError) as exc:
                if not space.is_disk_full(exc, directory):
                    raise
                if self.reserve.release():
                    log.error("the disk is full (%s): gave up the space reserve to open the store", exc)
                else:
                    log.error("the disk is full (%s) and no reserve is left: cannot open the store; "
                              "trying again in %.0f s", exc, OPEN_RETRY)
                    time.sleep(OPEN_RETRY)
                self.disk_full_since = self.disk_full_since or time.time()
        return None

    def _status_or_full(self, values: dict) -> None:
        try:
            self._set_status(values)
        except (sqlite3.Error, OSError) as exc:
            if not space.is_disk_full(exc, self.config.appliance.state_dir):
                raise
            self._disk_full(time.time(), exc)

    def _disk_full(self, now: float, exc: BaseException) -> None:
        """The disk is full: give up the reserve, make room inside the store (once an hour at most),
        say so; the capture, the firewall and the stages go on."""
        store, config = self.store, self.config
        if self.disk_full_since is None:
            self.disk_full_since = now
            log.error("the disk is full (%s): holding records in memory until there is room", exc)
            self.reserve.release()
        try:
            if self.synced and now >= self.next_full_prune:
                self.next_full_prune = now + PRUNE_EVERY
                # Deleting frees pages inside the file: new records fit without the file growing.
                pruned = store.prune(now, config.store.keep_days, int(store.used_bytes() * FULL_DISK_SHRINK))
                log.warning("disk full: deleted %s to make room in the store", pruned or "nothing")
            self._note_store(now)
            self._disk_full_gap(now)
            self._set_status({"store": self.store_status, "heartbeat": now}, now)
        except (sqlite3.Error, OSError) as again:
            if not space.is_disk_full(again, config.appliance.state_dir):
                raise

    def _disk_full_gap(self, now: float) -> None:
        """The episode as a gap, written only with a right clock, and from no earlier than the
        recording started (a stamp from before, of a clock not yet right, may be 1970)."""
        if self.synced:
            self.store.add_gap(max(self.disk_full_since, self.recording_since), now, "disk-full", 0)

    def _check_room(self, now: float) -> None:
        """Writes went through again: once the reserve can be made again, the episode is over."""
        if not self.reserve.ensure():
            self._note_store(now, oldest=False)
            return
        log.warning("the disk has room again: the full-disk episode from %s is over",
                    time.strftime("%F %T", time.localtime(self.disk_full_since)))
        self._disk_full_gap(now)
        self.disk_full_since = None
        self._note_store(now)
        self._set_status({"store": self.store_status}, now)

    def _prune(self, now: float) -> None:
        store, config = self.store, self.config
        self.next_prune = now + PRUNE_EVERY
        pruned = store.prune(now, config.store.keep_days, config.store.max_mb * MB)
        if self.disk_full_since is None:
            self.reserve.ensure()
        if pruned:
            log.info("retention: deleted %s", pruned)
        # The store's figures reach the status with the next flush (RAM, the card at its cadence).
        self._note_store(now, pruned)

    def _note_store(self, now: float, pruned: dict | None = None, oldest: bool = True) -> None:
        """The store's figures for the status; `oldest` False keeps the last oldest record (its
        query reads a whole table: not at every flush)."""
        config = self.config
        try:
            free = space.free_bytes(config.appliance.state_dir)
        except OSError:
            free = None
        last = self.store_status.get("pruned") if pruned is None else {"at": now, "deleted": pruned}
        figures = self.store.retention_status(config.store.keep_days, config.store.max_mb * MB, oldest=oldest)
        if not oldest:
            figures["oldest"] = self.store_status.get("oldest")
        self.store_status = {**figures, "free_bytes": free, "reserve_held": self.reserve.held(),
                             "disk_full_since": self.disk_full_since, "pruned": last}

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
            dropped = firewall.flood_counts()
            now = time.time()
            for reason, count in dropped.items():
                if count > self.flood_seen.get(reason, 0) and self.synced:
                    self._gap(now, now, reason, count - self.flood_seen.get(reason, 0))
            self.flood_seen = dropped
            while self.unexempt and self.synced:
                start, end = self.unexempt.pop()
                self._gap(start, end, "probe-unexempt", None)
            health["firewall"] = {"in_force": not problems, "problems": problems, "backend": "iptables-legacy",
                                  "lan_prefixes": list(self.ruleset.lan_prefixes), "flood_dropped": dropped}
        now = time.time()
        if now >= self.updates_checked + UPDATES_EVERY:
            self.updates, self.updates_checked = updates.check(), now
        health["updates"] = self.updates
        self.health = health  # written with the next flush

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
        self.flood_seen = firewall.flood_counts()
        # The set survives a re-apply, but not a `firewall remove` in between: watch them all again.
        now = time.time()
        for address, (probe_id, start, until) in self.touches.watched_items():
            if until > now:
                self._watch_probe(address, probe_id, start, until, now)

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
        self._gap(float(last), now, reason, None)
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
