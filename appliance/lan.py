"""What counts as the LAN: the networks whose packets are the household's own, never evidence.

One definition for the firewall (whom the appliance's services answer), the page (whom it shows
itself to) and the touch detector (whose packets to a probe address are no touch). Python's
`is_private` is not used: it counts 2001:db8::/32 and other special ranges as private.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache

LINK_LOCAL, ULA = "fe80::/10", "fc00::/7"
IPV4_PRIVATE = ("127.0.0.0/8", "169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
# Never the source of a packet from the internet: loopback, unspecified, multicast.
_NOT_INTERNET = tuple(ipaddress.ip_network(n) for n in ("::1/128", "::/128", "ff00::/8", LINK_LOCAL, ULA))
_IPV4_NOT_INTERNET = tuple(ipaddress.ip_network(n) for n in (*IPV4_PRIVATE, "0.0.0.0/8", "224.0.0.0/3"))


SITE_PREFIX = 48  # the shortest prefix that can be one household's (or one site's) own


def lan_prefix(text: str) -> ipaddress.IPv6Network:
    """A prefix a user says is LAN, or ValueError saying why it cannot be: a network with its length,
    not multicast, loopback or unspecified, and no wider than one site unless inside ULA or
    link-local (`::/0` would make the whole internet LAN for the firewall and the page)."""
    if "/" not in text:
        raise ValueError(f"{text!r} has no prefix length: write a network like 2001:db8:1::/64")
    try:
        network = ipaddress.IPv6Network(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a network like 2001:db8:1::/64 ({exc})") from None
    if network.is_multicast or network.is_loopback or network.is_unspecified:
        raise ValueError(f"{text} is not a LAN")
    inside = any(network.subnet_of(ipaddress.IPv6Network(net)) for net in (LINK_LOCAL, ULA))
    if not inside and network.prefixlen < SITE_PREFIX:
        raise ValueError(f"{text} is wider than one site: a LAN prefix from the internet's addresses must be "
                         f"a /{SITE_PREFIX} or longer")
    return network


class LanNetworks:
    """The LAN's IPv6 networks: link-local, ULA, and the prefixes given (the on-link /64, the
    configured ones). `add` takes more as they become known (a new prefix after renumbering)."""

    def __init__(self, prefixes=()):
        self._prefixes: list[ipaddress.IPv6Network] = []
        for prefix in prefixes:
            self.add(prefix)

    def add(self, prefix) -> None:
        network = ipaddress.IPv6Network(prefix, strict=False)
        if network not in self._prefixes:
            self._prefixes.append(network)
            _outside.cache_clear()

    def is_outside(self, address: str) -> bool:
        """True for an address of the internet: not the LAN, not special."""
        return _outside(address, tuple(self._prefixes))

    def came_from_internet(self, src: str, dst: str) -> bool:
        """True for a packet from the internet: an outside source, sent to one address. Multicast
        (mDNS, SSDP, ...) never crosses a home router: from a global source it is a LAN host's (or
        the appliance's own, looped back) before its prefix is known."""
        return self.is_outside(src) and dst[:2].lower() != "ff"


@lru_cache(maxsize=4096)
def _outside(address: str, prefixes: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 4:
        return not any(ip in net for net in _IPV4_NOT_INTERNET)
    return not any(ip in net for net in (*_NOT_INTERNET, *prefixes))
