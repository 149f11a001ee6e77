"""The `harvestwatch serve` options, apart from the server so `--help` loads neither Flask nor gunicorn."""
from __future__ import annotations

import argparse
import ipaddress

from ..settings import CONFIG_PATH


def bind_address(text: str) -> str:
    """HOST:PORT as gunicorn takes it ([::1]:8080, 127.0.0.1:8080, [::]:80), checked before it binds."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not an address and port like [::]:80 or 127.0.0.1:8080 "
                                         "(port 1 to 65535)")
    address = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(address)
    except ValueError:
        if not address.replace("-", "").replace(".", "").isalnum():
            raise argparse.ArgumentTypeError(f"{host!r} in {text!r} is no address or host name") from None
    return text


def add_arguments(parser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", metavar="PATH", help="the store to show (default: the one the configuration names)")
    where.add_argument("--config", default=CONFIG_PATH, metavar="PATH",
                       help=f"the daemon's configuration file, for where its store is (default {CONFIG_PATH})")
    parser.add_argument("--bind", default="[::]:80", metavar="HOST:PORT", type=bind_address,
                        help="address and port (default [::]:80, IPv6 and IPv4; the firewall lets only the LAN in)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--lan", action="append", default=[], metavar="NET",
                        help="another network allowed to see the page (besides link-local, ULA, private IPv4 "
                             "and the on-link prefix the daemon reports)")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
