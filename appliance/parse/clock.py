"""Turn the time fields of a log line's wrapper into epoch seconds.

Kernel log lines reach us in several wrappers, each with its own idea of time:

* classic syslog (`Jan 13 19:33:10`): no year, no zone, one-second resolution;
* RFC 3339 / ISO 8601 (rsyslog high precision, `journalctl -o short-iso[-precise]`): complete;
* `/dev/kmsg` records and `dmesg` lines: microseconds since boot, no wall clock at all.

A `LineClock` holds the context those need (year, zone, boot time) and caches conversions,
because a log repeats the same second many times and parsing dates is the slow part.
"""
from __future__ import annotations

import calendar
import os
import time
from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo

MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}

# Syslog has one-second stamps; the kernel's own "[ uptime]" field has microseconds. When both
# are present we place the packet at boot_anchor + uptime. The anchor follows the syslog clock,
# and a jump of more than this many seconds means a reboot or a clock step: start a new anchor.
ANCHOR_SLACK = 2.0
_CACHE_LIMIT = 8192  # cached stamps per kind; cleared when full


class BadTimestamp(ValueError):
    """A wrapper timestamp that names no real instant (Feb 30, hour 25, ...)."""


def machine_boot_time() -> float:
    """Boot time of this machine, from /proc/stat (for live /dev/kmsg reads)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            for line in stat:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return time.time() - time.monotonic()


def resolve_zone(name: str | None) -> tzinfo:
    if not name or name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError for odd keys
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from exc


class LineClock:
    """Converts wrapper timestamps to epoch seconds for one input stream."""

    def __init__(self, *, year: int | None = None, reference: float | None = None,
                 zone: tzinfo = timezone.utc, boot_time: float | None = None):
        # Without --year, a syslog stamp takes the year of the reference time (the file's mtime),
        # or the year before when its month lies after the reference month (a December line
        # in a file last written in January).
        ref = time.gmtime(reference if reference is not None else time.time())
        self.fixed_year = year
        self.ref_year, self.ref_month = ref.tm_year, ref.tm_mon
        self.zone = zone
        self.boot_time = boot_time if boot_time is not None else machine_boot_time()
        self._last_month = 0
        self._year_bump = 0
        self._syslog_cache: dict[str, float] = {}
        self._iso_cache: dict[str, float] = {}
        self._last_stamp, self._last_wall = "", 0.0  # a log's records come many to a second
        self.anchor: float | None = None

    # -- syslog ----------------------------------------------------------------------------
    def syslog(self, stamp: str) -> float:
        """`Jan 13 19:33:10` -> epoch seconds."""
        cached = self._syslog_cache.get(stamp)
        if cached is not None:
            return cached
        second = int(stamp[13:15]) if stamp[13:15].isdigit() else 60
        if self.fixed_year is None and second < 60:
            # A log holds a few records a second over days: the calendar is asked once a minute
            # (zones change their offset on whole minutes). With --year every stamp is asked,
            # as the year's rollover follows the exact sequence of stamps.
            minute = stamp[:12]
            start = self._syslog_cache.get(minute)
            if start is None:
                start = self._calendar(stamp[:13] + "00")
                self._remember(self._syslog_cache, minute, start)
            value = start + second
        else:
            value = self._calendar(stamp)
        self._remember(self._syslog_cache, stamp, value)
        return value

    def _calendar(self, stamp: str) -> float:
        month = MONTHS.get(stamp[:3])
        if month is None:
            raise BadTimestamp(f"unknown month in {stamp!r}")
        year = self._year_for(month)
        try:
            day = int(stamp[4:6])
            hour, minute, second = int(stamp[7:9]), int(stamp[10:12]), int(stamp[13:15])
            return datetime(year, month, day, hour, minute, second, tzinfo=self.zone).timestamp()
        except ValueError as exc:
            raise BadTimestamp(f"{stamp!r}: {exc}") from None

    @staticmethod
    def _remember(cache: dict, key: str, value: float) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value

    def _year_for(self, month: int) -> int:
        if self.fixed_year is not None:
            # A given year belongs to the first line; a December -> January step moves it on.
            if self._last_month == 12 and month == 1:
                self._year_bump += 1
                self._syslog_cache.clear()
            self._last_month = month
            return self.fixed_year + self._year_bump
        return self.ref_year if month <= self.ref_month else self.ref_year - 1

    def syslog_with_uptime(self, stamp: str, up: float) -> float:
        """Sub-second time from the kernel's uptime field (`up` seconds since boot), kept in step
        with the syslog clock."""
        if stamp == self._last_stamp:
            wall = self._last_wall
        else:
            wall = self._last_wall = self.syslog(stamp)
            self._last_stamp = stamp
        anchor = self.anchor
        if anchor is None:
            self.anchor = anchor = wall - up
        else:
            drift = wall - up - anchor
            if drift > 0.0 or drift < -ANCHOR_SLACK:
                # Syslog stamps are truncated receive times, so wall - uptime is a lower bound of
                # the true anchor: keep the highest bound seen, and start over after a jump.
                self.anchor = anchor = wall - up
        return anchor + up

    # -- ISO 8601 -------------------------------------------------------------------------
    def iso(self, stamp: str) -> float:
        """`2016-01-13T19:33:10.123456+00:00` (or +0000, Z, no zone) -> epoch seconds."""
        # Cache on the whole second and the zone; the fraction is added back.
        fraction = 0.0
        key = stamp
        if len(stamp) > 19 and stamp[19] == ".":
            end = 20
            while end < len(stamp) and stamp[end].isdigit():
                end += 1
            fraction = float(stamp[19:end])
            key = stamp[:19] + stamp[end:]
        cached = self._iso_cache.get(key)
        if cached is None:
            try:
                parsed = datetime.fromisoformat(key)
            except ValueError as exc:
                raise BadTimestamp(f"{stamp!r}: {exc}") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.zone)
            cached = parsed.timestamp()
            if len(self._iso_cache) >= _CACHE_LIMIT:
                self._iso_cache.clear()
            self._iso_cache[key] = cached
        return cached + fraction

    # -- monotonic ------------------------------------------------------------------------
    def since_boot(self, seconds: float) -> float:
        return self.boot_time + seconds


def file_reference_time(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
