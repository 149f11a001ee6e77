"""`harvestwatch analyze`: existing kernel logs -> scans, trigger candidates, suspects, in a store.

The same parse/detect/attribute stages serve the live daemon; this module only drives them
over files, in time order, and hands the results to the store in batches. They run in one of two
lanes with the same results: the Python stages themselves, or their compiled copy
(appliance/fastlane) when it is built, more than ten times faster on large logs.
"""
from __future__ import annotations

import sys
from collections import Counter
from dataclasses import asdict, dataclass, field

from .attribute.triggers import TriggerHistory
from . import fastlane
from .capture.files import head_text, open_log, read_blocks
from .detect.scans import Scan, ScanDetector
from .parse.clock import LineClock, file_reference_time, resolve_zone
from .parse.netfilter import NetfilterParser
from .store.db import Store

SCAN_BATCH = 200          # scans per store transaction
CONTACT_BATCH = 5000      # distinct contacts held before they go to the store


@dataclass
class Settings:
    min_ports: int = 10
    window: float = 60.0
    min_hosts: int = 8
    lookback: float = 300.0
    year: int | None = None
    tz: str = "UTC"
    boot_time: float | None = None


@dataclass
class Result:
    import_id: int
    scan_ids: list[int] = field(default_factory=list)
    lines: int = 0
    records: int = 0
    skipped: Counter = field(default_factory=Counter)


def order_by_first_record(paths: list[str], settings: Settings) -> list[str]:
    """Rotated logs given in any order (kern.log.2.gz kern.log.1 kern.log) are read oldest first."""
    if len(paths) < 2 or "-" in paths:
        return paths
    zone = resolve_zone(settings.tz)

    def first(path: str) -> float:
        parser = NetfilterParser(LineClock(year=settings.year, reference=file_reference_time(path),
                                           zone=zone, boot_time=settings.boot_time))
        packets = parser.parse_text(head_text(path))
        return min((p.ts for p in packets), default=float("inf"))
    return sorted(paths, key=first)


class PythonLane:
    """The Python stages over raw blocks of whole lines (fastlane.CompiledLane has the same face)."""

    name = "python"

    def __init__(self, *, min_ports: int, window: float, min_hosts: int, lookback: float, emit):
        self.history = TriggerHistory(lookback)
        self.detector = ScanDetector(emit, min_ports=min_ports, window=window, min_hosts=min_hosts,
                                     candidates=self.history.candidates)
        self.lines = self.records = 0
        self._parser: NetfilterParser | None = None

    def start_file(self, clock: LineClock, skipped: Counter) -> None:
        self._parser = NetfilterParser(clock, skipped)

    def feed(self, block) -> None:
        packets = self._parser.parse_text(str(block, "utf-8", "replace"))
        # History first: a trigger in the same chunk as its scan must already be known.
        self.history.feed(packets)
        self.detector.feed(packets)

    def end_file(self) -> None:
        self.lines += self._parser.lines
        self.records += self._parser.records

    def finish(self) -> None:
        self.detector.flush()

    @property
    def contacts_held(self) -> int:
        return len(self.history.contacts)

    def take_contacts(self) -> dict:
        return self.history.take_contacts()


def make_lane(settings: Settings, emit):
    lane = fastlane.CompiledLane if fastlane.available() else PythonLane
    return lane(min_ports=settings.min_ports, window=settings.window, min_hosts=settings.min_hosts,
                lookback=settings.lookback, emit=emit)


def analyze(paths: list[str], store: Store, settings: Settings) -> Result:
    zone = resolve_zone(settings.tz)
    paths = order_by_first_record(paths, settings)
    result = Result(store.begin_import(paths, asdict(settings)))
    pending: list[Scan] = []

    def keep(scan: Scan) -> None:
        pending.append(scan)
        if len(pending) >= SCAN_BATCH:
            flush_scans()

    def flush_scans() -> None:
        result.scan_ids.extend(store.add_scans(pending, result.import_id))
        pending.clear()

    lane = make_lane(settings, keep)
    for path in paths:
        clock = LineClock(year=settings.year, reference=None if path == "-" else file_reference_time(path),
                          zone=zone, boot_time=settings.boot_time)
        lane.start_file(clock, result.skipped)
        with open_log(path) as stream:
            for block in read_blocks(stream, skipped=result.skipped):
                lane.feed(block)
                if lane.contacts_held >= CONTACT_BATCH:
                    store.add_contacts(lane.take_contacts())
        lane.end_file()
    lane.finish()
    flush_scans()
    store.add_contacts(lane.take_contacts())
    result.lines, result.records = lane.lines, lane.records
    store.refresh()
    store.finish_import(result.import_id, result.lines, result.records, result.skipped)
    return result


def progress(message: str) -> None:
    print(message, file=sys.stderr)
