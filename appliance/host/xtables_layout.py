"""Make python-iptables read libxtables' option tables with the installed library's layout.

iptables 1.8.11 (Debian trixie, so the SD-card image) appended a `base` field to libxtables'
`struct xt_option_entry`. python-iptables (up to 1.2.0, and Debian's 1.0.1) still walks an
extension's option table with the old, shorter entry, so every option after the first one is
invisible: `hl: no such parameter hl-eq`, and the ruleset cannot be built (upstream report:
ldx/python-iptables#353, open). Found by booting the image; the lab's Debian 12 has 1.8.9.

`fit()` replaces python-iptables' two table walkers with ones that step by the real entry size
and hand back entries of python-iptables' own type (the fields it reads are unchanged). It does
nothing for older iptables, or once python-iptables knows the field itself.
"""
from __future__ import annotations

import ctypes as ct
import functools
import re
import subprocess

FIELD_ADDED_IN = (1, 8, 11)


@functools.lru_cache(maxsize=None)
def iptables_version(command: str) -> tuple[int, ...] | None:
    """(1, 8, 11) from `ip6tables-legacy --version`; None if it cannot be told. Asked once per
    process: the libxtables this process has loaded does not change under it."""
    try:
        out = subprocess.run([command, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"v(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(part) for part in found.groups()) if found else None


def needs_fit(xtables, version: tuple[int, ...] | None) -> bool:
    known = {name for name, _ in xtables.xt_option_entry._fields_}
    return version is not None and version >= FIELD_ADDED_IN and "base" not in known


def fit(xtables) -> None:
    """Patch python-iptables' `iptc.xtables` module in place (idempotent)."""
    cls = xtables.xtables
    if getattr(cls, "_harvestwatch_layout", False):
        return
    legacy = xtables.xt_option_entry

    class Entry(ct.Structure):
        _fields_ = list(legacy._fields_) + [("base", ct.c_uint)]

    def entries(table):
        """The table's entries as python-iptables' type, up to the all-zero terminator."""
        walk = ct.cast(table, ct.POINTER(Entry))
        index = 0
        while walk[index].name:
            yield ct.cast(ct.addressof(walk[index]), ct.POINTER(legacy))[0]
            index += 1

    def option_lookup(self, table, name):
        return next((entry for entry in entries(table) if entry.name == name), None)

    def options_fcheck(self, name, xflags, table):
        for entry in entries(table):
            if entry.flags & xtables.XTOPT_MAND and not xflags & (1 << entry.id):
                raise xtables.XTablesError(f"{name}: --{entry.name.decode()} must be specified")

    cls._option_lookup = option_lookup
    cls._options_fcheck = options_fcheck
    cls._harvestwatch_layout = True
