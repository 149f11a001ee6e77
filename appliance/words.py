"""The appliance's words, each defined once and used in code, store, page, JSON, CLI and docs.

Each is a StrEnum: it is stored, compared and written as its plain text ("harvester"), so the
store, the JSON documents and the templates see strings while the code names one definition.
"""
from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    """What the appliance says of one NTP server, most serious first (README, "What you will see";
    docs/prober.md, "The verdicts, in full")."""
    HARVESTER = "harvester"    # a probe address of it was touched: confirmed
    SUSPECT = "suspect"        # a trigger candidate of a scan, not (yet) cleared by clean probes
    UNVERIFIED = "unverified"  # probed, windows over, but unsolicited packets could not reach us
    WATCHING = "watching"      # probed, its observation window still open, nothing yet
    CLEAN = "clean"            # a whole window passed with no touch while packets could reach us
    UNPROBED = "unprobed"      # known from the pools, not probed yet


# How a verdict reads to a person (the page; the status command; the README's "What you will see").
LABELS = {Verdict.HARVESTER: "confirmed harvester", Verdict.SUSPECT: "suspect",
          Verdict.UNVERIFIED: "unverified", Verdict.WATCHING: "watching", Verdict.CLEAN: "clean",
          Verdict.UNPROBED: "unprobed"}


# Gaps: the times the capture could not see everything (the store's gaps.reason), and what each
# means to a person.
# Gaps that cannot hide evidence about a probe address: the packets they count were not to a watched
# probe address (the firewall's probe rules come before the limits that count them; scans of probe
# addresses are never capped). They say what the appliance did not log, not that a window is unproven.
SPARES_PROBES = ("flood", "flood-table", "scan-cap", "episode-cap")

GAP_WORDS = {
    "daemon-down": "the daemon was not running",
    "daemon-stopped": "the daemon was stopped",
    "overrun": "the capture's buffer overflowed",
    "seq-gap": "log messages went missing",
    "flood-limit": "a flood went over the per-/64 limit",
    "flood": "a flood went over the flood limits (probe addresses have their own)",
    "flood-table": "a flood from more networks than the flood limits can track at once",
    "probe-flood": "a flood at the probe addresses went over their limit",
    "probe-unexempt": "a probe address could not be given its own flood limit",
    "scan-cap": "more scans came in an hour than the store takes (counted, not stored one by one)",
    "episode-cap": "packets came from more sources at once than the detector follows",
    "disk-full": "the disk was full: nothing could be stored",
    "clock-wait": "packets came while the clock was wrong and could not all be held",
    "touch-cap": "more touches came than the store takes at once",
}


class Attribution(StrEnum):
    """How sure the appliance is of what triggered one scan."""
    CERTAIN = "certain"            # the scanned address contacted exactly one endpoint (a probe address)
    CANDIDATE = "candidate"        # it contacted several: ranked trigger candidates
    UNATTRIBUTED = "unattributed"  # it sent nothing in the lookback


class ScanKind(StrEnum):
    PORTSCAN = "portscan"  # one source, many ports of one address
    SWEEP = "sweep"        # one source, many of our addresses
