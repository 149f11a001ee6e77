"""The kernel's set of watched probe addresses (ipset `HW-PROBES`, hash:ip, IPv6), through pyroute2.

The firewall's first flood rules match packets to these addresses, so that their limit is their own
and a flood from elsewhere cannot crowd them out. The daemon adds each probe address before the
probe leaves, with its window as the entry's timeout: the kernel forgets it when the window ends,
and nothing needs removing, even after a crash.
"""
from __future__ import annotations

import socket

from pyroute2 import IPSet
from pyroute2.ipset import IPSetError
from pyroute2.netlink.exceptions import NetlinkError

NAME = "HW-PROBES"
MAX_ENTRIES = 65536
TIMEOUT_MAX = 2_147_483      # seconds: the largest entry timeout the kernel takes


class ProbeSetError(RuntimeError):
    """The set could not be made, filled or removed; the text says why."""


def _call(action: str, function, *args, **kwargs):
    try:
        with IPSet() as ipset:
            return function(ipset, *args, **kwargs)
    except (IPSetError, NetlinkError, OSError) as exc:
        raise ProbeSetError(f"cannot {action} the ipset {NAME}: {exc}") from None


def ensure() -> None:
    """Create the set if it is not there (entries with timeouts); an existing one is kept as it is."""
    def create(ipset):
        if not exists(ipset):
            ipset.create(NAME, stype="hash:ip", family=socket.AF_INET6, timeout=0, maxelem=MAX_ENTRIES)
    _call("create", create)


def exists(ipset=None) -> bool:
    def headers(ipset):
        try:
            list(ipset.headers(NAME))
            return True
        except IPSetError as exc:
            if exc.code == 2:  # ENOENT: no such set
                return False
            raise
    return headers(ipset) if ipset is not None else _call("read", headers)


def add(address: str, seconds: float) -> None:
    """Watch `address` for `seconds` from now (replacing an entry there, so its timeout is renewed)."""
    timeout = max(1, min(int(seconds) + 1, TIMEOUT_MAX))
    _call("add to", lambda ipset: ipset.add(NAME, address, family=socket.AF_INET6, exclusive=False,
                                            timeout=timeout))


def members() -> list[str]:
    def read(ipset):
        found = []
        for message in ipset.list(NAME):
            adt = message.get_attr("IPSET_ATTR_ADT")
            for data in adt.get_attrs("IPSET_ATTR_DATA") if adt else []:
                ip = data.get_attr("IPSET_ATTR_IP_FROM")
                found.append(ip.get_attr("IPSET_ATTR_IPADDR_IPV6"))
        return found
    return _call("read", read)


def destroy() -> None:
    """Remove the set (the rules that use it must be gone first); absent already is fine."""
    def remove(ipset):
        if exists(ipset):
            ipset.destroy(NAME)
    _call("remove", remove)
