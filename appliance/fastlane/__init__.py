"""The fast lane: parse -> detect -> attribute compiled into one C loop, for `analyze` on large logs.

On the million-line benchmark log the stages take about a second with it, and more than ten
without. The Python stages (appliance/parse, detect, attribute) remain the reference and what
the live daemon runs; the C loop (_fastlane.c) copies their rules, and tests/test_fastlane.py
holds the two lanes to the same results. Lines the C loop is not sure about go to the Python
parser; finished episodes are judged by the same Python functions as in the daemon.

The extension is optional: it is built when the package is installed with a C compiler at hand
(`make venv` installs one), and not for the image's wheel (HARVESTWATCH_PURE=1). Without it, or
with HARVESTWATCH_PURE=1 in the environment, `analyze` takes the Python lane.
"""
from __future__ import annotations

import os
from collections import Counter

from ..attribute.triggers import PER_ADDRESS_LIMIT, Candidate, TriggerHistory
from ..detect.scans import pair_scan, sweep_scan
from ..parse.clock import ANCHOR_SLACK, BadTimestamp, LineClock
from ..parse.netfilter import NetfilterParser

try:
    from ._fastlane import Pipeline
except ImportError:  # not built: no compiler at install time, or a pure wheel
    Pipeline = None


def available() -> bool:
    return Pipeline is not None and not os.environ.get("HARVESTWATCH_PURE")


class CompiledLane:
    """Same interface as analyze.PythonLane."""

    name = "compiled"

    def __init__(self, *, min_ports: int, window: float, min_hosts: int, lookback: float, emit):
        def close_pair(src, dst, start, last, packets, ports, first_seen, candidates):
            scan = pair_scan(src, dst, start, last, packets, ports, first_seen, candidates, min_ports, window)
            if scan is not None:
                emit(scan)

        def close_sweep(src, start, last, packets, hosts, ports):
            scan = sweep_scan(src, start, last, packets, hosts, ports, min_hosts, window)
            if scan is not None:
                emit(scan)

        self._pipeline = Pipeline(
            min_ports=min_ports, window=window, min_hosts=min_hosts, lookback=lookback,
            retention=TriggerHistory(lookback).retention, history_limit=PER_ADDRESS_LIMIT,
            anchor_slack=ANCHOR_SLACK, close_pair=close_pair, close_sweep=close_sweep,
            make_candidate=Candidate, bad_timestamp=BadTimestamp)
        self._skipped: Counter | None = None

    def start_file(self, clock: LineClock, skipped: Counter) -> None:
        self._skipped = skipped
        # The Python parser reads the lines the C loop hands back; its own counts are not used.
        self._pipeline.start_file(clock, NetfilterParser(clock, skipped).parse_text)

    def feed(self, block) -> None:
        self._pipeline.feed(block)

    def end_file(self) -> None:
        self._pipeline.end_file()
        self._skipped.update(self._pipeline.take_skips())

    def finish(self) -> None:
        self._pipeline.finish()

    @property
    def contacts_held(self) -> int:
        return self._pipeline.contacts

    def take_contacts(self) -> dict:
        return self._pipeline.take_contacts()

    @property
    def lines(self) -> int:
        return self._pipeline.lines

    @property
    def records(self) -> int:
        return self._pipeline.packets


__all__ = ["CompiledLane", "available"]
