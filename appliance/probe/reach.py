"""Reachability: can unsolicited packets from the internet reach the probe addresses?

Behind a router that drops them (most do, by default) no harvester's scan ever arrives, and a
server would look clean only because nothing could get through. So, for each probe address, as
`reachability.router` says:

* upnp: ask the router for pinholes (appliance/probe/pinholes.py), one per port of
  `reachability.ports`, for the address's observation window; renew them at half their lease and
  give them back when the window ends. The window counts as reachable only if a pinhole was held
  from the probe's sending to the window's end.
* open: the user says the router lets all inbound IPv6 to this appliance through (an exposed
  host, Fritz!Box's "open firewall completely"): the windows count as reachable, as declared.
* closed: nothing is asked and no window counts as reachable.

What happened is written to the store (probes.reach, the pinholes table) before the probe leaves;
`status` says it for a person, with what to do when the router does not help.
"""
from __future__ import annotations

import logging
import time

from ..settings import pinhole_port
from .pinholes import Router, RouterError

log = logging.getLogger("harvestwatch.reach")
REDISCOVER_AFTER = 600.0  # after the router was not found, look again this often (not on every probe)
MAINTAIN_EVERY = 60.0     # renewals and give-backs are looked at this often (a quarter of the lease, if shorter)

# What a person can do when the router does not open the way (status and page).
ADVICE = [
    "OpenWrt: Network > Firewall > Traffic Rules: add a rule from zone wan to zone lan, to this "
    "appliance's IPv6 address (or its whole /64), protocols TCP, UDP and ICMP, action accept; or install "
    "miniupnpd (luci-app-upnp) with IPv6 enabled.",
    "Fritz!Box: Internet > Permit Access > Port Sharing: edit this appliance (harvestwatch) and tick "
    "'Open firewall for delegated IPv6 prefixes of this device' (or allow it independent port sharing "
    "for UPnP).",
    "Other routers: allow unsolicited inbound IPv6 to this appliance (often called exposed host, or IPv6 "
    "firewall off for one device), or enable UPnP IGD with IPv6 firewall control, then set "
    "reachability.router in /etc/harvestwatch/config.toml to match.",
]


class Reachability:
    def __init__(self, config, store, *, router: Router | None = None, clock=time.time):
        r = config.reachability
        self.mode, self.lease, self.clock = r.router, int(r.lease), clock
        self.ports = [pinhole_port(text) for text in r.ports]
        self.store = store
        self.router = router if router is not None or self.mode != "upnp" else Router(config.appliance.interface)
        self.router_error: str | None = None
        self._next_discovery = 0.0
        self._next_maintenance = 0.0
        self.granted = self.refused = self.lost = 0
        self.last_loss: tuple[float, str] | None = None  # (when, the router's word) of the latest loss
        self.lost_until = 0.0  # the latest window end among the probe addresses that lost a pinhole

    # -- before a probe leaves ------------------------------------------------------------------
    def prepare(self, probe_id: int, address: str, expires: float) -> str:
        """Open the way to a new probe address (as the mode says) and record how it can be reached;
        returns that ('pinholes', 'declared' or 'none')."""
        if self.mode == "open":
            self.store.set_reach(probe_id, "declared")
            return "declared"
        if self.mode == "closed":
            self.store.set_reach(probe_id, "none", "the router lets nothing unsolicited in "
                                                   "(reachability.router = closed)")
            return "none"
        now = self.clock()
        if self.router.location is None and now < self._next_discovery:
            self.store.set_reach(probe_id, "none", self.router_error)
            return "none"
        try:
            if self.router.location is None:
                self.router.find()
            firewall = self.router.status(address)
        except RouterError as exc:
            return self._unreachable(probe_id, str(exc), now)
        if not firewall.enabled:  # the router says so itself: every packet reaches the LAN
            self.store.set_reach(probe_id, "declared", "the router says its IPv6 firewall is off")
            self.router_error = None
            return "declared"
        if not firewall.pinholes_allowed:
            return self._unreachable(probe_id, "the router does not allow inbound pinholes (UPnP says so)", now)
        granted, errors = 0, []
        for proto, port in self.ports:
            lease = min(self.lease, max(1, int(expires - now)))
            try:
                uid = self.router.open(address, proto, port, lease)
            except RouterError as exc:
                errors.append(f"{proto}/{port}: {exc}")
                self.store.record_pinhole(probe_id, proto, port, uid=None, opened=None, held_until=None,
                                          error=str(exc))
                self.refused += 1
                continue
            granted += 1
            self.granted += 1
            self.store.record_pinhole(probe_id, proto, port, uid=uid, opened=now, held_until=now + lease)
        if not granted:
            return self._unreachable(probe_id, "the router refused every pinhole: " + "; ".join(errors), now)
        self.router_error = "; ".join(errors) or None
        self.store.set_reach(probe_id, "pinholes")
        return "pinholes"

    def _unreachable(self, probe_id: int, why: str, now: float) -> str:
        if why != self.router_error:
            log.warning("probe addresses cannot be reached from the internet: %s", why)
        self.router_error = why
        self.router.location = None  # look for the router again, later
        self._next_discovery = now + REDISCOVER_AFTER
        self.store.set_reach(probe_id, "none", why)
        return "none"

    # -- while windows last -----------------------------------------------------------------------
    def maintain(self) -> None:
        """Renew the pinholes whose lease is half gone; give back those whose window ended."""
        now = self.clock()
        if self.mode != "upnp" or now < self._next_maintenance:
            return
        self._next_maintenance = now + min(MAINTAIN_EVERY, self.lease / 4)
        for probe_id, address, expires, proto, port, uid, held_until in self.store.held_pinholes():
            try:
                if now >= expires:
                    self.router.close(address, uid)
                    self.store.close_pinhole(probe_id, proto, port, now)
                elif held_until - now < self.lease / 2 and held_until < expires:
                    lease = min(self.lease, max(1, int(expires - now)))
                    self.router.renew(address, uid, lease)
                    self.store.renew_pinhole(probe_id, proto, port, now + lease)
            except RouterError as exc:
                if now >= expires:  # the address is gone anyway: nothing lost
                    self.store.close_pinhole(probe_id, proto, port, now)
                    continue
                log.warning("pinhole %s/%s to %s lost: %s", proto, port, address, exc)
                self.store.lose_pinhole(probe_id, proto, port, now, str(exc))
                self.lost += 1
                self.last_loss = (now, str(exc))
                self.lost_until = max(self.lost_until, expires)
                if exc.code is None:  # no answer at all: find the router again before the next try
                    self.router.location = None

    @property
    def status(self) -> dict:
        if self.mode == "open":
            state, detail = "declared open", "the configuration says the router lets all inbound IPv6 through"
        elif self.mode == "closed":
            state, detail = "closed", "the configuration says the router lets nothing unsolicited in"
        elif self.last_loss and self.clock() < self.lost_until:
            at, why = self.last_loss
            state = "pinholes lost"
            detail = (f"{self.lost} pinhole{'s' if self.lost != 1 else ''} lost before their windows ended, the "
                      f"last at {time.strftime('%Y-%m-%d %H:%M', time.gmtime(at))} UTC ({why}); the servers "
                      "probed from those addresses will end unverified")
        elif self.router_error and not self.granted:
            state, detail = "unreachable", self.router_error
        elif self.router_error:
            state, detail = "partly", self.router_error
        elif self.granted:
            state, detail = "pinholes", f"the router grants pinholes ({', '.join(f'{p}/{n}' for p, n in self.ports)})"
        else:
            state, detail = "not asked yet", "no probe has been sent yet"
        return {"router": self.mode, "state": state, "detail": detail, "granted": self.granted,
                "refused": self.refused, "lost": self.lost,
                "advice": ADVICE if state in ("unreachable", "closed", "partly") else []}
