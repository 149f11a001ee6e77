"""The appliance's configuration: /etc/harvestwatch/config.toml, every key optional.

Each section is a dataclass made from the settings of appliance/settings.py, whose defaults are
the documented ones. A bad value (a wrong type, a value out of range, an unknown key: usually a
typo) is refused with the file, the key and what is expected, before anything starts.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import tomllib

from .lan import lan_prefix
from .settings import CONFIG_PATH, DEBIAN_POOLS, SECTIONS, SETTINGS, SettingError, pinhole_port, store_path

__all__ = ["CONFIG_PATH", "Config", "ConfigError", "DEBIAN_POOLS", "from_dict", "load", "load_given", "store_given"]


class ConfigError(ValueError):
    pass


def _section_class(section: str) -> type:
    fields = []
    for setting in SETTINGS:
        if setting.section == section:
            value = setting.default
            default = (dataclasses.field(default_factory=lambda value=value: list(value)) if isinstance(value, list)
                       else dataclasses.field(default=value))
            fields.append((setting.name, type(value), default))
    return dataclasses.make_dataclass(section.capitalize(), fields)


Config = dataclasses.make_dataclass("Config", [
    (section, _section_class(section), dataclasses.field(default_factory=_section_class(section)))
    for section in SECTIONS], namespace={"db_path": property(lambda self: store_path(self.appliance.state_dir))})
Config.__doc__ = "The configuration: one attribute per section (config.detect.min_ports, ...)."


def load(path: str = CONFIG_PATH, *, missing_ok: bool = False) -> Config:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if missing_ok:
            return Config()
        raise ConfigError(f"{path}: no such file")
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    return from_dict(data, source=path)


def load_given(path: str) -> Config:
    """The configuration a command was given: at the default path a missing file means the
    defaults (a fresh install); a path given by hand must exist."""
    return load(path, missing_ok=path == CONFIG_PATH)


def store_given(db: str | None, config_path: str) -> str:
    """The store a command reads: `db` (its --db), or the one its configuration names."""
    return db if db is not None else load_given(config_path).db_path


def from_dict(data: dict, *, source: str = "config") -> Config:
    config = Config()
    for name, values in data.items():
        if name not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{name}] must be a table")
        section = getattr(config, name)
        known = {setting.name: setting for setting in SETTINGS if setting.section == name}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key {name}.{key} (known: {', '.join(known)})")
            try:
                setattr(section, key, known[key].check(value))
            except SettingError as exc:
                raise ConfigError(f"{source}: {name}.{key} {exc}") from None
    _check(config, source)
    return config


def _check(config: Config, source: str) -> None:
    """What no single setting can say alone."""
    p = config.probe
    if p.enabled and not p.pools:
        raise ConfigError(f"{source}: probe.pools is empty: name at least one pool, or set probe.enabled = false")
    for address in p.nameservers:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"{source}: probe.nameservers: {address!r} is not an IP address") from None
    if not config.appliance.state_dir.startswith("/"):
        raise ConfigError(f"{source}: appliance.state_dir must be an absolute path, got "
                          f"{config.appliance.state_dir!r}")
    for prefix in config.appliance.lan_prefixes:
        try:
            lan_prefix(prefix)
        except ValueError as exc:
            raise ConfigError(f"{source}: appliance.lan_prefixes: {exc}") from None
    for port in config.reachability.ports:
        try:
            pinhole_port(port)
        except SettingError as exc:
            raise ConfigError(f"{source}: reachability.ports: {exc}") from None
    if config.privacy.temp_valid_lft <= config.privacy.temp_prefered_lft:
        raise ConfigError(f"{source}: privacy.temp_valid_lft must be longer than privacy.temp_prefered_lft")
