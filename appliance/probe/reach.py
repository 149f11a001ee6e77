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

What the router granted is written to the store (probes.reach, the pinholes table) with the probe's
ledger row, in one transaction, before the packet leaves. Each write is a write to the SD card, and
a week of probes holds thousands of pinholes: so a renewal is kept in memory (written at a clean
stop), and only what a verdict or a restart needs reaches the store: the renewal that carries a
pinhole to its window's end (a window counts as reachable only if the store shows that) and its
giving back, gathered and written with the next round's ledger rows (the same transaction), or on
their own within the hour when no round comes (at once if a window ends sooner), and at once any
loss. After a power cut the store holds an older lease end than the router: the next pass renews
early, which costs nothing but a request.
`status` says it for a person, with what to do when the router does not help.
"""
from __future__ import annotations

import logging
import math
import time

from ..settings import pinhole_port
from .pinholes import Router, RouterError

log = logging.getLogger("harvestwatch.reach")
REDISCOVER_AFTER = 600.0  # after the router was not found, look again this often (not on every probe)
MAINTAIN_EVERY = 60.0     # renewals and give-backs are looked at this often (a quarter of the lease, if shorter)
WRITE_EVERY = 3600.0      # what is gathered (lease ends, give-backs) waits at most this long to be written

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
        # (probe id, proto, port) -> the lease's end as last renewed (the store may hold an older one).
        self.renewed: dict[tuple[int, str, int], float] = {}
        # Not yet in the store: lease ends that reach a window's end {key: held_until}, pinholes
        # given back {key: (held_until, closed at)}, pinholes lost [(probe id, proto, port, at, why)].
        self.unwritten_ends: dict[tuple[int, str, int], float] = {}
        self.unwritten_closes: dict[tuple[int, str, int], tuple[float, float]] = {}
        self.unwritten_lost: list[tuple[int, str, int, float, str]] = []
        self.unwritten_since: float | None = None  # when the oldest of them was gathered
        self.taken_since: float | None = None      # the same, of what was last taken to be written

    # -- before a probe leaves ------------------------------------------------------------------
    def prepare(self, address: str, expires: float) -> dict:
        """Open the way to a new probe address (as the mode says). Returns how it can be reached, as
        Store.plan_probe takes it: {"reach": 'pinholes', 'declared' or 'none', "reach_note": why,
        "pinholes": [(proto, port, uid, opened, held_until, error)]}. Writes nothing itself."""
        if self.mode == "open":
            return self._reach("declared")
        if self.mode == "closed":
            return self._reach("none", "the router lets nothing unsolicited in (reachability.router = closed)")
        now = self.clock()
        if self.router.location is None and now < self._next_discovery:
            return self._reach("none", self.router_error)
        try:
            if self.router.location is None:
                self.router.find()
            firewall = self.router.status(address)
        except RouterError as exc:
            return self._unreachable(str(exc), now)
        if not firewall.enabled:  # the router says so itself: every packet reaches the LAN
            self.router_error = None
            return self._reach("declared", "the router says its IPv6 firewall is off")
        if not firewall.pinholes_allowed:
            return self._unreachable("the router does not allow inbound pinholes (UPnP says so)", now)
        granted, errors, pinholes = 0, [], []
        for proto, port in self.ports:
            lease = self._lease(expires, now)
            try:
                uid = self.router.open(address, proto, port, lease)
            except RouterError as exc:
                errors.append(f"{proto}/{port}: {exc}")
                pinholes.append((proto, port, None, None, None, str(exc)))
                self.refused += 1
                continue
            granted += 1
            self.granted += 1
            pinholes.append((proto, port, uid, now, now + lease, None))
        if not granted:
            return self._unreachable("the router refused every pinhole: " + "; ".join(errors), now, pinholes)
        self.router_error = "; ".join(errors) or None
        return self._reach("pinholes", None, pinholes)

    def give_back(self, address: str, pinholes: list) -> None:
        """Close now the pinholes `prepare` granted to an address whose probe was never planned."""
        for _proto, _port, uid, *_ in pinholes:
            if uid is not None:
                try:
                    self.router.close(address, uid)
                except RouterError as exc:  # its lease ends it anyway, within a day
                    log.warning("pinhole %s to %s not given back: %s", uid, address, exc)

    def _lease(self, expires: float, now: float) -> int:
        """The lease to ask for: the longest allowed, or to the window's end (whole seconds, rounded up:
        a lease a fraction short of the end would be renewed again at every pass)."""
        return min(self.lease, max(1, math.ceil(expires - now)))

    def _reach(self, reach: str, note: str | None = None, pinholes: list | None = None) -> dict:
        return {"reach": reach, "reach_note": note, "pinholes": pinholes or []}

    def _unreachable(self, why: str, now: float, pinholes: list | None = None) -> dict:
        if why != self.router_error:
            log.warning("probe addresses cannot be reached from the internet: %s", why)
        self.router_error = why
        self.router.location = None  # look for the router again, later
        self._next_discovery = now + REDISCOVER_AFTER
        return self._reach("none", why, pinholes)

    # -- while windows last -----------------------------------------------------------------------
    def maintain(self) -> None:
        """Renew the pinholes whose lease is half gone; give back those whose window ended. What the
        store must learn is gathered (`write_due`, `take_unwritten`): the prober writes it."""
        now = self.clock()
        if self.mode != "upnp" or now < self._next_maintenance:
            return
        self._next_maintenance = now + min(MAINTAIN_EVERY, self.lease / 4)
        held, lost = set(), {entry[:3] for entry in self.unwritten_lost}
        for probe_id, address, expires, proto, port, uid, stored_until in self.store.held_pinholes():
            key = (probe_id, proto, port)
            held.add(key)
            if key in self.unwritten_closes or key in lost:  # waiting to be written
                continue
            held_until = max(stored_until or 0.0, self.renewed.get(key, 0.0))
            try:
                if now >= expires:
                    self.router.close(address, uid)
                    self._given_back(key, held_until, now)
                elif held_until - now < self.lease / 2 and held_until < expires:
                    lease = self._lease(expires, now)
                    self.router.renew(address, uid, lease)
                    self.renewed[key] = now + lease
                    if now + lease >= expires:  # the store must show this one before the window ends
                        self._unwritten(now)
                        self.unwritten_ends[key] = now + lease
            except RouterError as exc:
                if now >= expires:  # the address is gone anyway: nothing lost
                    self._given_back(key, held_until, now)
                    continue
                log.warning("pinhole %s/%s to %s lost: %s", proto, port, address, exc)
                self._unwritten(now)
                self.unwritten_lost.append((probe_id, proto, port, now, str(exc)))
                self.renewed.pop(key, None)
                self.unwritten_ends.pop(key, None)
                self.lost += 1
                self.last_loss = (now, str(exc))
                self.lost_until = max(self.lost_until, expires)
                if exc.code is None:  # no answer at all: find the router again before the next try
                    self.router.location = None
        for key in self.renewed.keys() - held:  # gone from the store (pruned): nothing to renew
            del self.renewed[key]

    def _unwritten(self, now: float) -> None:
        if self.unwritten_since is None:
            self.unwritten_since = now

    def _given_back(self, key: tuple[int, str, int], held_until: float, now: float) -> None:
        self._unwritten(now)
        self.unwritten_closes[key] = (held_until, now)
        self.unwritten_ends.pop(key, None)
        self.renewed.pop(key, None)

    def write_due(self, now: float) -> bool:
        """Whether what is gathered must be written now: a loss; a lease end whose window ends
        within the hour; anything gathered an hour ago."""
        return bool(self.unwritten_lost) or self.unwritten_since is not None and (
            now - self.unwritten_since >= WRITE_EVERY
            or any(until - now <= WRITE_EVERY for until in self.unwritten_ends.values()))

    def take_unwritten(self, *, renewals: bool = False) -> dict:
        """What is gathered, as Store.update_pinholes takes it, for the caller to write now (back with
        `keep_unwritten` if that fails). `renewals`: every lease end as renewed too (at a clean stop,
        so that the next start renews only what is due)."""
        ends = dict(self.renewed) if renewals else {}
        ends.update(self.unwritten_ends)
        taken = {"ends": sorted((*key, until) for key, until in ends.items()),
                 "closes": sorted((*key, *value) for key, value in self.unwritten_closes.items()),
                 "lost": self.unwritten_lost}
        self.unwritten_ends, self.unwritten_closes, self.unwritten_lost = {}, {}, []
        self.taken_since, self.unwritten_since = self.unwritten_since, None
        return taken

    def keep_unwritten(self, updates: dict) -> None:
        """`take_unwritten`'s answer back, when writing it failed: it is written with the next write."""
        if any(updates.values()):  # as due as it was: gathered when it first was
            since = self.taken_since if self.taken_since is not None else self.clock()
            self.unwritten_since = min(since, self.unwritten_since or since)
        for probe_id, proto, port, held_until in updates["ends"]:
            if held_until >= self.renewed.get((probe_id, proto, port), 0.0):
                self.unwritten_ends.setdefault((probe_id, proto, port), held_until)
        for probe_id, proto, port, held_until, at in updates["closes"]:
            self.unwritten_closes.setdefault((probe_id, proto, port), (held_until, at))
        self.unwritten_lost = updates["lost"] + self.unwritten_lost

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
