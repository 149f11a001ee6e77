"""IPv6 privacy addresses (RFC 8981): the sysctls that make them, checked and restored at run time.

The drop-in file sets them at boot; the daemon checks the LAN interface's live values, because
the kernel switches temporary addresses off by itself (use_tempaddr becomes -1, logged as
"regeneration time exceeded") when e.g. a Pi without a real-time clock steps its clock at boot.
Writing these needs CAP_NET_ADMIN in the interface's network namespace, nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SYSCTL_ROOT = Path("/proc/sys/net/ipv6/conf")
DROPIN_PATH = "/etc/sysctl.d/60-harvestwatch.conf"
PREFER_TEMPORARY = 2   # use_tempaddr=2: make temporary addresses and prefer them as source
KERNEL_GAVE_UP = -1


@dataclass
class PrivacyState:
    interface: str
    values: dict[str, int]
    problems: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    @property
    def in_force(self) -> bool:
        return not self.problems


def wanted(prefered_lft: int, valid_lft: int) -> dict[str, int]:
    return {"use_tempaddr": PREFER_TEMPORARY, "temp_prefered_lft": prefered_lft, "temp_valid_lft": valid_lft}


def dropin(prefered_lft: int = 1200, valid_lft: int = 2400, interfaces: tuple[str, ...] = ()) -> str:
    """The /etc/sysctl.d file: `default` for interfaces that appear later, `all`, and named ones (an
    interface that exists before systemd-sysctl runs, as the Pi's eth0 does, takes neither `default`
    nor `all`; udev applies its lines again whenever it appears). Named ones in the slash form, in
    which a dot in the name (eth0.10, a VLAN) stays part of the name."""
    lines = ["# HarvestWatch: short-lived IPv6 privacy addresses (a new one every "
             f"{prefered_lft // 60} minutes), preferred as source."]
    for scope in ("default", "all"):
        for key, value in wanted(prefered_lft, valid_lft).items():
            lines.append(f"net.ipv6.conf.{scope}.{key} = {value}")
    for interface in interfaces:
        for key, value in wanted(prefered_lft, valid_lft).items():
            lines.append(f"net/ipv6/conf/{interface}/{key} = {value}")
    return "\n".join(lines) + "\n"


def read(interface: str, root: Path = SYSCTL_ROOT) -> dict[str, int]:
    folder = root / interface
    if not folder.is_dir():
        raise FileNotFoundError(f"interface {interface} has no IPv6 settings (gone, or IPv6 off)")
    return {key: int((folder / key).read_text().strip()) for key in ("use_tempaddr", "temp_prefered_lft",
                                                                     "temp_valid_lft")}


def check(interface: str, want: dict[str, int], *, restore: bool = False,
          root: Path = SYSCTL_ROOT) -> PrivacyState:
    """Compare the live values with `want`; with `restore`, write back what differs."""
    try:
        values = read(interface, root)
    except (FileNotFoundError, OSError, ValueError) as exc:
        return PrivacyState(interface, {}, [str(exc)])
    state = PrivacyState(interface, values)
    for key, value in want.items():
        if values[key] == value:
            continue
        if key == "use_tempaddr" and values[key] == KERNEL_GAVE_UP:
            problem = ("the kernel switched temporary addresses off (use_tempaddr=-1, \"regeneration time "
                       "exceeded\", e.g. after a clock step at boot)")
        else:
            problem = f"{key} is {values[key]}, want {value}"
        if restore:
            try:
                (root / interface / key).write_text(f"{value}\n")
                state.restored.append(problem)
                values[key] = value
                continue
            except OSError as exc:
                problem += f"; cannot restore it: {exc.strerror}"
        state.problems.append(problem)
    return state
