"""The page answers its own names only: the defence against DNS rebinding.

A page on the internet can point a name it owns at the appliance's LAN address and read the page
through a LAN browser, which then sends that name in `Host`. So the page answers only a `Host` that
is its own: `localhost`, `harvestwatch.local`, the machine's hostname (bare, `.local`, or under a
home router's local suffix, none of which anyone on the internet can register), or an IP address
literal, which a browser sends only to the address it was given (no name, nothing to rebind); a
literal must be the address the request arrived on where the server says which that is.
"""
from __future__ import annotations

import ipaddress
import socket

from flask import abort, current_app, request

APPLIANCE_NAME = "harvestwatch"
# Suffixes home routers give their DHCP/mDNS names (RFC 6762, RFC 8375, OpenWrt, Fritz!Box, ...):
# none is a delegated top-level domain, so no one outside can point them anywhere.
HOME_SUFFIXES = ("local", "lan", "home", "home.arpa", "internal", "localdomain", "fritz.box")


def own_names() -> set[str]:
    names = {"localhost", "localhost.localdomain"}
    for host in {APPLIANCE_NAME, socket.gethostname().split(".", 1)[0].lower()} - {""}:
        names.add(host)
        names.update(f"{host}.{suffix}" for suffix in HOME_SUFFIXES)
    return names


class OwnNamesOnly:
    def __init__(self):
        self.names = own_names()

    def __call__(self):
        if not current_app.config["LAN_ONLY"]:
            return None
        if not self.allowed(request.host, request.environ):
            abort(403, description="This HarvestWatch page answers its own names only (harvestwatch.local, "
                                   "its hostname, its addresses): open it by one of those.")
        return None

    def allowed(self, host: str, environ: dict) -> bool:
        name = _without_port(host).lower().rstrip(".")
        if name in self.names:
            return True
        try:
            literal = ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
        except ValueError:
            return False
        arrived_on = _local_address(environ)
        return arrived_on is None or literal == arrived_on or literal.is_loopback


def _without_port(host: str) -> str:
    if host.startswith("["):  # [2001:db8::1]:8080
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _local_address(environ: dict):
    """The address the request arrived on, where the server tells (gunicorn and werkzeug do)."""
    connection = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    try:
        address = ipaddress.ip_address(connection.getsockname()[0].split("%", 1)[0])
    except (AttributeError, OSError, ValueError, IndexError, TypeError):
        return None
    return address.ipv4_mapped or address if address.version == 6 else address
