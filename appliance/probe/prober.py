"""The prober: pool members from DNS, then one probe at a time, each from a brand-new address.

Runs in its own thread beside the capture loop (DNS look-ups and NTP replies take seconds; the
capture must not wait for them) with its own store connection. Order of a probe: mint the
address, open the way to it through the router (probe/reach.py), commit the ledger row with what
the router granted (one transaction: each is a write to the SD card), tell the daemon to watch the
address for touches, send the one packet, record what came back. Nothing is
done, and nothing stamped, until the clock is known to be right. `status` is a plain dict,
replaced whole, that the daemon copies into the store for the page.
"""
from __future__ import annotations

import logging
import threading
import time

from ..store.db import Store
from . import addresses, pools, send
from .reach import Reachability
from .schedule import ProbeScheduler
from .send import PROBE_PORTS

log = logging.getLogger("harvestwatch.prober")
RETRY_RESOLVE = 60.0   # after a failed pool look-up, try again this soon
RETRY_FAILED = 30.0    # after an unexpected error, start the loop over this soon


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
                                   first_delay=probe.first_delay, start=self.clock(), max_live=probe.max_live)
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
            choice = scheduler.choose(servers, history, now, len(live))
            if choice is not None:
                try:
                    last_probe = self._probe(store, interface, prefix, *choice)
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

    def _probe(self, store: Store, interface: str, prefix, server: str, kind: str) -> dict:
        valid = int(self.config.probe.observation)
        address = addresses.mint_probe_address(interface, prefix, valid)
        planned = self.clock()
        # The way in is asked for first, so that the ledger row and what the router granted are one
        # write; pinholes granted to an address no packet has left from yet give nothing away.
        reach = self.reach.prepare(address, planned + valid)
        probe_id = store.plan_probe(address, server, kind, PROBE_PORTS[kind], planned + valid, planned=planned,
                                    **reach)
        self.on_probe(address, probe_id, planned, planned + valid)
        result = send.send_probe(address, server, kind, timeout=self.config.probe.reply_timeout)
        reply = result.reply
        # A second write, but of the page the first one wrote, moments later: the card gets the two at once.
        store.record_probe(probe_id, sent_at=result.sent_at, sport=result.sport,
                           stratum=reply.stratum if reply else None, offset=reply.offset if reply else None,
                           delay=reply.delay if reply else None, error=result.error)
        log.info("probe %d: %s from %s to %s%s", probe_id, kind, address, server,
                 f" failed: {result.error}" if result.error else "")
        return {"id": probe_id, "address": address, "server": server, "kind": kind, "at": result.sent_at,
                "error": result.error}

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
