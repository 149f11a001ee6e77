"""A flood from many source addresses, sent from inside one lab namespace (as root there).

    python -m tests.lab.flood TARGET NETWORK --sources N --step-bits B --ports P
                              [--port-base X] [--pps R] [--exclude NET]...

Source i is NETWORK's address + i * 2**(128 - B) + 1 (skipping --exclude networks): with B = 64
every source is in a /64 of its own, with B = 48 in a /48 of its own; B = 128 packs them into
consecutive addresses. Each source
sends one empty UDP datagram to each of P ports of TARGET. Sources need not be the namespace's
addresses: the socket may send from any (IPV6_FREEBIND), and the lab's routers forward by
destination, so thousands of sources cost no addresses or sockets. NETWORK must lie inside
2001:db8::/32 (the lab's). Prints {"sent": packets, "seconds": s} as JSON.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import struct
import time

DOCUMENTATION = ipaddress.ip_network("2001:db8::/32")
IPV6_FREEBIND = 78  # linux/in6.h; Python's socket module lacks the name


def sources(network: str, count: int, step_bits: int, exclude: list[str] = ()) -> list[str]:
    """`count` source addresses, none inside a network of `exclude` (the lab's own)."""
    net = ipaddress.ip_network(network)
    excluded = [ipaddress.ip_network(n) for n in exclude]
    if not net.subnet_of(DOCUMENTATION):
        raise SystemExit(f"{network} is outside 2001:db8::/32: the lab floods only documentation addresses")
    step = 1 << (128 - step_bits)
    if count * step > net.num_addresses:
        raise SystemExit(f"{count} sources {step_bits} bits apart do not fit in {network}")
    base = int(net.network_address)
    found = []
    for i in range(net.num_addresses // step):
        address = ipaddress.IPv6Address(base + i * step + 1)
        if not any(address in n for n in excluded):
            found.append(str(address))
            if len(found) == count:
                break
    return found


def flood(target: str, addresses: list[str], ports: int, port_base: int = 20000, pps: float | None = None) -> dict:
    """Send; at most `pps` packets per second if given (paced every 100 packets)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    destinations = [(target, port) for port in range(port_base, port_base + ports)]
    sent = 0
    started = time.monotonic()
    for source in addresses:
        # IPV6_PKTINFO: this datagram's source address (any interface: index 0).
        pktinfo = socket.inet_pton(socket.AF_INET6, source) + struct.pack("=I", 0)
        info = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)]
        for destination in destinations:
            sock.sendmsg([b""], info, 0, destination)
            sent += 1
            if pps and sent % 100 == 0:
                ahead = started + sent / pps - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
    sock.close()
    return {"sent": sent, "seconds": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("network")
    parser.add_argument("--sources", type=int, required=True)
    parser.add_argument("--step-bits", type=int, default=64)
    parser.add_argument("--ports", type=int, default=1)
    parser.add_argument("--port-base", type=int, default=20000)
    parser.add_argument("--pps", type=float, help="packets per second at most (default: as fast as it goes)")
    parser.add_argument("--exclude", action="append", default=[], metavar="NET", help="no source in NET")
    args = parser.parse_args()
    chosen = sources(args.network, args.sources, args.step_bits, args.exclude)
    print(json.dumps(flood(args.target, chosen, args.ports, args.port_base, args.pps)))


if __name__ == "__main__":
    main()
