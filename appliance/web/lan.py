"""The page answers the LAN only: the firewall's rule is the first line, this is the second.

LAN means loopback, link-local, unique-local (fc00::/7), the private IPv4 ranges, the on-link
prefix the daemon last saw (from the store), and any prefix the configuration adds. Python's
`is_private` is not used: it counts 2001:db8::/32 and other special ranges as private.
"""
from __future__ import annotations

import ipaddress
import sqlite3

from flask import abort, current_app, request

from ..lan import IPV4_PRIVATE, LINK_LOCAL, ULA

# The same LAN the firewall admits the page from, plus IPv6 loopback (the firewall accepts all of lo).
ALWAYS = tuple(ipaddress.ip_network(n) for n in ("::1/128", LINK_LOCAL, ULA, *IPV4_PRIVATE))


class LanOnly:
    def __init__(self, app, extra: tuple[str, ...] = ()):
        self.extra = tuple(ipaddress.ip_network(n, strict=False) for n in extra)

    def __call__(self):
        if not current_app.config["LAN_ONLY"]:
            return None
        if not self.allowed(request.remote_addr or ""):
            abort(403, description="This HarvestWatch page answers its own LAN only.")
        return None

    def allowed(self, remote: str) -> bool:
        try:
            address = ipaddress.ip_address(remote.split("%", 1)[0])
        except ValueError:
            return False  # a Unix socket or a proxy we do not know: refuse rather than guess
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        if any(address in net for net in (*ALWAYS, *self.extra) if net.version == address.version):
            return True
        return any(address in net for net in self.onlink() if net.version == address.version)

    @staticmethod
    def onlink() -> list:
        from werkzeug.exceptions import HTTPException

        from ..store.db import StoreError
        from .views import store
        try:
            status = store().status()
        except (HTTPException, sqlite3.Error, StoreError):
            return []  # no readable store, no on-link prefix: a stranger still gets 403, not the store's path
        prefixes = [(status.get("prober") or {}).get("prefix"),
                    *((status.get("firewall") or {}).get("lan_prefixes") or [])]
        networks = []
        for prefix in prefixes:
            try:
                networks.append(ipaddress.ip_network(prefix, strict=False))
            except (TypeError, ValueError):
                continue
        return networks
