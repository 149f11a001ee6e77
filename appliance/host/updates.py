"""Security updates on the appliance: are they on, when did they last run, does a reboot wait?

What the status page shows of unattended-upgrades, read the way apt reads it (`apt-config dump`,
so every apt.conf.d file counts, in apt's order) and from the marks apt and the kernel's packages
leave: apt's periodic stamp of the last unattended-upgrades run, and /run/reboot-required, which
a kernel or libc update writes and a reboot removes.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

APT_CONFIG_TIMEOUT = 10.0


@dataclass(frozen=True)
class Paths:
    program: str = "/usr/bin/unattended-upgrade"
    stamp: str = "/var/lib/apt/periodic/unattended-upgrades-stamp"
    reboot: str = "/run/reboot-required"
    reboot_packages: str = "/run/reboot-required.pkgs"


def check(paths: Paths = Paths(), apt_config: str | None = None) -> dict:
    """The state of security updates, for the daemon's status. `apt_config`: the text of
    `apt-config dump` (read here when None)."""
    installed = os.path.exists(paths.program)
    settings = parse_apt_config(_apt_config_dump() if apt_config is None else apt_config)
    enabled = installed and settings.get("APT::Periodic::Unattended-Upgrade", "0") not in ("0", "", "false")
    try:
        last_run = os.stat(paths.stamp).st_mtime
    except OSError:
        last_run = None
    packages = []
    if os.path.exists(paths.reboot):
        try:
            with open(paths.reboot_packages, encoding="utf-8", errors="replace") as handle:
                packages = sorted({line.strip() for line in handle if line.strip()})[:20]
        except OSError:
            packages = []
    return {"installed": installed, "enabled": enabled, "last_run": last_run,
            "reboot_required": os.path.exists(paths.reboot), "reboot_packages": packages,
            "auto_reboot": settings.get("Unattended-Upgrade::Automatic-Reboot", "false") == "true",
            "reboot_time": settings.get("Unattended-Upgrade::Automatic-Reboot-Time", "now")}


_LINE = re.compile(r'^([A-Za-z0-9_:.\-]+) "(.*)";$')


def parse_apt_config(dump: str) -> dict[str, str]:
    """`apt-config dump`'s scalar options ({"APT::Periodic::Unattended-Upgrade": "1", ...})."""
    return {match.group(1): match.group(2) for match in map(_LINE.match, dump.splitlines()) if match}


def _apt_config_dump() -> str:
    program = shutil.which("apt-config")
    if program is None:
        return ""
    try:
        return subprocess.run([program, "dump"], capture_output=True, text=True, timeout=APT_CONFIG_TIMEOUT,
                              check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""
