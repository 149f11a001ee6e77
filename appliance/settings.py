"""Every setting of the appliance, defined once: section, name, default, limits and help text.

`/etc/harvestwatch/config.toml` (appliance/config.py), `harvestwatch analyze`'s detection options,
the daemon, the Ansible role's defaults and config template, and docs/configuration.md all take
their settings from here, or are held to it by tests/test_settings.py. The paths the appliance
keeps its files at are here too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .probe.send import PROBE_KINDS

CONFIG_PATH = "/etc/harvestwatch/config.toml"
RUNTIME_DIR = "/run/harvestwatch"  # RAM: the daemon's live status (appliance/store/runtime.py)
STORE_NAME = "harvestwatch.sqlite"
# Ports scanners try early that a UPnP router will open (1024 and up): RDP and the web's
# alternative port are in every common scan list (nmap's top 20 TCP, Shodan's, the seed's
# harvester-fed scans); SSDP is among the first UDP ports tried, for amplification.
PINHOLE_PORTS = ("tcp/8080", "tcp/3389", "udp/1900")
DEBIAN_POOLS = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org", "2.debian.pool.ntp.org",
                "3.debian.pool.ntp.org", "2.pool.ntp.org"]


class SettingError(ValueError):
    """A value a setting cannot take; the text names what is expected."""


@dataclass(frozen=True)
class Setting:
    section: str
    name: str
    default: object             # its type is the setting's type (a list: of its items' type)
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple | None = None  # what the value (a list: each item) may be
    item: type = str            # the type of a list's items

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}"

    def check(self, value):
        """`value` as this setting takes it (a whole number of seconds becomes a float), or
        SettingError saying what is expected."""
        default = self.default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise SettingError(f"must be true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SettingError(f"must be a whole number, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SettingError(f"must be a number of seconds, got {value!r}")
            value = float(value)
        elif isinstance(default, str):
            if not isinstance(value, str) or not value:
                raise SettingError(f"must be a non-empty string, got {value!r}")
            if self.choices is not None and value not in self.choices:
                raise SettingError(f"must be one of {', '.join(self.choices)}, got {value!r}")
        elif isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, self.item) and not isinstance(v, bool)
                                                      for v in value):
                raise SettingError(f"must be a list of {'numbers' if self.item is int else 'strings'}, got {value!r}")
            if self.choices is not None and (not value or set(value) - set(self.choices)):
                raise SettingError(f"must be some of {', '.join(self.choices)}, got {value}")
        for number in value if isinstance(value, list) else [value]:
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                self._in_range(number)
        return value

    def _in_range(self, number) -> None:
        if not math.isfinite(number):
            raise SettingError(f"must be a finite number, got {number}")
        low, high = self.minimum, self.maximum
        if low == POSITIVE and high is not None:
            if not 0 < number <= high:
                raise SettingError(f"must be positive and at most {_number(high)}, got {_number(number)}")
        elif low is not None and high is not None:
            if not low <= number <= high:
                raise SettingError(f"must be {_number(low)}..{_number(high)}, got {_number(number)}")
        elif low == POSITIVE:
            if not number > 0:
                raise SettingError(f"must be positive, got {_number(number)}")
        elif low is not None:
            if not number >= low:
                raise SettingError(f"must be at least {_number(low)}, got {_number(number)}")

    def parse_option(self, text: str):
        """A command-line value for this setting (argparse's `type=`)."""
        import argparse
        try:
            number = int(text) if isinstance(self.default, int) else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {'whole ' if isinstance(self.default, int) else ''}number, "
                                             f"got {text!r}") from None
        try:
            return self.check(number)
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) and math.isfinite(value) else str(value)


# Just above zero: "positive" for a number of seconds.
POSITIVE = 1e-9
ADDRESS_LIFETIME_MAX = 0xFFFFFFFE  # the kernel's largest finite address lifetime, seconds

SETTINGS = (
    Setting("appliance", "interface", "eth0",
            "the LAN interface: its SLAAC /64 is where probe addresses are minted"),
    Setting("appliance", "state_dir", "/var/lib/harvestwatch",
            f"the store `{STORE_NAME}` lives here (an absolute path)"),
    Setting("appliance", "lan_prefixes", [],
            "IPv6 prefixes that count as LAN besides link-local, ULA and the on-link /64: networks with "
            "their length (2001:db8:1::/56), at most a /48 (a site) unless inside ULA or link-local"),
    Setting("firewall", "manage", True,
            "the daemon applies the ruleset (and re-applies it when the prefix changes)"),
    Setting("firewall", "nflog_group", 5, "the NFLOG group between the rules and the daemon",
            minimum=0, maximum=65535),
    Setting("firewall", "tcp_services", [22, 80],
            "the appliance's own TCP services (SSH, the page): reachable from the LAN only",
            minimum=1, maximum=65535, item=int),
    Setting("firewall", "rate", 500, "flood limit per source /64: logged packets/s", minimum=1, maximum=100_000),
    Setting("firewall", "burst", 4000, "flood limit per source /64: the burst allowed before the rate applies "
            "(a /48 gets twice the rate, a /32 four times; both eight times the burst)", minimum=1, maximum=1_000_000),
    Setting("firewall", "rate_total", 2000,
            "flood limit over all sources: logged packets/s (what the daemon is sized for); probe addresses "
            "have a limit of the same size of their own", minimum=1, maximum=100_000),
    Setting("detect", "min_ports", 10,
            "a scan: this many distinct (protocol, port) pairs from one source to one address within the window",
            minimum=2),
    Setting("detect", "window", 60.0, "seconds within which a scan's ports (a sweep's addresses) must be reached",
            minimum=POSITIVE),
    Setting("detect", "min_hosts", 8, "a sweep: one source reaching this many of our addresses within the window",
            minimum=2),
    Setting("detect", "lookback", 300.0, "how far back (s) before a scan its trigger packets are looked for",
            minimum=POSITIVE),
    Setting("detect", "family_prefix", 64,
            "scanners whose IPv6 addresses share this many leading bits are one family: 64 is one host's or "
            "customer's block; 48 a whole site, for scanners that split one scan across many /64s",
            minimum=16, maximum=128),
    Setting("detect", "scanner_names", True,
            "look up scanners' reverse DNS names (kept only when the name resolves back to the address); "
            "the look-ups go to your resolver, and the scanner's operator may see them"),
    Setting("probe", "enabled", True, "self-probing of the pools"),
    Setting("probe", "pools", list(DEBIAN_POOLS), "pool host names whose AAAA members are probed"),
    Setting("probe", "nameservers", [],
            "DNS servers for the pool look-ups; empty: the system's `/etc/resolv.conf`"),
    Setting("probe", "kinds", list(PROBE_KINDS),
            "probe packets: a real NTP request, an empty UDP packet to 123, to 321", choices=PROBE_KINDS),
    Setting("probe", "server_interval", 24 * 3600.0, "at most one probe per server per this many seconds",
            minimum=POSITIVE),
    Setting("probe", "min_gap", 60.0,
            "the global rate: on average at least this many seconds between two probes (a round holds at most "
            "`probe.round_every` / `probe.min_gap` of them)", minimum=POSITIVE),
    Setting("probe", "round_every", 3600.0,
            "probes leave together, in rounds at least this many seconds apart: a round's ledger rows and the "
            "record of their answers are two writes to the SD card, however many probes it holds (at most "
            "`probe.min_gap` apart when smaller: one probe at a time)", minimum=0),
    Setting("probe", "first_delay", 10.0, "seconds after start before the first probe", minimum=0),
    Setting("probe", "observation", 7 * 86400.0,
            "seconds a probe address stays valid and watched: scanners come back late (a week has been seen); "
            "a server is clean only after a whole window with no touch",
            minimum=POSITIVE, maximum=ADDRESS_LIFETIME_MAX),
    Setting("probe", "max_live", 1000,
            "at most this many probe addresses at once (probing waits while the cap is reached); each joins a "
            "multicast group that the LAN's switches track, and 1,000 stays inside common snooping tables "
            "(figures: `make bench-probes`)", minimum=1),
    Setting("probe", "resolve_every", 900.0,
            "seconds between pool DNS refreshes (members rotate; every answer is kept with first/last seen)",
            minimum=POSITIVE),
    Setting("probe", "reply_timeout", 2.0, "seconds to wait for an NTP reply", minimum=POSITIVE),
    Setting("reachability", "router", "upnp",
            "how unsolicited packets reach this appliance through your router: upnp (ask it for a pinhole to each "
            "probe address, UPnP IGD v2 IPv6 firewall control), open (it lets all inbound IPv6 to this appliance "
            "through, as you set it; nothing is asked), closed (it lets nothing unsolicited in)",
            choices=("upnp", "open", "closed")),
    Setting("reachability", "ports", list(PINHOLE_PORTS),
            "the pinholes each probe address asks the router for (protocol/port): ports scanners try early "
            "that UPnP will open (it refuses ports below 1024)"),
    Setting("reachability", "lease", 86400.0,
            "seconds a pinhole is granted for, renewed at half of that while its probe address is watched "
            "(86400 is UPnP's longest)", minimum=60, maximum=86400),
    Setting("clock", "source", "chrony",
            "how the daemon knows the clock is right before it probes or records anything: chrony (ask "
            "chronyd), kernel (the kernel's synchronised flag, kept by any NTP daemon), none (trust the clock: "
            "only for a machine with a battery-backed clock)", choices=("chrony", "kernel", "none")),
    Setting("privacy", "enforce", True, "restore the privacy sysctls when they are found changed"),
    Setting("privacy", "temp_prefered_lft", 1200,
            "seconds a temporary address is preferred: the seed's 20 minutes, a new address each time "
            "(under a minute leaves the kernel no time to make the next one)",
            minimum=60, maximum=ADDRESS_LIFETIME_MAX),
    Setting("privacy", "temp_valid_lft", 2400, "seconds a temporary address stays valid (longer than preferred)",
            minimum=60, maximum=ADDRESS_LIFETIME_MAX),
    Setting("notify", "urls", [],
            "where to tell about a confirmed harvester and a lost firewall, clock or reachability, once each: "
            "Apprise URLs (mailto://user:pass@example.com, ntfys://topic, tgram://token/chat, json://host/path)"),
    Setting("store", "flush_every", 5.0, "seconds between batched writes (fewer, larger writes for an SD card)",
            minimum=POSITIVE),
    Setting("store", "keep_days", 90.0,
            "ordinary records (scans and sweeps that reached no probe address, outbound contacts, gaps outside "
            "every probe's watch, pool answers) are deleted after this many days; evidence about harvesters and "
            "probes is kept",
            minimum=1),
    Setting("store", "max_mb", 512,
            "the store's size cap in MB: beyond it ordinary records are deleted oldest first (evidence is "
            "kept)",
            minimum=16, maximum=1_000_000),
)
BY_KEY = {setting.key: setting for setting in SETTINGS}
SECTIONS = tuple(dict.fromkeys(setting.section for setting in SETTINGS))


def default(key: str):
    """The default of `section.name` (a fresh copy of a list)."""
    value = BY_KEY[key].default
    return list(value) if isinstance(value, list) else value


def check(key: str, value):
    """`value` checked as setting `key` takes it (SettingError says what is wrong)."""
    return BY_KEY[key].check(value)


def pinhole_port(text: str) -> tuple[str, int]:
    """`tcp/8080` -> ("tcp", 8080); SettingError for anything else."""
    proto, _, port = text.partition("/")
    if proto not in ("tcp", "udp") or not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingError(f"{text!r} is not a pinhole like tcp/8080 or udp/1900")
    return proto, int(port)


def store_path(state_dir: str) -> str:
    return f"{state_dir.rstrip('/')}/{STORE_NAME}"


STORE_PATH = store_path(default("appliance.state_dir"))


def markdown_table() -> str:
    """The reference table of docs/configuration.md (tests/test_settings.py keeps the two equal)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        rows.append(f"| `{setting.key}` | `{_toml(setting.default)}` | {setting.help} |")
    return "\n".join(rows) + "\n"


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return _number(value)


if __name__ == "__main__":
    print(markdown_table(), end="")
