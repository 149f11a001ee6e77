"""What only the live appliance writes to the store: pool members, the probe ledger, capture gaps,
daemon status, and the verdict per NTP server derived from them.

Mixed into `Store`; every method uses its connection. The ledger row of a probe is committed
before the packet leaves, so a crash between the two leaves a planned probe, never a packet
nobody knows about.
"""
from __future__ import annotations

import json
import sqlite3
import time

from ..words import Verdict

HARVESTER, SUSPECT, CLEAN, UNPROBED = Verdict.HARVESTER, Verdict.SUSPECT, Verdict.CLEAN, Verdict.UNPROBED
# A server that was a trigger candidate stays a suspect until this many probes of it, sent after
# its last candidacy, went by without a scan.
CLEARING_PROBES = 3


class LiveRecords:
    db = None  # sqlite3.Connection, set by Store

    # -- scanner names --------------------------------------------------------------------
    def unnamed_scanners(self, limit: int) -> list[str]:
        """Scanner addresses never looked up, newest scans first."""
        return [row[0] for row in self.db.execute(
            "SELECT scanner FROM scans WHERE scanner NOT IN (SELECT address FROM scanner_names) "
            "GROUP BY scanner ORDER BY max(start) DESC LIMIT ?", (limit,))]

    def set_scanner_names(self, names: dict[str, str | None], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO scanner_names(address, name, checked) VALUES (?,?,?)",
                                [(address, name, now) for address, name in names.items()])

    def scanner_names(self) -> dict[str, str]:
        try:
            return dict(self.db.execute("SELECT address, name FROM scanner_names WHERE name IS NOT NULL"))
        except sqlite3.OperationalError:  # read-only view of a store from before the names table
            return {}

    # -- pools ----------------------------------------------------------------------------
    def add_pool_members(self, pool: str, addresses: list[str], now: float | None = None) -> int:
        """Record one DNS answer; returns how many addresses were new to this pool."""
        now = time.time() if now is None else now
        with self.db:
            before = self.db.execute("SELECT count(*) FROM pool_members WHERE pool=?", (pool,)).fetchone()[0]
            self.db.executemany(
                "INSERT INTO pool_members(pool, address, first_seen, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT(pool, address) DO UPDATE SET last_seen=max(last_seen, excluded.last_seen)",
                [(pool, address, now, now) for address in addresses])
            after = self.db.execute("SELECT count(*) FROM pool_members WHERE pool=?", (pool,)).fetchone()[0]
        return after - before

    def known_servers(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT address FROM pool_members ORDER BY address")]

    # -- the probe ledger -----------------------------------------------------------------
    def plan_probe(self, address: str, server: str, kind: str, port: int, expires: float,
                   planned: float | None = None) -> int:
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO probes(address, server, kind, port, planned, expires) VALUES (?,?,?,?,?,?)",
                (address, server, kind, port, time.time() if planned is None else planned, expires))
        return cursor.lastrowid

    def record_probe(self, probe_id: int, *, sent_at: float | None, sport: int | None = None,
                     stratum: int | None = None, offset: float | None = None, delay: float | None = None,
                     error: str | None = None) -> None:
        with self.db:
            self.db.execute("UPDATE probes SET sent_at=?, sport=?, stratum=?, offset=?, delay=?, error=? "
                            "WHERE id=?", (sent_at, sport, stratum, offset, delay, error, probe_id))

    def probes(self, server: str | None = None) -> list:
        if server is None:
            return self.db.execute("SELECT * FROM probes ORDER BY planned, id").fetchall()
        return self.db.execute("SELECT * FROM probes WHERE server=? ORDER BY planned, id", (server,)).fetchall()

    def last_probes(self) -> dict[str, tuple[float, dict[str, int]]]:
        """Per server: time of its last probe and how many probes of each kind it had."""
        result: dict[str, tuple[float, dict[str, int]]] = {}
        for server, kind, count, last in self.db.execute(
                "SELECT server, kind, count(*), max(planned) FROM probes GROUP BY server, kind"):
            previous, kinds = result.get(server, (0.0, {}))
            kinds[kind] = count
            result[server] = (max(previous, last), kinds)
        return result

    # -- gaps and status ------------------------------------------------------------------
    def add_gap(self, start: float, end: float, reason: str, lost: int | None = None) -> None:
        with self.db:
            self.db.execute("INSERT INTO gaps(start, end, reason, lost) VALUES (?,?,?,?) "
                            "ON CONFLICT(start, reason) DO UPDATE SET end=max(end, excluded.end), "
                            "lost=CASE WHEN lost IS NULL OR excluded.lost IS NULL THEN NULL "
                            "ELSE lost + excluded.lost END", (start, end, reason, lost))

    def gaps(self) -> list:
        return self.db.execute("SELECT * FROM gaps ORDER BY start").fetchall()

    def set_status(self, values: dict, now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO status(key, value, updated) VALUES (?,?,?)",
                                [(key, json.dumps(value), now) for key, value in values.items()])

    def status(self) -> dict:
        return {key: json.loads(value) for key, value in self.db.execute("SELECT key, value FROM status")}

    # -- verdicts -------------------------------------------------------------------------
    def server_verdicts(self) -> list[dict]:
        """Every server known from the pools or probed, with its verdict and the evidence for it:
        harvester (a probe of it was followed by a scan of the probe address), suspect (a trigger
        candidate of a scan, not yet cleared by later probes), clean (probed, never followed by a
        scan), unprobed."""
        db = self.db
        servers: dict[str, dict] = {}

        def entry(address: str) -> dict:
            return servers.setdefault(address, {
                "server": address, "pools": [], "first_seen": None, "last_seen": None, "probes": 0,
                "probes_by_kind": {}, "probe_scans": 0, "min_lag": None, "candidate_scans": 0,
                "last_candidacy": None, "probes_since_candidacy": 0, "verdict": UNPROBED})

        for pool, address, first, last in db.execute(
                "SELECT pool, address, first_seen, last_seen FROM pool_members ORDER BY pool"):
            e = entry(address)
            e["pools"].append(pool)
            e["first_seen"] = first if e["first_seen"] is None else min(e["first_seen"], first)
            e["last_seen"] = last if e["last_seen"] is None else max(e["last_seen"], last)
        for server, kind, count in db.execute(
                "SELECT server, kind, count(*) FROM probes WHERE sent_at IS NOT NULL GROUP BY server, kind"):
            e = entry(server)
            e["probes_by_kind"][kind] = count
            e["probes"] += count
        for server, scans, min_lag in db.execute(
                "SELECT p.server, count(s.id), min(s.start - p.sent_at) FROM scans s JOIN probes p "
                "ON s.probe_id = p.id GROUP BY p.server"):
            e = entry(server)
            e["probe_scans"], e["min_lag"] = scans, min_lag
        # From the suspects table that refresh() keeps (one row per endpoint, a few hundred), not
        # from the candidates themselves (one row per trigger packet: 150,000 on a big store).
        # It counts probe scans too; those belong to harvesters, whose verdict they already decide.
        # Only the probe scans of a harvester are counted (candidate_scans None); a scan preceded by
        # contacts with two ports of one server counts twice (rare: only the count shown, not a verdict).
        for server, scans, last in db.execute("SELECT dst, sum(scans), max(last_ts) FROM suspects GROUP BY dst"):
            if server in servers:  # only NTP servers get a verdict, not every endpoint ever contacted
                e = servers[server]
                e["candidate_scans"], e["last_candidacy"] = scans, last
                if e["probe_scans"]:
                    # A harvester: its probe scans are counted apart; how many other scans it preceded
                    # would cost a walk through all its trigger packets, and decides nothing.
                    e["candidate_scans"] = None
                e["probes_since_candidacy"] = db.execute(
                    "SELECT count(*) FROM probes WHERE server=? AND sent_at > ?", (server, last)).fetchone()[0]
        for e in servers.values():
            if e["probe_scans"]:
                e["verdict"] = HARVESTER
            elif e["candidate_scans"] and e["probes_since_candidacy"] < CLEARING_PROBES:
                e["verdict"] = SUSPECT
            elif e["probes"]:
                e["verdict"] = CLEAN
        order = list(Verdict)  # most serious first
        return sorted(servers.values(), key=lambda e: (order.index(e["verdict"]), e["server"]))
