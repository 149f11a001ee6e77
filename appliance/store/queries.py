"""What the page and the daemon read from the store: every query they need, here, beside the schema.

Mixed into `Store`; every method reads through its connection and returns rows or plain values.
Nothing here writes. The page turns these rows into its documents (appliance/web/data.py).
"""
from __future__ import annotations

import json
import sqlite3

from ..words import ScanKind

# The Scans page's filters: query-string name -> column.
# What each filter of the Scans page compares with its value ("server": the scans of its probe addresses).
SCAN_FILTERS = {"scanner": "scanner = ?", "target": "target = ?", "family": "scanner_net = ?",
                "attribution": "attribution = ?", "kind": "kind = ?",
                "server": "probe_id IN (SELECT id FROM probes WHERE server = ?)"}


class Queries:
    db: sqlite3.Connection  # set by Store

    def _one(self, sql: str, args=()):
        return self.db.execute(sql, args).fetchone()[0]

    # -- the store itself --------------------------------------------------------------------
    def schema_version(self) -> int:
        """The schema this store was written with (0: not a HarvestWatch store, or not set up yet)."""
        return self._one("PRAGMA user_version")

    def data_version(self) -> int:
        """Changes whenever another connection commits (a cache of what was read can tell it is stale)."""
        return self._one("PRAGMA data_version")

    # -- totals ------------------------------------------------------------------------------
    def count_scans(self) -> int:
        return self._one("SELECT count(*) FROM scans")

    def scan_numbers(self) -> dict[str, int]:
        """Scans, sweeps, scanner addresses and families, and probes sent."""
        return {
            "scans": self._one("SELECT count(*) FROM scans WHERE kind=?", (ScanKind.PORTSCAN,)),
            "sweeps": self._one("SELECT count(*) FROM scans WHERE kind=?", (ScanKind.SWEEP,)),
            "scanners": self._one("SELECT count(DISTINCT scanner) FROM scans"),
            "scanner_families": self._one("SELECT count(DISTINCT scanner_net) FROM scans"),
            "probes": self._one("SELECT count(*) FROM probes WHERE sent_at IS NOT NULL"),
        }

    def skipped_lines(self) -> dict[str, int]:
        """Log lines `analyze` skipped, by reason, over every import."""
        skipped: dict[str, int] = {}
        for (text,) in self.db.execute("SELECT skipped FROM imports WHERE skipped IS NOT NULL"):
            for reason, count in json.loads(text).items():
                skipped[reason] = skipped.get(reason, 0) + count
        return skipped

    def count_gaps(self) -> int:
        return self._one("SELECT count(*) FROM gaps")

    def latest_gaps(self, limit: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM gaps ORDER BY start DESC LIMIT ?", (limit,)).fetchall()

    # -- time ----------------------------------------------------------------------------------
    def recent_ntp_offsets(self, limit: int) -> list[float]:
        """The clock offsets (s) the latest answered NTP probes measured, newest first."""
        return [row[0] for row in self.db.execute(
            "SELECT offset FROM probes WHERE offset IS NOT NULL ORDER BY sent_at DESC LIMIT ?", (limit,))]

    def newest_scan_start(self) -> float | None:
        return self._one("SELECT max(start) FROM scans")

    def hourly_counts(self, start: float, hours: int) -> tuple[list[int], list[int]]:
        """Scans and probes sent per hour, for `hours` hours from `start`."""
        end = start + hours * 3600
        scans, probes = [0] * hours, [0] * hours
        for (hour, n) in self.db.execute(
                "SELECT CAST((start - ?) / 3600 AS INTEGER), count(*) FROM scans WHERE start >= ? AND start < ? "
                "GROUP BY 1", (start, start, end)):
            scans[hour] = n
        for (hour, n) in self.db.execute(
                "SELECT CAST((sent_at - ?) / 3600 AS INTEGER), count(*) FROM probes WHERE sent_at >= ? AND sent_at < ? "
                "GROUP BY 1", (start, start, end)):
            probes[hour] = n
        return scans, probes

    # -- scans of probe addresses ---------------------------------------------------------------
    def latest_probe_scan(self) -> sqlite3.Row | None:
        """The newest scan of a probe address, with its probe (address, server, kind, sent_at)."""
        return self.db.execute(
            "SELECT s.id, s.scanner, s.start, s.port_count, p.server, p.address, p.kind, p.sent_at FROM scans s "
            "JOIN probes p ON p.id = s.probe_id ORDER BY s.start DESC LIMIT 1").fetchone()

    def probe_scan_lags(self) -> dict[str, list[float]]:
        """Per server: the seconds from each probe to each scan of its address, shortest first."""
        lags: dict[str, list[float]] = {}
        for server, lag in self.db.execute(
                "SELECT p.server, s.start - p.sent_at FROM scans s JOIN probes p ON p.id = s.probe_id ORDER BY 2"):
            lags.setdefault(server, []).append(lag)
        return lags

    def touches_of(self, probe_id: int) -> list[sqlite3.Row]:
        """A probe address's touches, by source family then source, each source's ports in order."""
        return self.db.execute("SELECT * FROM touches WHERE probe_id=? ORDER BY src_net, src, first_ts, proto, dport",
                               (probe_id,)).fetchall()

    def pinholes_of(self, probe_id: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT * FROM pinholes WHERE probe_id=? ORDER BY proto, port", (probe_id,)).fetchall()

    def scans_of_probe(self, probe_id: int) -> list[sqlite3.Row]:
        return self.db.execute("SELECT id, scanner, start, port_count FROM scans WHERE probe_id=? ORDER BY start",
                               (probe_id,)).fetchall()

    def touch_evidence(self) -> list[sqlite3.Row]:
        """One row per touch (probe address, source, protocol, port), with its probe: what an NTP
        pool operator needs to act on a report, by server."""
        return self.db.execute(
            "SELECT p.server, p.address, p.kind, p.port AS probe_port, p.sent_at, p.sport, t.src, t.src_net, "
            "t.proto, t.dport, t.first_ts, t.last_ts, t.packets FROM touches t JOIN probes p ON p.id = t.probe_id "
            "ORDER BY p.server, t.first_ts").fetchall()

    def probe_scan_evidence(self) -> list[sqlite3.Row]:
        """One row per scan of a probe address, with the probe: what a pool operator needs, by server."""
        return self.db.execute(
            "SELECT p.address, p.server, p.kind, p.port, p.sent_at, p.sport, s.id AS scan_id, s.scanner, "
            "s.scanner_net, s.start, s.end, s.port_count, s.ports FROM scans s JOIN probes p ON p.id = s.probe_id "
            "ORDER BY p.server, s.start").fetchall()

    # -- the Scans page ---------------------------------------------------------------------------
    def scan_page(self, filters: dict, limit: int, offset: int) -> tuple[int, list[sqlite3.Row]]:
        """(matching scans, one page of them newest first) for the filters in SCAN_FILTERS. The
        rows leave out the port lists and targets (most of a row): a list shows counts only."""
        where = [SCAN_FILTERS[key] for key in filters]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        args = list(filters.values())
        total = self._one(f"SELECT count(*) FROM scans {clause}", args)
        rows = self.db.execute(f"SELECT id, kind, scanner, scanner_net, target, start, \"end\", port_count, packets, "
                               f"protocols, attribution, probe_id FROM scans {clause} "
                               f"ORDER BY start DESC, id DESC LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
        return total, rows

    def top_candidates(self, scan_ids: list[int]) -> dict[int, sqlite3.Row]:
        """Each scan's first-ranked candidate (endpoint and lag), in one query per 500 scans."""
        tops: dict[int, sqlite3.Row] = {}
        for offset in range(0, len(scan_ids), 500):
            chunk = scan_ids[offset:offset + 500]
            for candidate in self.db.execute(
                    f"SELECT scan_id, dst, dport, proto, lag FROM candidates "
                    f"WHERE scan_id IN ({','.join('?' * len(chunk))}) ORDER BY scan_id, rank, ts", chunk):
                tops.setdefault(candidate["scan_id"], candidate)
        return tops

    # -- scanners and probes ------------------------------------------------------------------------
    def scanners_fingerprint(self) -> tuple:
        """What the Scanners page is made of, in a few fast reads: scans are written once (later
        updates set only their attribution and probe), so their lowest and highest ids and the
        count of probe-address scans change whenever the page would; then the touches and names."""
        names = self.db.execute("SELECT count(*), max(checked) FROM scanner_names").fetchone() \
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='scanner_names'").fetchone() else None
        return (tuple(self.db.execute("SELECT min(id), max(id) FROM scans").fetchone()),
                self._one("SELECT count(*) FROM scans WHERE probe_id IS NOT NULL"),
                tuple(self.db.execute("SELECT count(*), max(last_ts), sum(packets) FROM touches").fetchone()),
                tuple(names) if names else None)

    def scanner_page(self, limit: int, offset: int, per_family: int) -> tuple[int, list[sqlite3.Row]]:
        """(families in all, one page of them): the busiest families first, each row one scanner
        address (at most `per_family` of a family, by address) with its family's totals beside it."""
        total = self._one("SELECT count(DISTINCT scanner_net) FROM scans")
        rows = self.db.execute(
            "WITH family AS (SELECT scanner_net, count(*) AS f_all, sum(kind=:sweep) AS f_sweeps, "
            "  sum(probe_id IS NOT NULL) AS f_probe_scans, min(start) AS f_first, max(end) AS f_last, "
            "  count(DISTINCT scanner) AS f_members FROM scans GROUP BY scanner_net "
            "  ORDER BY f_all DESC, scanner_net LIMIT :limit OFFSET :offset), "
            "member AS (SELECT s.scanner_net, s.scanner, count(*) AS scans, sum(s.kind=:sweep) AS sweeps, "
            "  min(s.start) AS first, max(s.end) AS last, "
            "  row_number() OVER (PARTITION BY s.scanner_net ORDER BY s.scanner) AS position "
            "  FROM scans s JOIN family USING (scanner_net) GROUP BY s.scanner_net, s.scanner) "
            "SELECT family.*, member.scanner, member.scans, member.sweeps, member.first, member.last "
            "FROM family JOIN member USING (scanner_net) WHERE member.position <= :per_family "
            "ORDER BY family.f_all DESC, family.scanner_net, member.position",
            {"sweep": ScanKind.SWEEP, "limit": limit, "offset": offset, "per_family": per_family}).fetchall()
        return total, rows

    def probe(self, probe_id: int) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM probes WHERE id=?", (probe_id,)).fetchone()

    def latest_probes(self, limit: int, server: str | None = None) -> list[sqlite3.Row]:
        """The newest probes (of one server, if named), each with how many scans and touch packets
        its address drew."""
        where, args = ("WHERE p.server = ?", (server, limit)) if server else ("", (limit,))
        return self.db.execute("SELECT p.*, (SELECT count(*) FROM scans s WHERE s.probe_id = p.id) AS scans, "
                               "(SELECT coalesce(sum(packets), 0) FROM touches t WHERE t.probe_id = p.id) AS touches "
                               f"FROM probes p {where} ORDER BY p.planned DESC LIMIT ?", args).fetchall()

    def harvester_summaries(self) -> list[sqlite3.Row]:
        """Per server whose probe addresses were touched: when first and last, how many of its probe
        addresses, sources, families and packets, its first touched probe, and its scans of probe
        addresses. The Overview's harvester cards, the most recent first."""
        return self.db.execute(
            "WITH touched AS (SELECT p.server, p.id AS probe_id, p.sent_at, min(t.first_ts) AS first_ts, "
            "  max(t.last_ts) AS last_ts, sum(t.packets) AS packets FROM touches t JOIN probes p ON p.id = t.probe_id "
            "  GROUP BY p.id) "
            "SELECT touched.server, min(first_ts) AS first_touch, max(last_ts) AS last_touch, "
            "  count(*) AS probes_touched, sum(packets) AS packets, min(first_ts - sent_at) AS min_lag, "
            "  (SELECT probe_id FROM touched t2 WHERE t2.server = touched.server ORDER BY first_ts LIMIT 1) "
            "  AS first_probe, "
            "  (SELECT count(DISTINCT t.src) FROM touches t JOIN probes p ON p.id = t.probe_id "
            "   WHERE p.server = touched.server) AS sources, "
            "  (SELECT group_concat(src_net, ' ') FROM (SELECT DISTINCT t.src_net FROM touches t JOIN probes p "
            "   ON p.id = t.probe_id WHERE p.server = touched.server ORDER BY t.src_net)) AS families, "
            "  (SELECT count(*) FROM scans s JOIN probes p ON p.id = s.probe_id WHERE p.server = touched.server) "
            "  AS scans "
            "FROM touched GROUP BY touched.server ORDER BY last_touch DESC").fetchall()

    def servers_fed(self, families: list[str]) -> dict[str, list[str]]:
        """For each scanner family named, the servers whose probe addresses it touched: the harvesters
        that fed it."""
        if not families:
            return {}
        fed: dict[str, list[str]] = {}
        marks = ",".join("?" * len(families))
        for row in self.db.execute(f"SELECT DISTINCT t.src_net, p.server FROM touches t JOIN probes p "
                                   f"ON p.id = t.probe_id WHERE t.src_net IN ({marks}) ORDER BY t.src_net, p.server",
                                   families):
            fed.setdefault(row[0], []).append(row[1])
        return fed

    def next_window_end(self, now: float) -> float | None:
        """The end of the next probe's observation window after `now`."""
        return self._one("SELECT min(expires) FROM probes WHERE sent_at IS NOT NULL AND expires > ?", (now,))

    def probe_counts(self, now: float) -> tuple[int, int]:
        """(probes ever planned, probe addresses still in their observation window)."""
        return (self._one("SELECT count(*) FROM probes"),
                self._one("SELECT count(*) FROM probes WHERE sent_at IS NOT NULL AND expires > ?", (now,)))
