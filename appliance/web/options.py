"""The `harvestwatch serve` options, apart from the server so `--help` loads neither Flask nor gunicorn."""
from __future__ import annotations


def add_arguments(parser) -> None:
    parser.add_argument("--db", default="/var/lib/harvestwatch/harvestwatch.sqlite", metavar="PATH",
                        help="the store to show (default: the daemon's)")
    parser.add_argument("--bind", default="[::]:80", metavar="HOST:PORT",
                        help="address and port (default [::]:80, IPv6 and IPv4; the firewall lets only the LAN in)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
    parser.add_argument("--lan", action="append", default=[], metavar="NET",
                        help="another network allowed to see the page (besides link-local, ULA, private IPv4 "
                             "and the on-link prefix the daemon reports)")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
