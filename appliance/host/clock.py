"""Is the system clock right? The daemon asks before it probes or stamps any evidence.

A Raspberry Pi has no battery-backed clock: a booted image starts at the date of its newest file
(months in the past) until the NTP daemon has synchronised. Lags, gaps and the evidence sent to
pool operators would all be wrong if stamped before that. Three sources, as `clock.source` says:

* chrony: ask chronyd (`chronyc tracking` over its local monitoring port, which needs no
  privilege): synchronised when its leap status is anything but "Not synchronised";
* kernel: the kernel's own flag (adjtimex: STA_UNSYNC clear), which chronyd, ntpd and
  systemd-timesyncd all keep; it is what `timedatectl` shows as "System clock synchronized";
* none: the clock is trusted as it is (a machine with a battery-backed clock).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
from dataclasses import dataclass

TIME_ERROR = 5          # adjtimex's return for a clock not synchronised
CHRONYC_TIMEOUT = 5.0


@dataclass(frozen=True)
class ClockState:
    synchronised: bool
    detail: str  # what the source said, for status and logs


LOCAL_REFID = "7F7F0101"  # chronyd's `local` reference: no source, its own clock taken as right


def check(source: str, *, chrony_host: str = "127.0.0.1") -> ClockState:
    if source == "none":
        return ClockState(True, "trusted as it is (clock.source = none)")
    if source == "kernel":
        return _kernel()
    return _chrony(chrony_host)


def _chrony(host: str) -> ClockState:
    command = shutil.which("chronyc") or shutil.which("chronyc", path="/usr/bin:/usr/sbin:/bin:/sbin")
    if command is None:
        return ClockState(False, "chronyc is not installed (Debian package chrony): cannot tell whether the "
                                 "clock is right")
    # -h: always chronyd's monitoring port, never a Unix socket (the daemon's own namespace, no privilege).
    try:
        done = subprocess.run([command, "-n", "-c", "-h", host, "tracking"], capture_output=True, text=True,
                              timeout=CHRONYC_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ClockState(False, f"chronyd did not answer ({exc})")
    if done.returncode != 0:
        return ClockState(False, f"chronyd did not answer: {done.stderr.strip() or done.stdout.strip() or 'no reply'}")
    fields = done.stdout.strip().split(",")
    if len(fields) < 14:
        return ClockState(False, f"chronyc tracking said something unexpected: {done.stdout.strip()[:120]!r}")
    refid, source, leap = fields[0], fields[1], fields[13]
    if leap == "Not synchronised":
        return ClockState(False, "chronyd has not synchronised yet")
    if refid == LOCAL_REFID:
        return ClockState(True, f"chronyd serves its own clock as the reference (`local`, stratum {fields[2]})")
    return ClockState(True, f"synchronised to {source or 'reference ' + refid} (chronyd, stratum {fields[2]})")


class _Timex(ctypes.Structure):
    # struct timex (linux/timex.h): the fields up to `tai` and its padding; adjtimex reads modes only.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("padding", ctypes.c_int * 11)]


def _kernel() -> ClockState:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    timex = _Timex()  # modes 0: read only, no privilege needed
    state = libc.adjtimex(ctypes.byref(timex))
    if state < 0:
        return ClockState(False, f"adjtimex failed (errno {ctypes.get_errno()})")
    if state == TIME_ERROR:
        return ClockState(False, "the kernel says the clock is not synchronised (no NTP daemon has set it)")
    return ClockState(True, "the kernel says the clock is synchronised")
