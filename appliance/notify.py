"""Findings pushed to the user through Apprise (e-mail, ntfy, Matrix, Telegram, webhooks... one URL
each in `notify.urls`), each at most once.

A finding is a confirmed harvester (once, for good), or the appliance losing its firewall, its
clock or its reachability (once per episode: said again only after it was right in between). What
was told is kept in the store's status (`notified`), so a restart repeats nothing. A notification
that could not be delivered is tried again at the next check. The thread reads the store with its
own connection and never blocks the capture.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from .report.human import plural
from .store.db import Store
from .words import Verdict

log = logging.getLogger("harvestwatch.notify")
CHECK_EVERY = 30.0
CLOCK_GRACE = 600.0      # a clock not synchronised this long after start is worth telling
UNREACHABLE = ("unreachable", "closed", "pinholes lost")


@dataclass(frozen=True)
class Finding:
    key: str             # what makes it the same finding: told once
    title: str
    body: str
    lasting: bool        # a harvester stays one; a health problem ends when it is right again


def findings(store: Store, now: float) -> list[Finding]:
    """What the store shows that the user should be told about, now."""
    found = []
    for server in store.server_verdicts(now):
        if server["verdict"] != Verdict.HARVESTER:
            continue
        pools = ", ".join(server["pools"]) or "no pool named"
        found.append(Finding(
            f"harvester {server['server']}", f"HarvestWatch: {server['server']} harvests IPv6 addresses",
            f"The NTP server {server['server']} ({pools}) was sent a probe from a fresh IPv6 address used for "
            f"nothing else; that address was then contacted from the internet ({plural(server['touches'], 'packet')}, "
            f"the first {server['min_lag']:.0f} s after the probe). Whoever runs it passes the addresses of its "
            "clients to scanners. What to do: stop using this server (your NTP configuration, or the pool "
            "settings of your devices), and tell the pool's operators, with the evidence on the appliance's "
            "status page (Servers, then this server's probes).", lasting=True))
    status = store.status()
    firewall = status.get("firewall") or {}
    if firewall and not firewall.get("in_force", True):
        found.append(Finding("firewall", "HarvestWatch: the firewall is not in force",
                             "The appliance's firewall rules are not as applied: "
                             + ("; ".join(firewall.get("problems") or []) or "unknown why")
                             + ". Scans may go unseen and its services may answer the internet.", lasting=False))
    clock = status.get("clock") or {}
    started = status.get("started") or now
    if clock and not clock.get("synchronised", True) and now - float(started) > CLOCK_GRACE:
        found.append(Finding("clock", "HarvestWatch: the clock is not synchronised",
                             f"Nothing is probed or recorded until it is: {clock.get('detail', 'no detail')}.",
                             lasting=False))
    reach = (status.get("prober") or {}).get("reachability") or {}
    if reach.get("state") in UNREACHABLE:
        found.append(Finding("reachability", f"HarvestWatch: scans cannot reach the appliance ({reach['state']})",
                             f"{reach.get('detail', '')} No server can be called clean meanwhile. "
                             + " ".join(reach.get("advice") or []), lasting=False))
    return found


class Notifier(threading.Thread):
    def __init__(self, urls: list[str], db_path: str, *, every: float = CHECK_EVERY, clock=time.time):
        super().__init__(name="notifier", daemon=True)
        import apprise  # only where notifications are configured
        self.apprise = apprise.Apprise()
        # Apprise would log a URL it cannot read whole, tokens and passwords with it: the journal keeps them.
        apprise_log = logging.getLogger("apprise")
        level, apprise_log.level = apprise_log.level, logging.CRITICAL
        try:
            self.bad_urls = [url for url in urls if not self.apprise.add(url)]
        finally:
            apprise_log.setLevel(level)
        for url in self.bad_urls:
            log.error("notify.urls: %s is no URL Apprise knows; nothing is sent there", _redacted(url))
        self.db_path, self.every, self.clock = db_path, every, clock
        self.stop_event = threading.Event()
        # What was told: from the store at the first check, then kept here too, so that a store
        # that cannot be written (a full disk) makes nothing be told twice.
        self.told: dict | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        if not len(self.apprise):
            return
        store = Store(self.db_path)
        try:
            while not self.stop_event.wait(self.every):
                try:
                    self.check(store)
                except Exception:  # a broken check must not end notifications for good
                    log.exception("notifications: check failed; trying again in %.0f s", self.every)
        finally:
            store.close()

    def check(self, store: Store) -> list[str]:
        """Tell what is new; returns the keys told."""
        now = self.clock()
        if self.told is None:
            self.told = dict(store.status().get("notified") or {})
        told = self.told
        current = findings(store, now)
        keys = {finding.key for finding in current}
        sent = []
        for finding in current:
            if finding.key in told:
                continue
            if self.apprise.notify(title=finding.title, body=finding.body):
                told[finding.key] = {"at": now, "lasting": finding.lasting}
                sent.append(finding.key)
                log.info("told: %s", finding.title)
            else:
                log.warning("could not deliver %r; trying again in %.0f s", finding.title, self.every)
        # A health problem that is over may be told again when it comes back.
        for key in [k for k, v in told.items() if not v.get("lasting") and k not in keys]:
            del told[key]
        if told != (store.status().get("notified") or {}):
            store.set_status({"notified": told}, now)
        return sent


def _redacted(url: str) -> str:
    """A URL without what may be a secret in it (tokens, passwords): its scheme only."""
    return url.split("://", 1)[0] + "://…" if "://" in url else "…"
