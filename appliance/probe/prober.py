"""The prober: pool members from DNS, then probes in rounds, each probe from a brand-new address.

Runs in its own thread beside the capture loop (DNS look-ups and NTP replies take seconds; the
capture must not wait for them) with its own store connection. Order of a round (probe/schedule.py
says when, and which servers): mint each probe's address, open the way to it through the router
(probe/reach.py), commit the round's ledger rows with what the router granted (one transaction:
each is a write to the SD card, so a round is one, not one per probe), tell the daemon to watch the
addresses for touches, send each probe's one packet, record what came back (one more). Nothing is
done, and nothing stamped, until the clock is known to be right. `status` is a plain dict,
replaced whole, that the daemon copies into the store for the page.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ..store.db import Store
from . import addresses, pools, send
from .reach import Reachability
from .schedule import ProbeScheduler
from .send import PROBE_PORTS

log = logging.getLogger("harvestwatch.prober")
RETRY_RESOLVE = 60.0   # after a failed pool look-up, try again this soon
RETRY_FAILED = 30.0    # after an unexpected error, start the loop over this soon
SENDERS = 16           # a round's probes in flight at once (each waits up to probe.reply_timeout)


class Prober(threading.Thread):
    def __init__(self, config, db_path: str, *, clock=time.time, on_probe=None, clock_ok=None, router=None):
        """`on_probe(address, probe id, planned, expires)` is called before a probe leaves (the
        daemon watches the address from then on); `clock_ok()` says whether the system clock may
        be used (probing waits until it may); `router`: a pinholes.Router to ask instead of the
        one the configuration's interface leads to."""
        super().__init__(name="prober", daemon=True)
        self.config, self.db_path, self.clock = config, db_path, clock
        self.on_probe = on_probe or (lambda address, probe_id, planned, expires: None)
        self.clock_ok = clock_ok or (lambda: True)
        self.router = router
        self.stop_event = threading.Event()
        self.status: dict = {"state": "starting"}
        # When each pool member was last in an answer, until the daemon takes it for its hourly write.
        self.sightings: dict[tuple[str, str], float] = {}
        self._sightings_lock = threading.Lock()
        self.prefix: str | None = None
        self.error: BaseException | None = None
        self.reach: Reachability | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def take_sightings(self) -> dict[tuple[str, str], float]:
        """{(pool, address): last time in an answer} since the last call (Store.mark_pool_seen)."""
        with self._sightings_lock:
            taken, self.sightings = self.sightings, {}
        return taken

    def run(self) -> None:
        try:
            store = Store(self.db_path)
        except Exception as exc:  # the daemon reports it; the capture goes on without probes
            self.error = exc
            self.status = {"state": "failed", "reason": f"cannot open the store: {exc}"}
            return
        try:
            while not self.stop_event.is_set():
                try:
                    self._loop(store)
                except Exception as exc:
                    # An unforeseen error (netlink, a full disk) must not end probing for good: the
                    # daemon does not restart this thread. Say so, wait, start over.
                    log.exception("prober failed; retrying in %.0f s", RETRY_FAILED)
                    self.error = exc
                    self.status = {**self.status, "state": "failed",
                                   "reason": f"{exc} (retrying every {RETRY_FAILED:.0f} s)"}
                    self.stop_event.wait(RETRY_FAILED)
        finally:
            try:
                self._write_gathered(store, self.clock(), stopping=True)
            except Exception as exc:  # a full disk: the next start renews the pinholes early
                log.warning("could not write the pinholes' renewals: %s", exc)
            store.close()

    def _loop(self, store: Store) -> None:
        probe, interface = self.config.probe, self.config.appliance.interface
        while not self.clock_ok():  # no look-up, no probe, no stamp before the clock is right
            self._pause("waiting for the clock to be synchronised", {})
            if self.stop_event.is_set():
                return
        self.reach = self.reach or Reachability(self.config, store, router=self.router, clock=self.clock)
        scheduler = ProbeScheduler(probe.kinds, server_interval=probe.server_interval, min_gap=probe.min_gap,
                                   round_every=probe.round_every, first_delay=probe.first_delay,
                                   start=self.clock(), max_live=probe.max_live)
        next_resolve, pool_errors, last_probe = 0.0, {}, None
        while not self.stop_event.is_set():
            now = self.clock()
            self.reach.maintain()
            self._write_gathered(store, now)
            if now >= next_resolve:
                pool_errors = self._resolve(store, now)
                next_resolve = now + (RETRY_RESOLVE if pool_errors else probe.resolve_every)
            try:
                prefix = addresses.global_prefix(interface)
                live = addresses.probe_addresses(interface)
            except addresses.InterfaceGone as exc:
                self._pause(f"{exc}", pool_errors)
                continue
            if prefix is None:
                self._pause(f"no global IPv6 prefix on {interface} (no router advertisement yet)", pool_errors)
                continue
            if str(prefix) != self.prefix:
                if self.prefix is not None:
                    log.warning("LAN prefix changed from %s to %s: probing from the new one", self.prefix, prefix)
                self.prefix = str(prefix)
            servers = store.known_servers()
            history = store.last_probes()
            chosen = scheduler.choose(servers, history, now, len(live))
            if chosen:
                try:
                    last_probe = self._round(store, interface, prefix, chosen)
                    scheduler.sent(self.clock())
                    history = store.last_probes()
                    live = addresses.probe_addresses(interface)
                except addresses.InterfaceGone as exc:  # unplugged just before the probe or while it waited
                    self._pause(f"{exc}", pool_errors)
                    continue
            plans = scheduler.next_due(servers, history)[:10]
            self.status = {"state": "probing" if servers else "waiting for pool members", "prefix": self.prefix,
                           "live_addresses": len(live), "max_live": probe.max_live, "servers": len(servers),
                           "pool_errors": pool_errors, "last_probe": last_probe,
                           "next": [{"at": at, "server": server} for at, server in plans],
                           "reachability": self.reach.status}
            self.stop_event.wait(1.0)

    def _pause(self, reason: str, pool_errors: dict) -> None:
        if self.status.get("reason") != reason:
            log.warning("probing paused: %s", reason)
        self.status = {"state": "paused", "reason": reason, "prefix": None, "pool_errors": pool_errors,
                       **({"reachability": self.reach.status} if self.reach else {})}
        self.stop_event.wait(5.0)

    def _resolve(self, store: Store, now: float) -> dict[str, str]:
        errors = {}
        probe = self.config.probe
        for pool in probe.pools:
            try:
                members = pools.resolve_pool(pool, nameservers=probe.nameservers or None)
            except pools.PoolLookupError as exc:
                errors[pool] = str(exc)
                log.warning("pool %s: %s", pool, exc)
                continue
            new = store.add_pool_members(pool, members, now)
            with self._sightings_lock:
                self.sightings.update({(pool, member): now for member in members})
            if new:
                log.info("pool %s: %d new member(s)", pool, new)
        return errors

    def _round(self, store: Store, interface: str, prefix, chosen: list[tuple[str, str]]) -> dict:
        """Probe each (server, kind) of `chosen` from its own new address; returns the last one, for
        the status."""
        valid = int(self.config.probe.observation)
        planned = self.clock()
        expires = planned + valid
        rows: list[dict] = []
        try:
            for server, kind in chosen:
                if rows and self.stop_event.is_set():
                    break  # stopping: a smaller round, not a late stop
                address = addresses.mint_probe_address(interface, prefix, valid)
                rows.append({"address": address, "server": server, "kind": kind, "port": PROBE_PORTS[kind],
                             "planned": planned, "expires": expires, "pinholes": []})
                # The way in is asked for first, so that the ledger rows and what the router granted are
                # one write; pinholes granted to an address no packet has left from yet give nothing away.
                rows[-1].update(self.reach.prepare(address, expires))
            news = self.reach.take_unwritten()  # older pinholes' news: in the same write, not one of its own
            try:
                ids = store.plan_probes(rows, pinhole_news=news)
            except Exception:
                self.reach.keep_unwritten(news)
                raise
        except Exception:
            self._withdraw(interface, rows)
            raise
        for row, probe_id in zip(rows, ids):
            self.on_probe(row["address"], probe_id, planned, expires)
        timeout = self.config.probe.reply_timeout
        with ThreadPoolExecutor(max_workers=min(len(rows), SENDERS), thread_name_prefix="probe") as senders:
            results = list(senders.map(lambda row: send.send_probe(row["address"], row["server"], row["kind"],
                                                                   timeout=timeout), rows))
        store.record_probes([{"id": probe_id, "sent_at": result.sent_at, "sport": result.sport,
                              "stratum": result.reply.stratum if result.reply else None,
                              "offset": result.reply.offset if result.reply else None,
                              "delay": result.reply.delay if result.reply else None, "error": result.error}
                             for probe_id, result in zip(ids, results)])
        for row, probe_id, result in zip(rows, ids, results):
            log.info("probe %d: %s from %s to %s%s", probe_id, row["kind"], row["address"], row["server"],
                     f" failed: {result.error}" if result.error else "")
        return {"id": ids[-1], "address": rows[-1]["address"], "server": rows[-1]["server"],
                "kind": rows[-1]["kind"], "at": results[-1].sent_at, "error": results[-1].error}

    def _withdraw(self, interface: str, rows: list[dict]) -> None:
        """A round that never reached the ledger (a full disk, the interface gone): its addresses and
        pinholes are given up now, not held for a week for probes that will never leave."""
        for row in rows:
            try:
                self.reach.give_back(row["address"], row["pinholes"])
                addresses.remove_probe_address(interface, row["address"])
            except Exception as exc:  # the interface gone took the address with it
                log.warning("could not give up the unused probe address %s: %s", row["address"], exc)

    def _write_gathered(self, store: Store, now: float, *, stopping: bool = False) -> None:
        """Write what Reachability gathered (pinholes' lease ends, give-backs, losses) in one
        transaction: when it must not wait (Reachability.write_due), and at a clean stop (with every
        renewal then)."""
        if self.reach is None or not (stopping or self.reach.write_due(now)):
            return
        updates = self.reach.take_unwritten(renewals=stopping)
        if not any(updates.values()):
            return
        try:
            store.update_pinholes(**updates)
        except Exception:
            self.reach.keep_unwritten(updates)
            raise
