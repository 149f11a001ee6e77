"""The appliance's configuration: /etc/harvestwatch/config.toml, every key optional.

Each section maps to a dataclass whose defaults are the documented defaults. A bad value (a
wrong type, a negative interval, an unknown key: usually a typo) is refused with the file, the
key and what is expected, before anything starts.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass, field

from .probe.send import PROBE_KINDS

DEFAULT_PATH = "/etc/harvestwatch/config.toml"
DEBIAN_POOLS = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org", "2.debian.pool.ntp.org",
                "3.debian.pool.ntp.org", "2.pool.ntp.org"]


class ConfigError(ValueError):
    pass


@dataclass
class Appliance:
    interface: str = "eth0"                      # the LAN interface (SLAAC prefix, probe addresses)
    state_dir: str = "/var/lib/harvestwatch"     # the store lives here
    lan_prefixes: list[str] = field(default_factory=list)  # extra LAN prefixes beyond the on-link one


@dataclass
class Firewall:
    manage: bool = True          # apply (and re-apply on renumbering) the ruleset from the daemon
    nflog_group: int = 5
    tcp_services: list[int] = field(default_factory=lambda: [22, 80])
    rate: int = 500              # logged packets/s per source /64 before the flood limit drops unlogged
    burst: int = 4000


@dataclass
class Detect:
    min_ports: int = 10
    window: float = 60.0
    min_hosts: int = 8
    lookback: float = 300.0
    scanner_names: bool = True           # forward-confirmed reverse DNS of scanners, for the page


@dataclass
class Probe:
    enabled: bool = True
    pools: list[str] = field(default_factory=lambda: list(DEBIAN_POOLS))
    nameservers: list[str] = field(default_factory=list)   # empty: the system's resolv.conf
    kinds: list[str] = field(default_factory=lambda: list(PROBE_KINDS))
    server_interval: float = 6 * 3600.0   # at most one probe per server per this many seconds
    min_gap: float = 60.0                 # global rate: at least this many seconds between probes
    first_delay: float = 10.0             # after start, before the first probe
    observation: float = 48 * 3600.0      # a probe address stays valid (scanners come back late)
    max_live: int = 500                   # cap on probe addresses held at once
    resolve_every: float = 900.0          # pool DNS refresh
    reply_timeout: float = 2.0


@dataclass
class Privacy:
    enforce: bool = True
    temp_prefered_lft: int = 1200        # the seed's values: a new temporary address every 20 min
    temp_valid_lft: int = 2400


@dataclass
class Store:
    flush_every: float = 5.0             # batched writes: fewer, larger transactions (SD-card wear)


@dataclass
class Config:
    appliance: Appliance = field(default_factory=Appliance)
    firewall: Firewall = field(default_factory=Firewall)
    detect: Detect = field(default_factory=Detect)
    probe: Probe = field(default_factory=Probe)
    privacy: Privacy = field(default_factory=Privacy)
    store: Store = field(default_factory=Store)

    @property
    def db_path(self) -> str:
        return f"{self.appliance.state_dir.rstrip('/')}/harvestwatch.sqlite"


def load(path: str = DEFAULT_PATH, *, missing_ok: bool = False) -> Config:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError(f"{path}: no such file")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    return from_dict(data, source=path)


def from_dict(data: dict, *, source: str = "config") -> Config:
    config = Config()
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        section = getattr(config, name)
        known = {f.name: f for f in dataclasses.fields(section)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key {name}.{key} (known: {', '.join(known)})")
            setattr(section, key, _typed(f"{source}: {name}.{key}", getattr(section, key), value))
    _check(config, source)
    return config


def _typed(where: str, default, value):
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number of seconds, got {value!r}")
        value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a non-empty string, got {value!r}")
    elif isinstance(default, list):
        item_type = int if default and isinstance(default[0], int) else str
        if not isinstance(value, list) or not all(isinstance(v, item_type) and not isinstance(v, bool)
                                                  for v in value):
            raise ConfigError(f"{where} must be a list of {'numbers' if item_type is int else 'strings'}, "
                              f"got {value!r}")
    return value


def _check(config: Config, source: str) -> None:
    def positive(name: str, value) -> None:
        if value <= 0:
            raise ConfigError(f"{source}: {name} must be positive, got {value}")

    d, p, f = config.detect, config.probe, config.firewall
    if d.min_ports < 2 or d.min_hosts < 2:
        raise ConfigError(f"{source}: detect.min_ports and detect.min_hosts must be at least 2")
    for name in ("window", "lookback"):
        positive(f"detect.{name}", getattr(d, name))
    for name in ("server_interval", "min_gap", "observation", "max_live", "resolve_every", "reply_timeout"):
        positive(f"probe.{name}", getattr(p, name))
    if p.first_delay < 0:
        raise ConfigError(f"{source}: probe.first_delay must not be negative")
    unknown = set(p.kinds) - set(PROBE_KINDS)
    if unknown or not p.kinds:
        raise ConfigError(f"{source}: probe.kinds must be some of {', '.join(PROBE_KINDS)}, got {p.kinds}")
    if p.enabled and not p.pools:
        raise ConfigError(f"{source}: probe.pools is empty: name at least one pool, or set probe.enabled = false")
    if p.observation > 0xFFFFFFFE:
        raise ConfigError(f"{source}: probe.observation is longer than an address lifetime can be")
    for address in p.nameservers:
        _address(f"{source}: probe.nameservers", address)
    for prefix in config.appliance.lan_prefixes:
        try:
            ipaddress.IPv6Network(prefix)
        except ValueError:
            raise ConfigError(f"{source}: appliance.lan_prefixes: {prefix!r} is not a network "
                              f"like 2001:db8:1::/64") from None
    if not 0 <= f.nflog_group <= 65535:
        raise ConfigError(f"{source}: firewall.nflog_group must be 0..65535")
    if any(not 0 < port < 65536 for port in f.tcp_services):
        raise ConfigError(f"{source}: firewall.tcp_services must be ports 1..65535")
    if not 0 < f.rate <= 100_000 or not 0 < f.burst <= 1_000_000:
        raise ConfigError(f"{source}: firewall.rate must be 1..100000 packets/s and firewall.burst 1..1000000")
    positive("store.flush_every", config.store.flush_every)
    if config.privacy.temp_valid_lft <= config.privacy.temp_prefered_lft:
        raise ConfigError(f"{source}: privacy.temp_valid_lft must be longer than privacy.temp_prefered_lft")


def _address(where: str, text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an IP address") from None
