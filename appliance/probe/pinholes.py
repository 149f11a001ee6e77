"""Pinholes: ask the home router to let unsolicited packets through to a probe address.

Most home routers drop unsolicited inbound IPv6 (RFC 6092's recommended default): behind one, no
scan ever reaches a probe address, and a verdict of clean would mean nothing. A router that offers
UPnP IGD v2's IPv6 firewall control (WANIPv6FirewallControl: miniupnpd on OpenWrt, many Fritz!Box
models when allowed per device) grants pinholes: one protocol and port to one address, for a lease
of up to a day, renewed while wanted.

The router grants a pinhole only to the address that asks for it (UPnP's secure mode), so every
request for a probe address is sent from that address: traffic to the router on the LAN, never
beyond it. UPnP routers refuse ports below 1024 (error 606); PCP would grant them, but no well-kept
Python client of it exists, so it is not used. The protocol itself is async-upnp-client's (the UPnP
library Home Assistant uses): discovery by SSDP, sent to the default router itself (its answer is
then a reply the appliance's firewall lets in), the device description, the actions, over an HTTP
session bound to the probe address. miniupnpc's Python module cannot choose the address its
requests come from (the kernel would pick the appliance's own, and the router would refuse: 606).
"""
from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from dataclasses import dataclass

FIREWALL_CONTROL = "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1"
PROTOCOLS = {"tcp": 6, "udp": 17}
MAX_LEASE = 86400  # seconds: the longest lease WANIPv6FirewallControl allows
SSDP_PORT = 1900

# What UPnP's error codes mean here, for the status a person reads.
REFUSALS = {
    606: "not authorized (UPnP routers open only ports 1024 and up, and only for the asking address)",
    701: "the router has no room for more pinholes",
    702: "the router's IPv6 firewall is switched off",
    703: "the router refuses pinholes to this source",
    704: "the router does not know this pinhole (it restarted, or dropped it)",
    705: "the router does not allow inbound pinholes",
    706: "the router refuses wildcard ports",
    707: "the router refuses this protocol",
}


class RouterError(RuntimeError):
    """Something a person should know about the router: no IGD, a refusal, no answer."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FirewallStatus:
    enabled: bool          # False: the router filters nothing, every packet reaches the LAN
    pinholes_allowed: bool


class Router:
    """The LAN's router, found through `interface`'s IPv6 default route. Blocking calls (each runs
    its own short event loop): the prober calls them seconds apart."""

    def __init__(self, interface: str, *, timeout: float = 5.0):
        self.interface, self.timeout = interface, timeout
        self.location: str | None = None  # the IGD's device description, once found

    # -- discovery -------------------------------------------------------------------------------
    def find(self) -> str:
        """The URL of the router's UPnP device that offers IPv6 firewall control (RouterError if none)."""
        gateway, index = default_router(self.interface)
        found = asyncio.run(self._search(gateway, index))
        if not found:
            raise RouterError(f"the router ({gateway}) did not answer a UPnP search for IPv6 firewall control: "
                              "it has no UPnP IGD, or UPnP is switched off")
        self.location = found
        return found

    async def _search(self, gateway: str, index: int) -> str | None:
        from async_upnp_client.search import async_search
        answers: list[dict] = []

        async def on_answer(headers) -> None:
            answers.append(dict(headers))

        try:
            await async_search(on_answer, timeout=max(1, int(self.timeout)), search_target=FIREWALL_CONTROL,
                               source=("::", 0, 0, index), target=(gateway, SSDP_PORT, 0, index))
        except OSError as exc:
            raise RouterError(f"cannot search the LAN for the router's UPnP device: {exc}") from None
        locations = [a.get("location") for a in answers if a.get("location")]
        return locations[0] if locations else None

    # -- the actions -------------------------------------------------------------------------------
    def status(self, source: str) -> FirewallStatus:
        result = self._call(source, "GetFirewallStatus", {})
        return FirewallStatus(_true(result.get("FirewallEnabled")), _true(result.get("InboundPinholeAllowed")))

    def open(self, source: str, proto: str, port: int, lease: int) -> int:
        """A pinhole to `source` (a probe address, asking for itself) from anywhere: its UniqueID."""
        result = self._call(source, "AddPinhole", {
            "RemoteHost": "", "RemotePort": 0, "InternalClient": source, "InternalPort": port,
            "Protocol": PROTOCOLS[proto], "LeaseTime": min(max(int(lease), 1), MAX_LEASE)})
        return int(result["UniqueID"])

    def renew(self, source: str, uid: int, lease: int) -> None:
        self._call(source, "UpdatePinhole", {"UniqueID": uid, "NewLeaseTime": min(max(int(lease), 1), MAX_LEASE)})

    def close(self, source: str, uid: int) -> None:
        self._call(source, "DeletePinhole", {"UniqueID": uid})

    def _call(self, source: str, action: str, arguments: dict) -> dict:
        if self.location is None:
            self.find()
        try:
            return asyncio.run(asyncio.wait_for(self._action(source, action, arguments), self.timeout * 2))
        except RouterError:
            raise
        except asyncio.TimeoutError:
            raise RouterError(f"the router did not answer {action} within {self.timeout * 2:g} s") from None
        except Exception as exc:  # the library's errors: UpnpError and its kin, aiohttp's, OSError
            raise _explained(action, exc) from None

    async def _action(self, source: str, action: str, arguments: dict) -> dict:
        import aiohttp
        from async_upnp_client.aiohttp import AiohttpSessionRequester
        from async_upnp_client.client_factory import UpnpFactory
        # Every request from the probe address itself: the router grants a pinhole to its asker only.
        connector = aiohttp.TCPConnector(local_addr=(source, 0, 0, 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            requester = _on_link_requester(AiohttpSessionRequester)(session, with_sleep=False,
                                                                     timeout=int(self.timeout))
            requester.source = source
            device = await UpnpFactory(requester).async_create_device(self.location)
            service = device.find_service(FIREWALL_CONTROL)
            if service is None:
                raise RouterError("the router's UPnP device has no IPv6 firewall control (WANIPv6FirewallControl)")
            return dict(await service.action(action).async_call(**arguments))


@functools.lru_cache(maxsize=None)
def _on_link_requester(base):
    """`base` (the library's requester) that sends nothing beyond the LAN's link: a probe address
    must never reveal itself to anyone but the router, whatever URL an answer names (a spoofed
    SSDP answer, a description pointing elsewhere)."""
    class OnLinkRequester(base):
        source = ""

        async def async_http_request(self, http_request):
            require_on_link(http_request.url, self.source)
            return await super().async_http_request(http_request)
    return OnLinkRequester


def require_on_link(url: str, source: str) -> None:
    """RouterError unless `url` names an IPv6 address on the LAN's link: link-local, or in the /64
    of `source` (the probe address asking)."""
    from urllib.parse import urlsplit
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.IPv6Address(host.split("%")[0])
    except ValueError:
        raise RouterError(f"the router's UPnP answer points to {host or url!r}, not to an IPv6 address on the "
                          "LAN: not followed") from None
    if not (address.is_link_local or address in ipaddress.IPv6Network(f"{source}/64", strict=False)):
        raise RouterError(f"the router's UPnP answer points to {address}, off the LAN's link: not followed")


def _true(value) -> bool:
    return value in (True, 1, "1", "true", "True", "yes")


def _explained(action: str, exc: Exception) -> RouterError:
    code = getattr(exc, "error_code", None)
    if code is not None:
        try:
            code = int(code)
        except (TypeError, ValueError):
            code = None
        text = REFUSALS.get(code, f"UPnP error {code}")
        return RouterError(f"the router refused {action}: {text}", code)
    return RouterError(f"{action} failed: {exc}")


def default_router(interface: str) -> tuple[str, int]:
    """The IPv6 default router on `interface` (its link-local address, from the router
    advertisements) and the interface's index; RouterError if there is none."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=interface)
        if not found:
            raise RouterError(f"network interface {interface!r} is not there")
        index = found[0]
        for route in ipr.get_default_routes(family=socket.AF_INET6):
            if route.get_attr("RTA_OIF") == index and route.get_attr("RTA_GATEWAY"):
                return str(ipaddress.IPv6Address(route.get_attr("RTA_GATEWAY").split("%")[0])), index
            for hop in route.get_attr("RTA_MULTIPATH") or []:
                if hop.get("oif") == index and hop.get_attr("RTA_GATEWAY"):
                    return str(ipaddress.IPv6Address(hop.get_attr("RTA_GATEWAY"))), index
    raise RouterError(f"no IPv6 default router on {interface} (no router advertisement yet)")
