"""What the store keeps, and for how long: the retention policy (store.keep_days, store.max_mb).

Evidence about harvesters and probes is never deleted: the probe ledger, pinholes, touches, scans
of probe addresses, and the gaps that overlap a probe's window (deleting one would turn an
unverified window into a clean one). Ordinary records age out after `keep_days`: scans and
sweeps that nothing was attributed to, outbound contacts, gaps outside every window, pool answers
of servers never probed, names of scanners no longer stored. Beyond `max_mb` of used pages,
ordinary records go oldest first: unattributed scans, then contacts, then scans with trigger
candidates (the trigger endpoints' statistics then cover the period kept).

Deleting frees pages inside the file, which SQLite reuses; the file itself does not shrink (a
VACUUM needs a second copy's room, which an SD card that is full does not have).
"""
from __future__ import annotations

import os
import time

from ..words import Attribution

DAY = 86400.0
BATCH = 2000            # rows per delete when over the cap: short transactions, the page stays readable
CAP_TARGET = 0.9        # over the cap, prune to this fraction of it, so that pruning is not every flush

# Ordinary rows, in the order the size cap deletes them (oldest first within each): table, its
# time column, and the condition that makes a row ordinary rather than evidence.
# A scan is evidence when it reached a probe address, whether refresh() has tied it to its probe yet
# (probe_id) or not, a sweep by any of its targets.
_NOT_PROBED = ("probe_id IS NULL AND target NOT IN (SELECT address FROM probes) AND (kind != 'sweep' OR "
               "NOT EXISTS (SELECT 1 FROM json_each(scans.targets) t JOIN probes p ON p.address = t.value))")
_UNATTRIBUTED = f"{_NOT_PROBED} AND attribution = '{Attribution.UNATTRIBUTED}'"
_ATTRIBUTED = f"{_NOT_PROBED} AND attribution != '{Attribution.UNATTRIBUTED}'"
CAP_ORDER = (("scans", "start", _UNATTRIBUTED), ("contacts", "last_ts", "1"), ("scans", "start", _ATTRIBUTED))


class Retention:
    db = None  # sqlite3.Connection, set by Store

    def used_bytes(self) -> int:
        """Bytes of the store's pages in use (the file is this plus free pages)."""
        page_size, pages, free = (self.db.execute(f"PRAGMA {name}").fetchone()[0]
                                  for name in ("page_size", "page_count", "freelist_count"))
        return (pages - free) * page_size

    def file_bytes(self) -> int:
        try:
            return sum(os.path.getsize(self.path + suffix) for suffix in ("", "-wal")
                       if os.path.exists(self.path + suffix))
        except OSError:
            return 0

    def oldest_record(self) -> float | None:
        """The time of the oldest scan, contact or probe kept."""
        times = [self.db.execute(f"SELECT min({column}) FROM {table}").fetchone()[0]
                 for table, column in (("scans", "start"), ("contacts", "first_ts"), ("probes", "planned"))]
        times = [t for t in times if t is not None]
        return min(times) if times else None

    def prune(self, now: float, keep_days: float, max_bytes: int) -> dict[str, int]:
        """Apply the policy; returns rows deleted per kind. `now` must come from a right clock."""
        cutoff = now - keep_days * DAY
        deleted: dict[str, int] = {}

        def delete(kind: str, sql: str, args=()) -> int:
            with self.db:
                count = self.db.execute(sql, args).rowcount
            if count:
                deleted[kind] = deleted.get(kind, 0) + count
            return count

        delete("scans", f"DELETE FROM scans WHERE {_UNATTRIBUTED} AND end < ?", (cutoff,))
        delete("contacts", "DELETE FROM contacts WHERE last_ts < ?", (cutoff,))
        delete("gaps", "DELETE FROM gaps WHERE end < ? AND NOT EXISTS (SELECT 1 FROM probes p WHERE "
                       "p.planned <= gaps.end AND p.expires >= gaps.start)", (cutoff,))
        delete("pool answers", "DELETE FROM pool_members WHERE last_seen < ? AND address NOT IN "
                               "(SELECT server FROM probes)", (cutoff,))
        if self.used_bytes() > max_bytes:
            for table, column, ordinary in CAP_ORDER:
                key = "rowid" if table == "scans" else "src, proto, dst, dport"
                # A tenth of the table at a time at least: each batch sorts what is left.
                rows = self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                batch = max(BATCH, rows // 10)
                while self.used_bytes() > max_bytes * CAP_TARGET:
                    if not delete(table, f"DELETE FROM {table} WHERE ({key}) IN (SELECT {key} FROM {table} "
                                         f"WHERE {ordinary} ORDER BY {column} LIMIT {batch})"):
                        break
        delete("scanner names", "DELETE FROM scanner_names WHERE address NOT IN (SELECT scanner FROM scans)")
        if deleted.get("scans") or deleted.get("contacts"):
            self.refresh()
        return deleted

    def retention_status(self, keep_days: float, max_bytes: int, oldest: bool = True) -> dict:
        return {"keep_days": keep_days, "max_bytes": max_bytes, "used_bytes": self.used_bytes(),
                "file_bytes": self.file_bytes(), "oldest": self.oldest_record() if oldest else None,
                "checked": time.time()}
