"""Probe addresses: one brand-new /128 per probe, minted in the LAN's SLAAC /64.

A probe address is added deprecated (preferred_lft 0) so the kernel's source address selection
(RFC 6724 rule 3) never picks it for the host's own traffic: the only packet ever sent from it
is the probe, bound to it explicitly. It is added with IFA_F_NODAD so it is usable at once (no
tentative second of duplicate address detection); with 64 random bits a collision on the LAN is
not a practical concern. It stays valid for the observation window so that a later scan of it
reaches the firewall log, then the kernel removes it by itself.

All functions work on the current network namespace. Changes go through a fresh netlink socket
each call (the prober makes them seconds apart; nothing to keep open). Looks go to the kernel's
/proc/net/if_inet6 (per namespace, one line per address with its prefix length, scope and flags):
with a week of probe addresses on the interface, a netlink dump parsed by pyroute2 costs about
0.2 ms per address (2 s for 5,000: tests/bench/bench_probe_addresses.py), the text a few ms in
all, and the prober looks every second. Lifetimes are not in that text: the one choice that needs
them (which of two live /64s to mint in, while the LAN is renumbered) asks netlink then.
"""
from __future__ import annotations

import errno
import ipaddress
import secrets
import socket
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ..lan import ULA

# ifa_flags bits (linux/if_addr.h)
IFA_F_TEMPORARY = 0x01
IFA_F_NODAD = 0x02
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20  # preferred lifetime 0: set by the kernel, shown in /proc/net/if_inet6
IFA_F_TENTATIVE = 0x40
IFA_F_PERMANENT = 0x80
IFA_F_MANAGETEMPADDR = 0x100

RT_SCOPE_UNIVERSE = 0
PROC_ADDRESSES = "/proc/net/if_inet6"
PROC_SCOPE_GLOBAL = 0x00  # the scope column there: 0x20 link-local, 0x10 loopback
NOT_A_PREFIX_SOURCE = IFA_F_TEMPORARY | IFA_F_TENTATIVE | IFA_F_DADFAILED
_ULA = ipaddress.IPv6Network(ULA)
PROBE_PREFIXLEN = 128
SLAAC_PREFIXLEN = 64
MINT_ATTEMPTS = 8  # a fresh random IID collides with a reserved or existing one about never

# Interface identifiers that must not be used as ordinary addresses (RFC 5453 and the IANA
# "Reserved IPv6 Interface Identifiers" registry), as inclusive ranges of the low 64 bits.
RESERVED_IIDS = (
    (0x0000_0000_0000_0000, 0x0000_0000_0000_0000),  # subnet-router anycast (RFC 4291)
    (0x0200_5EFF_FE00_0000, 0x0200_5EFF_FEFF_FFFF),  # IANA Ethernet block, incl. proxy MIPv6 (RFC 6543)
    (0xFDFF_FFFF_FFFF_FF80, 0xFDFF_FFFF_FFFF_FFFF),  # reserved subnet anycast (RFC 2526)
)
ISATAP_IID_HIGH = (0x0000_5EFE, 0x0200_5EFE)  # RFC 5214: these upper 32 bits mean an IPv4 inside


class InterfaceGone(RuntimeError):
    """The network interface does not exist (unplugged, renamed or deleted)."""

    def __init__(self, ifname: str):
        super().__init__(ifname)
        self.ifname = ifname

    def __str__(self) -> str:
        return (f"network interface {self.ifname!r} is not there (unplugged, renamed, deleted or never there: "
                "`ip link` lists this machine's interfaces)")


@dataclass(frozen=True)
class InterfaceAddress:
    """One IPv6 address on an interface, as the kernel reports it (lifetimes are what remains)."""
    address: str
    prefixlen: int
    scope: int
    flags: int
    preferred: int  # seconds; 0xFFFFFFFF = forever
    valid: int

    @property
    def is_probe(self) -> bool:
        # DHCPv6 /128s can be deprecated too; only ours carry NODAD.
        return (self.prefixlen == PROBE_PREFIXLEN and self.scope == RT_SCOPE_UNIVERSE
                and self.preferred == 0 and bool(self.flags & IFA_F_NODAD))

    @property
    def can_give_prefix(self) -> bool:
        return (self.scope == RT_SCOPE_UNIVERSE and self.prefixlen == SLAAC_PREFIXLEN
                and not self.flags & NOT_A_PREFIX_SOURCE and not is_ula(self.address))


def is_ula(address: str) -> bool:
    """A unique local address (fc00::/7): OpenWrt gives every LAN a ULA /64 beside the global
    one; a probe sent from it could never reach the internet."""
    return ipaddress.IPv6Address(address) in _ULA


def listed_addresses(ifname: str) -> list[tuple[str, int, int, int]]:
    """Every IPv6 address on the interface as /proc/net/if_inet6 lists it: (address, prefix
    length, scope column, low 8 bits of the flags). InterfaceGone if there is no such interface."""
    try:
        socket.if_nametoindex(ifname)
    except OSError:
        raise InterfaceGone(ifname) from None
    found = []
    with open(PROC_ADDRESSES) as listing:
        for line in listing:
            fields = line.split()
            if len(fields) == 6 and fields[5] == ifname:
                address = socket.inet_ntop(socket.AF_INET6, bytes.fromhex(fields[0]))  # RFC 5952 text
                found.append((address, int(fields[2], 16), int(fields[3], 16), int(fields[4], 16)))
    return found


def interface_addresses(ifname: str) -> list[InterfaceAddress]:
    """Every IPv6 address on the interface; InterfaceGone if there is no such interface."""
    with IPRoute() as ipr:
        index = _index(ipr, ifname)
        try:
            messages = list(ipr.get_addr(family=socket.AF_INET6, index=index))
        except NetlinkError as exc:
            raise _netlink_error(ifname, exc, "cannot list addresses") from None
    return [_parse(message) for message in messages if message.get("index") == index]


def global_prefix(ifname: str) -> ipaddress.IPv6Network | None:
    """The interface's global /64 learned from router advertisements; None while there is none."""
    networks = {ipaddress.IPv6Network(f"{address}/{SLAAC_PREFIXLEN}", strict=False)
                for address, prefixlen, scope, flags in listed_addresses(ifname)
                if prefixlen == SLAAC_PREFIXLEN and scope == PROC_SCOPE_GLOBAL and not flags & NOT_A_PREFIX_SOURCE
                and not is_ula(address)}
    if len(networks) <= 1:  # one /64 (nearly always): whichever of its addresses, the answer is the same
        return networks.pop() if networks else None
    source = choose_prefix_source(interface_addresses(ifname))
    if source is None:
        return None
    return ipaddress.IPv6Network(f"{source.address}/{source.prefixlen}", strict=False)


def choose_prefix_source(addresses: list[InterfaceAddress]) -> InterfaceAddress | None:
    """The address whose /64 probes are minted in: the SLAAC one, still preferred, longest-lived.

    Temporary (privacy) addresses share the SLAAC prefix but come and go; they never decide it.
    A static /64 is a last resort, a prefix that is being withdrawn (deprecated) comes after a
    live one.
    """
    candidates = [a for a in addresses if a.can_give_prefix]
    if not candidates:
        return None
    return max(candidates, key=lambda a: (a.preferred > 0, bool(a.flags & IFA_F_MANAGETEMPADDR),
                                          not a.flags & IFA_F_PERMANENT, a.valid, a.address))


def mint_probe_address(ifname: str, prefix: ipaddress.IPv6Network | str, valid_lft: int) -> str:
    """Add a fresh random /128 in `prefix`, deprecated, no DAD, valid `valid_lft` s; its text."""
    network = ipaddress.IPv6Network(prefix)
    if network.prefixlen > SLAAC_PREFIXLEN:
        raise ValueError(f"{network} is longer than /64: no room for a random interface identifier")
    if not 0 < valid_lft < 0xFFFFFFFF:
        raise ValueError(f"valid_lft must be a finite number of seconds > 0, not {valid_lft}")
    with IPRoute() as ipr:
        index = _index(ipr, ifname)
        for _ in range(MINT_ATTEMPTS):
            address = random_address(network)
            try:
                ipr.addr("add", index=index, address=address, prefixlen=PROBE_PREFIXLEN,
                         flags=IFA_F_NODAD, preferred_lft=0, valid_lft=int(valid_lft))
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    continue  # astronomically unlikely; just draw again
                raise _netlink_error(ifname, exc, f"cannot add {address}/128") from None
            return address
    raise RuntimeError(f"{MINT_ATTEMPTS} random addresses in {network} were all taken on {ifname}")


def random_address(network: ipaddress.IPv6Network) -> str:
    """A random address in `network` whose interface identifier is not reserved."""
    host_bits = 128 - network.prefixlen
    for _ in range(MINT_ATTEMPTS):  # reserved IIDs are a ~2**-55 fraction of the draws
        host = secrets.randbits(host_bits)
        if not is_reserved_iid(host & 0xFFFF_FFFF_FFFF_FFFF):
            return ipaddress.IPv6Address(int(network.network_address) | host).compressed
    raise RuntimeError("the random number generator keeps drawing reserved interface identifiers")


def is_reserved_iid(iid: int) -> bool:
    if any(low <= iid <= high for low, high in RESERVED_IIDS):
        return True
    return (iid >> 32) in ISATAP_IID_HIGH


def probe_addresses(ifname: str) -> list[str]:
    """Our probe /128s still on the interface (the kernel removes each at its window's end)."""
    # Deprecated (preferred lifetime 0) and added without DAD: DHCPv6 /128s can be deprecated too.
    mark = IFA_F_NODAD | IFA_F_DEPRECATED
    return sorted(address for address, prefixlen, scope, flags in listed_addresses(ifname)
                  if prefixlen == PROBE_PREFIXLEN and scope == PROC_SCOPE_GLOBAL and flags & mark == mark)


def remove_probe_address(ifname: str, address: str) -> None:
    """Remove one probe /128 now; nothing happens if it has already expired or been removed."""
    # prefixlen 128 makes the kernel match only a /128: the SLAAC /64 cannot be removed by mistake.
    with IPRoute() as ipr:
        index = _index(ipr, ifname)
        try:
            ipr.addr("del", index=index, address=ipaddress.IPv6Address(address).compressed,
                     prefixlen=PROBE_PREFIXLEN)
        except NetlinkError as exc:
            if exc.code in (errno.EADDRNOTAVAIL, errno.ENOENT):
                return
            raise _netlink_error(ifname, exc, f"cannot remove {address}/128") from None


def _index(ipr: IPRoute, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise InterfaceGone(ifname)
    return found[0]


def _netlink_error(ifname: str, exc: NetlinkError, what: str) -> Exception:
    # The interface can vanish between the look-up and the request.
    if exc.code == errno.ENODEV:
        return InterfaceGone(ifname)
    return OSError(exc.code, f"{what} on {ifname}: {exc.args[1] if len(exc.args) > 1 else exc}")


def _parse(message) -> InterfaceAddress:
    cacheinfo = message.get_attr("IFA_CACHEINFO") or {}
    # IFA_FLAGS carries the full 32 bits; the header field only the low 8.
    flags = message.get_attr("IFA_FLAGS")
    return InterfaceAddress(
        # On point-to-point links IFA_ADDRESS is the peer and IFA_LOCAL ours.
        address=ipaddress.IPv6Address(message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")).compressed,
        prefixlen=message["prefixlen"], scope=message["scope"],
        flags=message["flags"] if flags is None else flags,
        preferred=cacheinfo.get("ifa_preferred", 0xFFFFFFFF), valid=cacheinfo.get("ifa_valid", 0xFFFFFFFF))
