"""NTP pool members from DNS: the AAAA answers for a pool name, or one clear reason why not.

A pool name hands out a few members per query and rotates them, so the prober asks again and
again and accumulates what it sees; this module answers one question once.
"""
from __future__ import annotations

import ipaddress

import dns.exception
import dns.name
import dns.resolver

SYSTEM_RESOLV_CONF = "/etc/resolv.conf"


class PoolLookupError(Exception):
    """A pool name could not be turned into IPv6 addresses; `reason` says why, for the page and log."""

    def __init__(self, name: str, reason: str):
        # Both in args so the exception survives pickling (it crosses process boundaries in tests).
        super().__init__(name, reason)
        self.name, self.reason = name, reason

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def resolve_pool(name: str, *, nameservers: list[str] | None = None, timeout: float = 3.0) -> list[str]:
    """The pool's AAAA answers, compressed and sorted; nameservers None means the system's resolv.conf.

    `timeout` bounds the whole look-up, every nameserver and retry included.
    """
    resolver = _resolver(name, nameservers)
    resolver.lifetime = timeout
    # Per nameserver: a share of the whole, or a dead first nameserver uses it all up and the next
    # (working) one is never asked.
    resolver.timeout = timeout / len(resolver.nameservers)
    try:
        # search=False: a pool name is absolute; a search domain must never turn it into another name.
        answer = resolver.resolve(name, "AAAA", search=False)
    except dns.resolver.NXDOMAIN:
        raise PoolLookupError(name, "no such name (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        raise PoolLookupError(name, "the name exists but has no AAAA (IPv6) records") from None
    except dns.resolver.LifetimeTimeout:
        servers = ", ".join(map(str, resolver.nameservers))
        raise PoolLookupError(name, f"no answer within {timeout:g} s from {servers}") from None
    except dns.resolver.NoNameservers as exc:
        raise PoolLookupError(name, f"every nameserver failed: {_nameserver_errors(exc)}") from None
    except dns.name.NameTooLong:
        raise PoolLookupError(name, "not a valid DNS name (too long)") from None
    except dns.exception.DNSException as exc:
        raise PoolLookupError(name, f"DNS look-up failed: {exc}") from None
    members = {ipaddress.IPv6Address(record.address) for record in answer}
    return [address.compressed for address in sorted(members)]


def _resolver(name: str, nameservers: list[str] | None) -> dns.resolver.Resolver:
    if nameservers is None:
        try:
            return dns.resolver.Resolver(filename=SYSTEM_RESOLV_CONF)
        except dns.resolver.NoResolverConfiguration:
            raise PoolLookupError(name, f"no nameservers configured ({SYSTEM_RESOLV_CONF} is missing or lists none)"
                                  ) from None
    if not nameservers:
        raise PoolLookupError(name, "no nameservers given")
    resolver = dns.resolver.Resolver(configure=False)
    try:
        resolver.nameservers = list(nameservers)
    except ValueError as exc:
        raise PoolLookupError(name, f"bad nameserver in {list(nameservers)}: {exc}") from None
    return resolver


def _nameserver_errors(exc: dns.resolver.NoNameservers) -> str:
    # dnspython keeps (server, tcp, port, error, answer) per failed attempt; one line per server.
    errors = exc.kwargs.get("errors") or []
    seen = {}
    for server, _tcp, _port, error, _answer in errors:
        seen.setdefault(str(server), str(error))
    return "; ".join(f"{server}: {error}" for server, error in seen.items()) or str(exc)
