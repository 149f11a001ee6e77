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

from ..words import GAP_WORDS, SPARES_PROBES, Verdict
from . import runtime

# A server that was a trigger candidate stays a suspect until this many clean probes of it (whole
# windows, untouched, reachable) were sent after its last candidacy.
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
        """Record the members of one DNS answer that are new to this pool (first and last seen now);
        returns how many were new. Members already known are not written: their later sightings
        go in with the daemon's hourly write (mark_pool_seen), not one write to the card per answer
        (a pool's answers rotate: most answers hold a member seen before)."""
        now = time.time() if now is None else now
        with self.db:
            before = self.db.execute("SELECT count(*) FROM pool_members WHERE pool=?", (pool,)).fetchone()[0]
            self.db.executemany(
                "INSERT INTO pool_members(pool, address, first_seen, last_seen) VALUES (?,?,?,?) "
                "ON CONFLICT(pool, address) DO NOTHING", [(pool, address, now, now) for address in addresses])
            after = self.db.execute("SELECT count(*) FROM pool_members WHERE pool=?", (pool,)).fetchone()[0]
        return after - before

    def mark_pool_seen(self, seen: dict[tuple[str, str], float]) -> None:
        """Bring last_seen forward: {(pool, address): when it was last in an answer}."""
        with self.db:
            self._mark_pool_seen(seen)

    def _mark_pool_seen(self, seen: dict[tuple[str, str], float]) -> None:
        self.db.executemany("UPDATE pool_members SET last_seen=? WHERE pool=? AND address=? AND last_seen < ?",
                            [(at, pool, address, at) for (pool, address), at in sorted(seen.items())])

    def known_servers(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT DISTINCT address FROM pool_members ORDER BY address")]

    # -- the probe ledger -----------------------------------------------------------------
    def plan_probe(self, address: str, server: str, kind: str, port: int, expires: float,
                   planned: float | None = None, *, reach: str | None = None, reach_note: str | None = None,
                   pinholes=()) -> int:
        """One probe's ledger row (plan_probes); returns its id."""
        planned = time.time() if planned is None else planned
        [probe_id] = self.plan_probes([{"address": address, "server": server, "kind": kind, "port": port,
                                        "planned": planned, "expires": expires, "reach": reach,
                                        "reach_note": reach_note, "pinholes": pinholes}])
        return probe_id

    def plan_probes(self, probes: list[dict], *, pinhole_news: dict | None = None) -> list[int]:
        """A round's ledger rows, committed before its packets leave, in one transaction (one write
        to the card) with how each address can be reached (see the probes table) and what the prober
        gathered of older pinholes (`pinhole_news`, as update_pinholes takes it). Each probe: address,
        server, kind, port, planned, expires, reach, reach_note, pinholes [(proto, port, uid, opened,
        held_until, error)], granted or refused. Returns their ids, in order."""
        ids = []
        with self.db:
            for probe in probes:
                cursor = self.db.execute(
                    "INSERT INTO probes(address, server, kind, port, planned, expires, reach, reach_note) "
                    "VALUES (?,?,?,?,?,?,?,?)",
                    tuple(probe.get(column) for column in
                          ("address", "server", "kind", "port", "planned", "expires", "reach", "reach_note")))
                self.db.executemany(
                    "INSERT INTO pinholes(probe_id, proto, port, uid, opened, held_until, error) "
                    "VALUES (?,?,?,?,?,?,?)", [(cursor.lastrowid, *pinhole) for pinhole in probe.get("pinholes", ())])
                ids.append(cursor.lastrowid)
            if pinhole_news:
                self._update_pinholes(**pinhole_news)
        return ids

    def probe_windows(self) -> list:
        """Every probe sent: (id, address, planned, expires)."""
        return self.db.execute("SELECT id, address, planned, expires FROM probes WHERE sent_at IS NOT NULL "
                               "ORDER BY id").fetchall()

    def watched_probes(self, now: float) -> list:
        """Probes sent whose window is still open: (id, address, planned, expires)."""
        return self.db.execute("SELECT id, address, planned, expires FROM probes WHERE sent_at IS NOT NULL "
                               "AND expires > ? ORDER BY id", (now,)).fetchall()

    # -- pinholes ------------------------------------------------------------------------------
    def update_pinholes(self, *, ends=(), closes=(), lost=()) -> None:
        """What the prober gathered of its pinholes, in one transaction: lease ends [(probe id, proto,
        port, held_until)]; pinholes given back at their window's end [(probe id, proto, port,
        held_until, at)]; pinholes the router no longer holds [(probe id, proto, port, at, router's
        word)] (the window was not open throughout)."""
        with self.db:
            self._update_pinholes(ends=ends, closes=closes, lost=lost)

    def _update_pinholes(self, *, ends=(), closes=(), lost=()) -> None:
        # A lease end only moves forward (a late write must not undo a later one).
        self.db.executemany("UPDATE pinholes SET held_until=? WHERE probe_id=? AND proto=? AND port=? "
                            "AND (held_until IS NULL OR held_until < ?)",
                            [(until, probe_id, proto, port, until) for probe_id, proto, port, until in ends])
        self.db.executemany("UPDATE pinholes SET held_until=max(coalesce(held_until, 0), ?), closed=?, "
                            "uid=NULL WHERE probe_id=? AND proto=? AND port=?",
                            [(until, at, probe_id, proto, port) for probe_id, proto, port, until, at in closes])
        self.db.executemany("UPDATE pinholes SET lapsed=coalesce(lapsed, ?), uid=NULL, error=? "
                            "WHERE probe_id=? AND proto=? AND port=?",
                            [(at, error, probe_id, proto, port) for probe_id, proto, port, at, error in lost])

    def held_pinholes(self) -> list:
        """Pinholes granted and not closed: (probe id, address, expires, proto, port, uid, held_until)."""
        return self.db.execute(
            "SELECT h.probe_id, p.address, p.expires, h.proto, h.port, h.uid, h.held_until FROM pinholes h "
            "JOIN probes p ON p.id = h.probe_id WHERE h.uid IS NOT NULL AND h.closed IS NULL "
            "ORDER BY h.held_until").fetchall()

    def record_probe(self, probe_id: int, *, sent_at: float | None, sport: int | None = None,
                     stratum: int | None = None, offset: float | None = None, delay: float | None = None,
                     error: str | None = None) -> None:
        self.record_probes([{"id": probe_id, "sent_at": sent_at, "sport": sport, "stratum": stratum,
                             "offset": offset, "delay": delay, "error": error}])

    def record_probes(self, results: list[dict]) -> None:
        """What became of a round's probes, in one transaction: each {id, sent_at (None: never left),
        sport, stratum, offset, delay, error}."""
        with self.db:
            self.db.executemany("UPDATE probes SET sent_at=?, sport=?, stratum=?, offset=?, delay=?, error=? "
                                "WHERE id=?", [tuple(result.get(column) for column in
                                                     ("sent_at", "sport", "stratum", "offset", "delay", "error",
                                                      "id")) for result in results])

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

    def set_status(self, values: dict, now: float | None = None, contacts: dict[tuple, list] | None = None,
                   pool_seen: dict[tuple[str, str], float] | None = None) -> None:
        """The status's keys given; with `contacts` (add_contacts' shape) and `pool_seen`
        (mark_pool_seen's), those in the same transaction: one commit to the card a quiet hour."""
        now = time.time() if now is None else now
        with self.db:
            if contacts:
                self._insert_contacts(contacts)
            if pool_seen:
                self._mark_pool_seen(pool_seen)
            self.db.executemany("INSERT OR REPLACE INTO status(key, value, updated) VALUES (?,?,?)",
                                [(key, json.dumps(value), now) for key, value in values.items()])

    def status(self) -> dict:
        """The daemon's status: what the store holds, with its live status (RAM) laid over it."""
        stored = {key: json.loads(value) for key, value in self.db.execute("SELECT key, value FROM status")}
        live = runtime.read(self.path) if getattr(self, "path", None) else {}
        return {**stored, **live}

    # -- verdicts -------------------------------------------------------------------------
    def probe_outcomes(self, now: float | None = None) -> list[dict]:
        """Every probe that left, with what came of it: `touched` (first evidence and its lag),
        else `watching` (window open), else `clean` (the whole window passed untouched while
        packets could reach the address and the capture missed nothing) or `unverified` (it passed,
        but nothing shows packets could reach the address: no pinhole held throughout, a closed
        router; or the capture was not whole during it: a gap, such as the daemon down)."""
        now = time.time() if now is None else now
        rows = self.db.execute(
            "SELECT p.id, p.server, p.kind, p.address, p.sent_at, p.expires, p.reach, p.reach_note, "
            "(SELECT min(first_ts) FROM touches t WHERE t.probe_id = p.id) AS first_touch, "
            "(SELECT min(start) FROM scans s WHERE s.probe_id = p.id) AS first_scan, "
            "(SELECT group_concat(h.proto || '/' || h.port, ' ') FROM pinholes h WHERE h.probe_id = p.id "
            "   AND h.lapsed IS NULL AND h.opened <= p.sent_at + ? AND h.held_until >= p.expires - ?) AS held, "
            "(SELECT group_concat(DISTINCT h.error) FROM pinholes h WHERE h.probe_id = p.id) AS pinhole_errors, "
            "(SELECT json_array(g.reason, g.start, g.end) FROM gaps g WHERE g.start <= p.expires "
            f"   AND g.end >= p.sent_at AND g.reason NOT IN ({','.join('?' * len(SPARES_PROBES))}) "
            "   ORDER BY g.start LIMIT 1) AS gap "
            "FROM probes p WHERE p.sent_at IS NOT NULL ORDER BY p.sent_at",
            (PINHOLE_SLACK, PINHOLE_SLACK, *SPARES_PROBES))
        outcomes = []
        for row in rows:
            outcome = dict(row)
            evidence = [t for t in (row["first_touch"], row["first_scan"]) if t is not None]
            outcome["open_to"] = row["held"].split() if row["held"] else []
            if evidence:
                outcome["state"] = "touched"
                outcome["lag"] = min(evidence) - row["sent_at"]
            elif now < row["expires"]:
                outcome["state"] = "watching"
            elif not (row["reach"] == "declared" or (row["reach"] == "pinholes" and outcome["open_to"])):
                outcome["state"] = "unverified"
                outcome["why"] = "scans could not reach this appliance: " + unreachable_reason(row)
            elif row["gap"] is not None:
                outcome["state"] = "unverified"
                outcome["why"] = missed_reason(*json.loads(row["gap"]))
            else:
                outcome["state"] = "clean"
            outcomes.append(outcome)
        return outcomes

    def server_verdicts(self, now: float | None = None) -> list[dict]:
        """Every server known from the pools or probed, with its verdict and the evidence for it:
        harvester (a probe address of it was touched: certain), suspect (a trigger candidate of a
        scan of an ordinary address, not cleared by clean probes since), clean (a whole window with
        no touch while packets could reach the probe address), watching (a window still open),
        unverified (windows passed, but nothing could reach the probe addresses), unprobed."""
        now = time.time() if now is None else now
        db = self.db
        servers: dict[str, dict] = {}

        def entry(address: str) -> dict:
            return servers.setdefault(address, {
                "server": address, "pools": [], "first_seen": None, "last_seen": None, "probes": 0,
                "probes_by_kind": {}, "probe_scans": 0, "touched_probes": 0, "touches": 0, "min_lag": None,
                "watching": 0, "watch_ends": None, "clean_probes": 0, "clean_open_to": [],
                "unverified_probes": 0, "unverified_why": None, "candidate_scans": 0, "last_candidacy": None,
                "clean_since_candidacy": 0, "verdict": Verdict.UNPROBED})

        for pool, address, first, last in db.execute(
                "SELECT pool, address, first_seen, last_seen FROM pool_members ORDER BY pool"):
            e = entry(address)
            e["pools"].append(pool)
            e["first_seen"] = first if e["first_seen"] is None else min(e["first_seen"], first)
            e["last_seen"] = last if e["last_seen"] is None else max(e["last_seen"], last)
        outcomes = self.probe_outcomes(now)
        clean_sent: dict[str, list[float]] = {}
        for o in outcomes:
            e = entry(o["server"])
            e["probes"] += 1
            e["probes_by_kind"][o["kind"]] = e["probes_by_kind"].get(o["kind"], 0) + 1
            if o["state"] == "touched":
                e["touched_probes"] += 1
                e["min_lag"] = o["lag"] if e["min_lag"] is None else min(e["min_lag"], o["lag"])
            elif o["state"] == "watching":
                e["watching"] += 1
                e["watch_ends"] = o["expires"] if e["watch_ends"] is None else min(e["watch_ends"], o["expires"])
            elif o["state"] == "clean":
                e["clean_probes"] += 1
                e["clean_open_to"] = o["open_to"] or ["everything (router set open)"]
                clean_sent.setdefault(o["server"], []).append(o["sent_at"])
            else:
                e["unverified_probes"] += 1
                e["unverified_why"] = o["why"]
        for server, scans, touches in db.execute(
                "SELECT p.server, (SELECT count(*) FROM scans s WHERE s.probe_id = p.id), "
                "(SELECT coalesce(sum(packets), 0) FROM touches t WHERE t.probe_id = p.id) FROM probes p "
                "WHERE p.sent_at IS NOT NULL"):
            e = servers[server]
            e["probe_scans"] += scans
            e["touches"] += touches
        # From the suspects table that refresh() keeps (one row per endpoint, a few hundred), not
        # from the candidates themselves (one row per trigger packet: 150,000 on a big store).
        for server, scans, last in db.execute("SELECT dst, sum(scans), max(last_ts) FROM suspects GROUP BY dst"):
            if server in servers:  # only NTP servers get a verdict, not every endpoint ever contacted
                e = servers[server]
                e["candidate_scans"], e["last_candidacy"] = scans, last
                e["clean_since_candidacy"] = sum(1 for sent in clean_sent.get(server, ()) if sent > last)
        for e in servers.values():
            if e["touched_probes"]:
                e["verdict"] = Verdict.HARVESTER
                # A harvester: its probes decide; how many other scans it preceded decides nothing.
                e["candidate_scans"] = None
            elif e["candidate_scans"] and e["clean_since_candidacy"] < CLEARING_PROBES:
                e["verdict"] = Verdict.SUSPECT
            elif e["clean_probes"]:
                e["verdict"] = Verdict.CLEAN
            elif e["watching"]:
                e["verdict"] = Verdict.WATCHING
            elif e["unverified_probes"]:
                e["verdict"] = Verdict.UNVERIFIED
        order = list(Verdict)  # most serious first
        return sorted(servers.values(), key=lambda e: (order.index(e["verdict"]), e["server"]))


# A pinhole counts as open throughout a window when it was granted by the probe's sending and
# held to the window's end, give or take this many seconds (the grant comes just before the
# probe; the last lease runs to the window's end).
PINHOLE_SLACK = 120.0


def missed_reason(reason: str, start: float, end: float) -> str:
    """Why a window that packets could reach still proves nothing: the capture was not whole."""
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(start))
    span = f"{end - start:.0f} s from {when} UTC" if end > start else f"at {when} UTC"
    return f"the capture missed packets during the window ({GAP_WORDS.get(reason, reason)}, {span})"


def unreachable_reason(probe) -> str:
    """Why nothing shows unsolicited packets could reach a probe address (a sentence for a person)."""
    if probe["reach"] == "none":
        return probe["reach_note"] or "your router lets nothing unsolicited in"
    if probe["reach"] == "pinholes":
        if probe["pinhole_errors"]:
            return f"the router's pinholes were not held throughout the window ({probe['pinhole_errors']})"
        return "the router's pinholes were not held throughout the window"
    return "the appliance did not record how this probe address could be reached"
