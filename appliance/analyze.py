"""`harvestwatch analyze`: existing kernel logs -> scans, trigger candidates and trigger endpoints, in a store.

The same parse/detect/attribute stages serve the live daemon; this module only drives them
over files, in time order, and hands the results to the store in batches.
"""
from __future__ import annotations

import gc
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import tzinfo
from functools import cached_property
from itertools import accumulate, repeat
from operator import itemgetter, lt, sub

from .attribute.triggers import TriggerHistory
from .capture.files import head_block, open_log, read_blocks
from .detect.scans import Scan, ScanDetector
from .detect.touches import TouchDetector
from .lan import LanNetworks
from .parse.clock import LineClock, file_reference_time, resolve_zone
from .parse.netfilter import OUT_OF_ORDER_SLACK, NetfilterParser
from .settings import default
from .store.db import Store

SCAN_BATCH = 200          # scans per store transaction
CONTACT_BATCH = 5000      # distinct contacts held before they go to the store


@dataclass
class Settings:
    """One run's parameters (stored with the import and written into the JSON document)."""
    min_ports: int = default("detect.min_ports")
    window: float = default("detect.window")
    min_hosts: int = default("detect.min_hosts")
    lookback: float = default("detect.lookback")
    family_prefix: int = default("detect.family_prefix")
    year: int | None = None
    tz: str = "UTC"
    boot_time: float | None = None

    @cached_property
    def zone(self) -> tzinfo:
        """`tz` as a zone (ValueError for an unknown name), looked up once."""
        return resolve_zone(self.tz)

    def clock(self, path: str) -> LineClock:
        """A fresh clock for one input file: its syslog year from the file's age."""
        return LineClock(year=self.year, reference=None if path == "-" else file_reference_time(path),
                         zone=self.zone, boot_time=self.boot_time)

_ts = itemgetter(0)


@dataclass
class Result:
    import_id: int
    scan_ids: list[int] = field(default_factory=list)
    touches: dict = field(default_factory=dict)  # (probe id, src, proto, dport) -> [first, last, packets]
    lines: int = 0
    empty: int = 0
    records: int = 0
    skipped: Counter = field(default_factory=Counter)
    out_of_order: int = 0      # records more than OUT_OF_ORDER_SLACK s before one read earlier


def order_by_first_record(paths: list[str], settings: Settings) -> list[str]:
    """Rotated logs given in any order (kern.log.2.gz kern.log.1 kern.log) are read oldest first."""
    if len(paths) < 2 or "-" in paths:
        return paths

    def first(path: str) -> float:
        packets = NetfilterParser(settings.clock(path)).parse(head_block(path))
        return min((p.ts for p in packets), default=float("inf"))
    return sorted(paths, key=first)


@contextmanager
def few_collections():
    """The stages make millions of short-lived tuples and no reference cycles: with the collector's
    default young-generation threshold (700 objects) its passes took a quarter of a run. Collect
    every 20,000 instead (memory stays bounded: what the stages hold is bounded), then as before."""
    thresholds = gc.get_threshold()
    gc.set_threshold(20_000, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def analyze(paths: list[str], store: Store, settings: Settings) -> Result:
    with few_collections():
        return _analyze(paths, store, settings)


def _analyze(paths: list[str], store: Store, settings: Settings) -> Result:
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

    store.family_prefix = settings.family_prefix
    history = TriggerHistory(settings.lookback)
    detector = ScanDetector(keep, min_ports=settings.min_ports, window=settings.window,
                            min_hosts=settings.min_hosts, candidates=history.candidates)
    # The store's probe ledger (analyze --db on the appliance's own store): packets that reach a
    # probe address from outside are touches, as in the daemon. A scratch store has none.
    touches = TouchDetector(LanNetworks())
    for probe_id, address, planned, expires in store.probe_windows():
        touches.watch(address, probe_id, planned, expires)
    latest = float("-inf")
    for path in paths:
        parser = NetfilterParser(settings.clock(path), result.skipped)
        with open_log(path) as stream:
            for block in read_blocks(stream, skipped=result.skipped):
                packets = parser.parse(block)
                # The stages read time forwards (a trigger before its scan, a window after its
                # start): a record far behind one already read may lose its scan or attribution.
                # Counted and reported, not reordered: a log is in time order but for the CPUs'
                # interleaving, which the slack allows.
                if packets:
                    # In C, not per packet in Python (a third more time on a million lines): the
                    # latest time before each record, and how many records lag it by more than the slack.
                    stamps = list(map(_ts, packets))
                    before = list(accumulate(stamps, max, initial=latest))
                    result.out_of_order += sum(map(lt, stamps, map(sub, before, repeat(OUT_OF_ORDER_SLACK))))
                    latest = before[-1]
                # History first: a trigger in the same block as its scan must already be known.
                history.feed(touches.triggers(packets))
                detector.feed(packets)
                touches.feed(packets)
                if len(history.contacts) >= CONTACT_BATCH:
                    store.add_contacts(history.take_contacts())
        result.lines += parser.lines
        result.empty += parser.empty
        result.records += parser.records
    detector.flush()
    flush_scans()
    store.add_contacts(history.take_contacts())
    result.touches = touches.take()
    store.add_touches(result.touches)
    store.refresh()
    store.finish_import(result.import_id, result.lines, result.records, result.skipped)
    return result


def progress(message: str) -> None:
    print(message, file=sys.stderr)
