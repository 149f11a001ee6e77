"""Scanner names from reverse DNS, kept only when forward-confirmed.

A PTR record is written by whoever controls the scanner's address block: it can claim any name.
The name is shown only if that name's own AAAA/A records lead back to the same address (the
check mail servers call FCrDNS). Even then it is untrusted text: the page escapes it and never
makes it a link.
"""
from __future__ import annotations

import ipaddress
import logging
import threading

import dns.exception
import dns.resolver
import dns.reversename

log = logging.getLogger("harvestwatch.names")
MAX_NAMES = 5   # a PTR set can be long; a scanner with more names than this gains nothing from them


def confirmed_name(address: str, *, nameservers: list[str] | None = None, timeout: float = 2.0) -> str | None:
    """The forward-confirmed reverse name of `address`, or None (no PTR, no match, or DNS failed)."""
    ip = ipaddress.ip_address(address)
    resolver = dns.resolver.Resolver(configure=nameservers is None)
    if nameservers is not None:
        resolver.nameservers = list(nameservers)
    resolver.lifetime = timeout
    try:
        answer = resolver.resolve(dns.reversename.from_address(ip.compressed), "PTR")
    except dns.exception.DNSException:
        return None
    for record in list(answer)[:MAX_NAMES]:
        name = record.target.to_text(omit_final_dot=True)
        try:
            forward = resolver.resolve(name, "AAAA" if ip.version == 6 else "A", search=False)
        except dns.exception.DNSException:
            continue
        if any(ipaddress.ip_address(r.address) == ip for r in forward):
            return name
    return None


class ScannerNamer(threading.Thread):
    """Looks up the scanners the store has not named yet, a batch at a time, off the capture loop."""

    def __init__(self, db_path: str, *, nameservers: list[str] | None = None, every: float = 30.0,
                 batch: int = 20, timeout: float = 2.0):
        super().__init__(name="scanner-names", daemon=True)
        self.db_path, self.nameservers, self.every = db_path, nameservers, every
        self.batch, self.timeout = batch, timeout
        self.stop_event = threading.Event()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        from ..store.db import Store
        # One connection for the thread's life: opening the store anew every round wrote to the SD
        # card each time (SQLite's shared-memory index is a file beside the store), about 0.7 MB an hour.
        store = None
        try:
            while not self.stop_event.wait(self.every):
                try:
                    store = store or Store(self.db_path)
                    addresses = store.unnamed_scanners(self.batch)
                    names = {}
                    for address in addresses:
                        if self.stop_event.is_set():
                            break
                        names[address] = confirmed_name(address, nameservers=self.nameservers, timeout=self.timeout)
                    if names:
                        store.set_scanner_names(names)
                except Exception:  # names are a nicety: never let them stop the daemon
                    log.exception("scanner names")
                    if store is not None:  # start over with a fresh connection next round
                        store.close()
                        store = None
        finally:
            if store is not None:
                store.close()
