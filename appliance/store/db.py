"""The evidence store: SQLite in WAL mode, shared by `analyze`, the daemon and the status page.

Writers add scans (with their trigger candidates) and contacts in batched transactions; every
insert is idempotent, so importing the same log twice stores nothing twice and a writer killed
mid-batch leaves the last committed state intact. `refresh()` recomputes what is derived from
the evidence: each scan's attribution (certain / candidate / unattributed), candidate ranks and
the suspects table. The schema moves forward by `PRAGMA user_version` migrations.
"""
from __future__ import annotations

import json
import sqlite3
import statistics
import time
from itertools import groupby
from operator import itemgetter
from typing import Iterator

from ..detect.scans import PORTSCAN, Scan, network_of
from ..settings import default
from ..words import Attribution
from .live import LiveRecords
from .queries import Queries
from .retention import Retention
from .rows import ports_text, targets_text


class StoreError(RuntimeError):
    """The store cannot be used as it is (a newer schema, ...): said plainly, nothing changed."""


CERTAIN, CANDIDATE, UNATTRIBUTED = Attribution.CERTAIN, Attribution.CANDIDATE, Attribution.UNATTRIBUTED

MIGRATIONS = [
    # 1: the correlator core
    """
    CREATE TABLE imports (
        id INTEGER PRIMARY KEY,
        started REAL NOT NULL,
        finished REAL,
        sources TEXT NOT NULL,          -- JSON list of file names
        parameters TEXT NOT NULL,       -- JSON: min_ports, window, lookback, ...
        lines INTEGER, records INTEGER,
        skipped TEXT                    -- JSON {reason: count}
    );
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,             -- portscan | sweep
        scanner TEXT NOT NULL,
        scanner_net TEXT NOT NULL,      -- /64 (IPv6) or /24 (IPv4): the scanner family
        target TEXT NOT NULL,           -- '*' for sweeps
        start REAL NOT NULL,
        end REAL NOT NULL,
        packets INTEGER NOT NULL,
        port_count INTEGER NOT NULL,
        ports TEXT NOT NULL,            -- JSON [[proto, port], ...]
        protocols TEXT NOT NULL,        -- JSON {proto: distinct ports}
        targets TEXT NOT NULL,          -- JSON list (sweeps)
        attribution TEXT NOT NULL DEFAULT 'unattributed',
        import_id INTEGER REFERENCES imports(id),
        UNIQUE (kind, scanner, target, start)
    );
    CREATE INDEX scans_by_target ON scans(target, start);
    CREATE INDEX scans_by_start ON scans(start);
    CREATE TABLE candidates (
        scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE,
        ts REAL NOT NULL,
        src TEXT NOT NULL,
        sport INTEGER,
        dst TEXT NOT NULL,
        dport INTEGER,
        proto TEXT NOT NULL,
        lag REAL NOT NULL,              -- scan start - ts
        rank INTEGER,                   -- 1 = most likely trigger of this scan
        UNIQUE (scan_id, ts, src, sport, dst, dport, proto)
    );
    CREATE INDEX candidates_by_endpoint ON candidates(proto, dst, dport);
    CREATE TABLE contacts (
        src TEXT NOT NULL, proto TEXT NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL,
        first_ts REAL NOT NULL, last_ts REAL NOT NULL,
        PRIMARY KEY (src, proto, dst, dport)
    ) WITHOUT ROWID;
    CREATE INDEX contacts_by_endpoint ON contacts(proto, dst, dport);
    CREATE TABLE suspects (
        proto TEXT NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL,
        scans INTEGER NOT NULL,         -- scans this endpoint preceded
        certain INTEGER NOT NULL,       -- of which the scanned address contacted nothing else
        score REAL NOT NULL,            -- sum over those scans of 1 / candidate endpoints
        exposures INTEGER NOT NULL,     -- addresses that contacted it (scanned or not)
        min_lag REAL NOT NULL, median_lag REAL NOT NULL,
        first_ts REAL NOT NULL, last_ts REAL NOT NULL,
        PRIMARY KEY (proto, dst, dport)
    ) WITHOUT ROWID;
    """,
    # 2: the live appliance: pool members, the probe ledger, capture gaps, daemon status
    """
    CREATE TABLE pool_members (
        pool TEXT NOT NULL,
        address TEXT NOT NULL,
        first_seen REAL NOT NULL, last_seen REAL NOT NULL,
        PRIMARY KEY (pool, address)
    ) WITHOUT ROWID;
    CREATE INDEX pool_members_by_address ON pool_members(address);
    CREATE TABLE probes (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,   -- the fresh /128: one address, one server, ever
        server TEXT NOT NULL,
        kind TEXT NOT NULL,             -- ntp | udp123 | udp321
        port INTEGER NOT NULL,
        planned REAL NOT NULL,          -- written and committed before the packet leaves
        sent_at REAL,                   -- NULL: the packet never left (see error)
        sport INTEGER,
        expires REAL NOT NULL,          -- end of the observation window (the address's valid_lft)
        stratum INTEGER, offset REAL, delay REAL,
        error TEXT
    );
    CREATE INDEX probes_by_server ON probes(server, planned);
    ALTER TABLE scans ADD COLUMN probe_id INTEGER REFERENCES probes(id);
    CREATE TABLE gaps (
        id INTEGER PRIMARY KEY,
        start REAL NOT NULL, end REAL NOT NULL,
        reason TEXT NOT NULL,           -- daemon-down | daemon-stopped | overrun | seq-gap | flood-limit
        lost INTEGER,                   -- packets known lost; NULL when unknown
        UNIQUE (start, reason)
    );
    CREATE TABLE status (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: scanner names (forward-confirmed reverse DNS; name NULL = checked, none confirmed)
    """
    CREATE TABLE scanner_names (
        address TEXT PRIMARY KEY, name TEXT, checked REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 4: the scans of probe addresses (a few hundred among 100,000 scans), found by index: the probe
    # joins of the verdicts, the Servers lags, the latest harvester and the Probes page's per-probe
    # count no longer read every scan. Partial, so the other scans cost it nothing.
    """
    CREATE INDEX scans_by_probe ON scans(probe_id) WHERE probe_id IS NOT NULL;
    """,
    # 5: touches of probe addresses (any unsolicited packet from the internet: certain evidence,
    # one row per probe, source, protocol and port), and the pinholes the router granted each
    # probe address (what could reach it during its window: a verdict of clean needs it).
    """
    CREATE TABLE touches (
        probe_id INTEGER NOT NULL REFERENCES probes(id),
        src TEXT NOT NULL,
        src_net TEXT NOT NULL,          -- the scanner family (detect.family_prefix)
        proto TEXT NOT NULL,
        dport INTEGER NOT NULL,         -- the ICMP type for ICMP/ICMPv6; -1 where there is none
        first_ts REAL NOT NULL, last_ts REAL NOT NULL,
        packets INTEGER NOT NULL,
        PRIMARY KEY (probe_id, src, proto, dport)
    ) WITHOUT ROWID;
    CREATE INDEX touches_by_src_net ON touches(src_net);
    CREATE TABLE pinholes (
        probe_id INTEGER NOT NULL REFERENCES probes(id),
        proto TEXT NOT NULL,            -- tcp | udp
        port INTEGER NOT NULL,
        uid INTEGER,                    -- the router's id of it; NULL while it is not granted
        opened REAL,                    -- granted at (the latest grant)
        held_until REAL,                -- the lease runs to here (each renewal moves it on)
        lapsed REAL,                    -- first found gone before its window ended: not held throughout
        closed REAL,                    -- given back at the window's end
        error TEXT,                     -- why it was refused or lost
        PRIMARY KEY (probe_id, proto, port)
    ) WITHOUT ROWID;
    -- How unsolicited packets could reach the probe address: 'pinholes' (asked of the router),
    -- 'declared' (the router is set open, says the configuration), 'none' (a closed router, or no
    -- pinhole granted); reach_note says why when it is none.
    ALTER TABLE probes ADD COLUMN reach TEXT;
    ALTER TABLE probes ADD COLUMN reach_note TEXT;
    """,
]

IMPORT_CHECKPOINT_PAGES = 10000  # 40 MB of 4 KiB pages
# Touch rows (source, protocol, port) kept per probe address: a scan of every port from a whole
# /48 is 10,000 rows of evidence already; a flood beyond that is counted, not stored.
MAX_TOUCH_ROWS = 10_000
# Contacts store ports as integers; protocols without ports use this.
NO_PORT = -1
# A scan's candidates as the reports list them: most likely trigger first, then by time (the
# other columns only make the order of same-time packets of one endpoint deterministic).
CANDIDATE_ORDER = "rank, ts, src, sport, dst, dport, proto"
# The stronger suspect first (columns of `suspects`): the higher hit rate (scans an endpoint preceded
# per address that contacted it, smoothed so that one lucky contact is not 100 %), then score.
SUSPICION_ORDER = "(scans + 1.0) / (exposures + 2) DESC, score DESC"
# Suspects as the reports list them: the order of candidate ranks (suspicion, then lag), then the
# endpoint, so that ties come out the same however the rows were found.
SUSPECT_ORDER = f"{SUSPICION_ORDER}, min_lag, proto, dst, dport"


class Store(LiveRecords, Queries, Retention):
    def __init__(self, path: str, *, readonly: bool = False, scratch: bool = False, shared: bool = False):
        """`scratch`: a store thrown away when the process ends (`analyze` without --db). It has
        nothing to keep safe from a power cut, so it writes without journal or syncs. `shared`: a
        read-only connection that threads take turns on (under a lock of the caller's)."""
        self.path = path
        # The prefix length that groups scanners into families (detect.family_prefix), for what is
        # written from here on: the daemon and analyze set it from their settings.
        self.family_prefix: int = default("detect.family_prefix")
        # The most ports of one scan whose list is stored (the live daemon bounds what a flood of
        # all-port scans writes); None: every one (analyze).
        self.max_ports: int | None = None
        if readonly:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0, check_same_thread=not shared)
        else:
            self.db = sqlite3.connect(path, timeout=30.0)
            if scratch:
                self.db.execute("PRAGMA journal_mode=OFF")
                self.db.execute("PRAGMA synchronous=OFF")
            else:
                self.db.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a power cut loses at most the last transactions, never the file.
                self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def write_mark(self) -> tuple[int, int]:
        """Changes since this connection opened: its own commits and (data_version) other connections'.
        Unchanged between two calls: nothing was written to the store in between."""
        return self.db.total_changes, self.db.execute("PRAGMA data_version").fetchone()[0]

    def checkpoint(self) -> bool:
        """Copy the WAL into the store, without waiting for a busy reader or writer (then nothing
        happens); True if all of it is in the store now. RESTART, not TRUNCATE: the WAL file keeps
        its blocks and the next writer starts again at its beginning, so the file system has no
        size or block change to journal; readers ignore a WAL that is all copied (they write nothing)."""
        timeout = self.db.execute("PRAGMA busy_timeout").fetchone()[0]
        self.db.execute("PRAGMA busy_timeout=0")
        try:
            busy, frames, copied = self.db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        except sqlite3.OperationalError:  # locked: another connection is writing
            return False
        finally:
            self.db.execute(f"PRAGMA busy_timeout={int(timeout)}")
        return busy == 0 and copied == frames

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path}: store schema {version} is newer than this HarvestWatch "
                               f"({len(MIGRATIONS)}); upgrade HarvestWatch")
        for number in range(version, len(MIGRATIONS)):
            with self.db:
                self.db.executescript("BEGIN;" + MIGRATIONS[number] + f"PRAGMA user_version={number + 1};COMMIT;")

    # -- imports --------------------------------------------------------------------------
    def begin_import(self, sources: list[str], parameters: dict) -> int:
        # An import commits large batches: copying the WAL back every 4 MB (SQLite's default)
        # synced the file several times per batch. Every 40 MB is enough, and as safe.
        self.db.execute(f"PRAGMA wal_autocheckpoint={IMPORT_CHECKPOINT_PAGES}")
        with self.db:
            cursor = self.db.execute("INSERT INTO imports(started, sources, parameters) VALUES (?, ?, ?)",
                                     (time.time(), json.dumps(sources), json.dumps(parameters)))
        return cursor.lastrowid

    def finish_import(self, import_id: int, lines: int, records: int, skipped: dict) -> None:
        with self.db:
            self.db.execute("UPDATE imports SET finished=?, lines=?, records=?, skipped=? WHERE id=?",
                            (time.time(), lines, records, json.dumps(dict(skipped), sort_keys=True), import_id))

    # -- evidence -------------------------------------------------------------------------
    def add_scans(self, scans: list[Scan], import_id: int | None = None) -> list[int]:
        """Store scans and their candidates; returns their ids (existing ids for duplicates)."""
        if not scans:
            return []
        with self.db:
            # A scan still going on is stored as it stands and grows in place: the same
            # (kind, scanner, target, start) later comes with more packets.
            self.db.executemany(
                "INSERT INTO scans(kind, scanner, scanner_net, target, start, end, packets, "
                "port_count, ports, protocols, targets, import_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT(kind, scanner, target, start) DO UPDATE SET end=excluded.end, "
                "packets=excluded.packets, port_count=excluded.port_count, ports=excluded.ports, "
                "protocols=excluded.protocols, targets=excluded.targets WHERE excluded.packets > packets",
                [self._scan_row(scan, import_id) for scan in scans])
            ids = self._scan_ids(scans)
            self.db.executemany(
                "INSERT OR IGNORE INTO candidates(scan_id, ts, src, sport, dst, dport, proto, lag) "
                "VALUES (?,?,?,?,?,?,?,?)",
                [(scan_id, c.ts, c.src, c.sport, c.dst, c.dport, c.proto, scan.start - c.ts)
                 for scan_id, scan in zip(ids, scans) for c in scan.candidates])
        return ids

    def _scan_row(self, scan: Scan, import_id: int | None) -> tuple:
        # port_count and protocols stay the true counts; the list may be its first max_ports entries.
        ports = scan.ports if self.max_ports is None else scan.ports[:self.max_ports]
        return (scan.kind, scan.scanner, network_of(scan.scanner, self.family_prefix), scan.target, scan.start,
                scan.end, scan.packets, len(scan.ports), ports_text(ports), json.dumps(scan.protocols),
                targets_text(scan), import_id)

    def _scan_ids(self, scans: list[Scan]) -> list[int]:
        """The ids of stored scans, in order, by their natural key: one query per 500 scans."""
        ids = []
        for offset in range(0, len(scans), 500):
            chunk = scans[offset:offset + 500]
            keys = [value for n, scan in enumerate(chunk)
                    for value in (n, scan.kind, scan.scanner, scan.target, scan.start)]
            ids += [row[0] for row in self.db.execute(
                f"WITH batch(n, kind, scanner, target, start) AS (VALUES {','.join(['(?,?,?,?,?)'] * len(chunk))}) "
                "SELECT s.id FROM batch JOIN scans s ON s.kind=batch.kind AND s.scanner=batch.scanner "
                "AND s.target=batch.target AND s.start=batch.start ORDER BY batch.n", keys)]
        return ids

    def add_touches(self, touches: dict[tuple, list]) -> int:
        """Store touches ({(probe id, src, proto, dport): [first, last, packets]}); returns how
        many new (source, protocol, port) rows were left out because their probe already holds
        MAX_TOUCH_ROWS (a flood at one probe address: its first rows are the evidence)."""
        if not touches:
            return 0
        probes = sorted({key[0] for key in touches})
        held = dict(self.db.execute(
            f"SELECT probe_id, count(*) FROM touches WHERE probe_id IN ({','.join('?' * len(probes))}) "
            "GROUP BY probe_id", probes).fetchall())
        rows, dropped = [], 0
        for (probe_id, src, proto, dport), (first, last, packets) in sorted(touches.items(), key=lambda kv: kv[1][0]):
            port = NO_PORT if dport is None else dport
            if held.get(probe_id, 0) >= MAX_TOUCH_ROWS and not self.db.execute(
                    "SELECT 1 FROM touches WHERE probe_id=? AND src=? AND proto=? AND dport=?",
                    (probe_id, src, proto, port)).fetchone():
                dropped += 1
                continue
            held[probe_id] = held.get(probe_id, 0) + 1
            rows.append((probe_id, src, network_of(src, self.family_prefix), proto, port, first, last, packets))
        with self.db:
            self.db.executemany(
                "INSERT INTO touches(probe_id, src, src_net, proto, dport, first_ts, last_ts, packets) "
                "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(probe_id, src, proto, dport) DO UPDATE SET "
                "first_ts=min(first_ts, excluded.first_ts), last_ts=max(last_ts, excluded.last_ts), "
                "packets=packets + excluded.packets", rows)
        return dropped

    def add_contacts(self, contacts: dict[tuple, list]) -> None:
        with self.db:
            self._insert_contacts(contacts)

    def _insert_contacts(self, contacts: dict[tuple, list]) -> None:
        """Within the caller's transaction (set_status writes the quiet hour's contacts with it)."""
        # In key order: each insert lands next to the previous one in the b-tree, which touches
        # fewer pages than the capture order.
        rows = sorted((src, proto, dst, NO_PORT if dport is None else dport, first, last)
                      for (src, proto, dst, dport), (first, last) in contacts.items())
        self.db.executemany(
            "INSERT INTO contacts(src, proto, dst, dport, first_ts, last_ts) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(src, proto, dst, dport) DO UPDATE SET "
            "first_ts=min(first_ts, excluded.first_ts), last_ts=max(last_ts, excluded.last_ts)",
            rows)

    # -- derived --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute attributions, candidate ranks and suspects from all stored evidence.

        SQLite does the joins and groupings into temporary tables, and the rest is read back in
        order and in streams, so memory stays flat however many scans the store holds."""
        db = self.db
        probed = self._attribute_probe_scans()
        with db:
            # One snapshot read and written: take the write lock first (waiting for it as long as
            # the busy timeout allows). A read transaction cannot become a write one once another
            # connection (the prober, the namer) has committed since it began.
            db.execute("BEGIN IMMEDIATE")
            for table in ("hits", "verdicts", "probed"):
                db.execute(f"DROP TABLE IF EXISTS temp.{table}")
            db.execute("CREATE TEMP TABLE probed (id INTEGER PRIMARY KEY)")
            db.executemany("INSERT INTO temp.probed VALUES (?)", [(scan_id,) for scan_id in probed])
            # Per portscan, per endpoint: the packet nearest the scan (smallest lag), and the rank
            # its packets hold now (NULL unless one rank for all), so that only changes are written.
            db.execute(
                "CREATE TEMP TABLE hits AS SELECT c.scan_id, c.proto, c.dst, c.dport, min(c.lag) AS lag, "
                "CASE WHEN count(c.rank) = count(*) AND min(c.rank) = max(c.rank) THEN min(c.rank) END AS rank, "
                "s.start FROM candidates c JOIN scans s ON s.id = c.scan_id WHERE s.kind = ? "
                "GROUP BY c.scan_id, c.proto, c.dst, c.dport", (PORTSCAN,))
            db.execute("CREATE INDEX temp.hits_by_endpoint ON hits(proto, dst, dport, scan_id)")
            self._judge_scans()
            self._rebuild_suspects()
            self._rank_candidates()
            for table in ("hits", "verdicts", "probed"):
                db.execute(f"DROP TABLE temp.{table}")

    def _judge_scans(self) -> None:
        """Each portscan's attribution: unattributed without candidates; certain for a probe
        address, or when the address contacted nothing but its one candidate endpoint before the
        scan; candidate otherwise."""
        self.db.execute("CREATE TEMP TABLE verdicts (id INTEGER PRIMARY KEY, value TEXT NOT NULL, "
                        "endpoints INTEGER NOT NULL)")
        self.db.execute(
            "INSERT INTO temp.verdicts SELECT s.id, CASE "
            "WHEN e.n IS NULL THEN :unattributed "
            "WHEN s.id IN temp.probed THEN :certain "
            "WHEN e.n = 1 AND NOT EXISTS (SELECT 1 FROM contacts k WHERE k.src = s.target AND k.first_ts <= s.start "
            "    AND NOT (k.proto = e.proto AND k.dst = e.dst AND k.dport = ifnull(e.dport, :no_port))) THEN :certain "
            "ELSE :candidate END, ifnull(e.n, 0) "
            "FROM scans s LEFT JOIN (SELECT scan_id, count(*) AS n, min(proto) AS proto, min(dst) AS dst, "
            "    min(dport) AS dport FROM temp.hits GROUP BY scan_id) e ON e.scan_id = s.id WHERE s.kind = :portscan",
            {"unattributed": UNATTRIBUTED, "certain": CERTAIN, "candidate": CANDIDATE, "no_port": NO_PORT,
             "portscan": PORTSCAN})
        self.db.execute("UPDATE scans SET attribution = v.value FROM temp.verdicts v "
                        "WHERE v.id = scans.id AND v.value != scans.attribution")

    def _rebuild_suspects(self) -> None:
        """One row per endpoint that preceded a scan. The score adds 1/candidate endpoints of each
        scan in scan order (the order fixes the float sum); exposures count every address that
        contacted the endpoint, scanned or not."""
        db = self.db
        rows = db.execute(
            "SELECT h.proto, h.dst, h.dport, h.lag, h.start, v.value = ?, v.endpoints FROM temp.hits h "
            "JOIN temp.verdicts v ON v.id = h.scan_id ORDER BY h.proto, h.dst, h.dport, h.scan_id", (CERTAIN,))
        batch = []
        for (proto, dst, dport), hits in groupby(rows, key=itemgetter(0, 1, 2)):
            scans = certain = 0
            score = 0.0
            lags, starts = [], []
            for _, _, _, lag, start, is_certain, endpoints in hits:
                scans += 1
                certain += is_certain
                score += 1.0 / endpoints
                lags.append(lag)
                starts.append(start)
            port = NO_PORT if dport is None else dport
            exposures = db.execute("SELECT count(*) FROM contacts WHERE proto=? AND dst=? AND dport=?",
                                   (proto, dst, port)).fetchone()[0]
            batch.append((proto, dst, port, scans, certain, score, max(exposures, scans), min(lags),
                          statistics.median(lags), min(starts), max(starts)))
        # Only what changed is written: on the daemon's SD card most refreshes change a row or two.
        kept = {tuple(row[:3]): tuple(row) for row in db.execute(
            "SELECT proto, dst, dport, scans, certain, score, exposures, min_lag, median_lag, first_ts, last_ts "
            "FROM suspects")}
        fresh = {row[:3]: row for row in batch}
        db.executemany("DELETE FROM suspects WHERE proto=? AND dst=? AND dport=?",
                       [key for key in kept if key not in fresh])
        db.executemany(
            "INSERT OR REPLACE INTO suspects(proto, dst, dport, scans, certain, score, exposures, min_lag, "
            "median_lag, first_ts, last_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [row for key, row in fresh.items() if kept.get(key) != row])

    def _rank_candidates(self) -> None:
        """Rank each scan's candidate endpoints: the endpoint whose contacts were most often
        followed by a scan first (hit rate, smoothed so one lucky contact is not 100 %), then the
        suspects score, then the shortest lag; equal ones in endpoint order. One statement: only
        ranks that change are written, and no row comes into Python."""
        self.db.execute(
            "WITH ranked AS (SELECT h.scan_id, h.proto, h.dst, h.dport, h.rank AS stored, row_number() OVER ("
            f"    PARTITION BY h.scan_id ORDER BY {SUSPICION_ORDER}, h.lag, h.proto, h.dst, h.dport) AS rank "
            "  FROM temp.hits h JOIN suspects x "
            "  ON x.proto = h.proto AND x.dst = h.dst AND x.dport = ifnull(h.dport, ?)) "
            "UPDATE candidates SET rank = r.rank FROM ranked r WHERE r.rank IS NOT r.stored "
            "AND candidates.scan_id = r.scan_id AND candidates.proto = r.proto AND candidates.dst = r.dst "
            "AND candidates.dport IS r.dport", (NO_PORT,))

    def _attribute_probe_scans(self) -> set[int]:
        """Scans of a probe address within its observation window: the ledger names the one
        server that address ever contacted, however long before the scan (a second wave can come
        hours later, far outside the lookback). The probe packet becomes the scan's candidate."""
        rows = self.db.execute(
            "SELECT s.id, s.start, p.id, p.sent_at, p.address, p.sport, p.server, p.port FROM scans s "
            "JOIN probes p ON s.target = p.address WHERE s.kind=? AND p.sent_at IS NOT NULL "
            "AND s.start >= p.sent_at AND s.start <= p.expires", (PORTSCAN,)).fetchall()
        with self.db:
            for scan_id, start, probe_id, sent_at, address, sport, server, port in rows:
                self.db.execute("UPDATE scans SET probe_id=? WHERE id=?", (probe_id, scan_id))
                # The firewall usually logged the same packet already (a slightly different time).
                known = self.db.execute("SELECT 1 FROM candidates WHERE scan_id=? AND proto='UDP' AND dst=? "
                                        "AND dport=?", (scan_id, server, port)).fetchone()
                if not known:
                    self.db.execute("INSERT OR IGNORE INTO candidates(scan_id, ts, src, sport, dst, dport, proto, "
                                    "lag) VALUES (?,?,?,?,?,?,'UDP',?)",
                                    (scan_id, sent_at, address, sport, server, port, start - sent_at))
        return {row[0] for row in rows}

    # -- reading --------------------------------------------------------------------------
    def scans(self, ids: list[int] | None = None) -> list[sqlite3.Row]:
        if ids is None:
            return self.db.execute("SELECT * FROM scans ORDER BY start, id").fetchall()
        rows = []
        for offset in range(0, len(ids), 500):
            chunk = ids[offset:offset + 500]
            rows += self.db.execute(f"SELECT * FROM scans WHERE id IN ({','.join('?' * len(chunk))})",
                                    chunk).fetchall()
        return sorted(rows, key=lambda row: (row["start"], row["id"]))

    # The scans a report covers (one import's, thousands of rows of ~1.5 KB each) stay in SQLite:
    # `select_scans` names them in TEMP tables of this connection, and the methods below read
    # them through cursors, so a report's memory does not grow with its input.
    def select_scans(self, ids: list[int]) -> None:
        """Select the scans `scan_chunks`, `scanner_families`, `family_scanners` and
        `selected_suspects` read (replacing any earlier selection)."""
        with self.db:
            # Keyed by (start, id): read in key order, the selection is already in report order.
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS report_scans (start REAL NOT NULL, id INTEGER NOT NULL, "
                            "kind TEXT NOT NULL, PRIMARY KEY (start, id)) WITHOUT ROWID")
            self.db.execute("DELETE FROM temp.report_scans")
            # One statement (the ids as one JSON text) is twice as fast as one per id.
            self.db.execute("INSERT OR IGNORE INTO temp.report_scans SELECT start, id, kind FROM scans "
                            "WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),))
            self.db.execute("DROP TABLE IF EXISTS temp.report_scanners")

    def _select_scanners(self) -> None:
        """Each family's addresses among the selected scans, for `family_scanners`: made on first
        use (`select_scans` drops them), as only the JSON document lists them."""
        if self.db.execute("SELECT 1 FROM temp.sqlite_master WHERE name='report_scanners'").fetchone():
            return
        with self.db:
            self.db.execute("CREATE TEMP TABLE report_scanners (net TEXT NOT NULL, scanner TEXT NOT NULL, "
                            "PRIMARY KEY (net, scanner)) WITHOUT ROWID")
            self.db.execute("INSERT OR IGNORE INTO temp.report_scanners SELECT s.scanner_net, s.scanner "
                            "FROM temp.report_scans r JOIN scans s ON s.id = r.id")

    def scan_chunks(self, kind: str | None = None, size: int = 500) -> Iterator[list[sqlite3.Row]]:
        """The selected scans (of one `kind`, or all) by start then id, `size` rows at a time."""
        # CROSS JOIN: the selection drives the loop, in its key order, so SQLite sorts nothing.
        cursor = self.db.execute(
            "SELECT s.* FROM temp.report_scans r CROSS JOIN scans s ON s.id = r.id"
            + (" WHERE r.kind = ?" if kind is not None else "") + " ORDER BY r.start, r.id",
            () if kind is None else (kind,))
        while rows := cursor.fetchmany(size):
            yield rows

    def scanner_families(self) -> list[tuple]:
        """(net, addresses, portscans, sweeps, first start, last end) per scanner family of the
        selected scans, most scans first."""
        rows = self.db.execute(
            "SELECT s.scanner_net, count(DISTINCT s.scanner), sum(s.kind = ?), sum(s.kind != ?), min(s.start), "
            "max(s.end) FROM temp.report_scans r JOIN scans s ON s.id = r.id GROUP BY s.scanner_net",
            (PORTSCAN, PORTSCAN)).fetchall()
        return sorted(map(tuple, rows), key=lambda row: (-row[2] - row[3], row[0]))

    def family_scanners(self, net: str) -> Iterator[str]:
        """The addresses of one family among the selected scans, sorted, through a cursor."""
        self._select_scanners()
        cursor = self.db.execute("SELECT scanner FROM temp.report_scanners WHERE net=? ORDER BY scanner", (net,))
        cursor.row_factory = None
        return (scanner for scanner, in cursor)

    def candidates_of_scans(self, scan_ids: list[int]) -> dict[int, list[tuple]]:
        """{scan id: [(scan id, rank, ts, lag, src, sport, dst, dport, proto), ...]} in rank order,
        in one query per 500 scans (the reports list thousands of scans)."""
        found: dict[int, list[tuple]] = {}
        cursor = self.db.cursor()
        cursor.row_factory = None  # plain tuples: a Row per candidate costs more than the query
        for offset in range(0, len(scan_ids), 500):
            chunk = scan_ids[offset:offset + 500]
            rows = cursor.execute(
                f"SELECT scan_id, rank, ts, lag, src, sport, dst, dport, proto FROM candidates "
                f"WHERE scan_id IN ({','.join('?' * len(chunk))}) ORDER BY scan_id, {CANDIDATE_ORDER}", chunk)
            found.update((scan_id, list(group)) for scan_id, group in groupby(rows, itemgetter(0)))
        return found

    def suspects(self, scan_ids: list[int] | None = None) -> list[sqlite3.Row]:
        """Suspects over all stored scans, or limited to endpoints that preceded `scan_ids`."""
        rows = self.db.execute(f"SELECT * FROM suspects ORDER BY {SUSPECT_ORDER}").fetchall()
        if scan_ids is None:
            return rows
        wanted = set()
        for offset in range(0, len(scan_ids), 500):
            chunk = scan_ids[offset:offset + 500]
            wanted.update(tuple(row) for row in self.db.execute(
                f"SELECT DISTINCT proto, dst, ifnull(dport, {NO_PORT}) FROM candidates "
                f"WHERE scan_id IN ({','.join('?' * len(chunk))})", chunk).fetchall())
        return [row for row in rows if (row["proto"], row["dst"], row["dport"]) in wanted]

    def selected_suspects(self) -> list[sqlite3.Row]:
        """`suspects` limited to endpoints that preceded the selected scans: SQL finds those
        endpoints, so no per-scan data comes into Python."""
        return self.db.execute(
            f"SELECT * FROM suspects WHERE (proto, dst, dport) IN (SELECT c.proto, c.dst, ifnull(c.dport, {NO_PORT}) "
            f"FROM temp.report_scans r JOIN candidates c ON c.scan_id = r.id) ORDER BY {SUSPECT_ORDER}").fetchall()
