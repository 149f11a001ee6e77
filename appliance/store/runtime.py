"""The daemon's live status in RAM, so that the SD card is not written every few seconds.

The daemon's status (its heartbeat, counters, the prober's plans...) changes at every flush; kept
in the store, each flush would be a commit to the card (about 140 MB a day, measured by `make
bench-writes`). Instead each flush replaces one small JSON file under RUNTIME_DIR (/run: RAM),
and the store gets the status only along with data, every STATUS_PERSIST_EVERY seconds, and at a
clean stop. Readers (the page, `harvestwatch status`, the notifier) see the store's status with
the live file laid over it, when the file belongs to that store (same file system and inode: not
a store that was replaced at the same path since).

systemd's RuntimeDirectory= removes the directory when the daemon stops, killed or not: what is
left then is what the store has, whose heartbeat says when the daemon was last heard from.
"""
from __future__ import annotations

import hashlib
import json
import os

from ..settings import RUNTIME_DIR

# Once an hour, with the outbound contacts of that hour in the same flush (appliance/daemon.py): a
# quiet hour is then one write to the card.
STATUS_PERSIST_EVERY = 3600.0


def status_path(db_path: str, runtime_dir: str | None = None) -> str:
    """The live status file of the store at `db_path` (one per store: the lab runs several)."""
    name = hashlib.sha256(os.path.realpath(db_path).encode()).hexdigest()[:16]
    return os.path.join(runtime_dir or RUNTIME_DIR, f"status-{name}.json")


def _identity(db_path: str) -> list[int] | None:
    try:
        st = os.stat(db_path)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def write(db_path: str, status: dict, runtime_dir: str | None = None) -> bool:
    """Replace the live status of the store at `db_path`; False if the runtime directory cannot be
    written (then the caller keeps the status in the store, as before)."""
    path = status_path(db_path, runtime_dir)
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        partial = f"{path}.{os.getpid()}"
        with open(partial, "w", encoding="utf-8") as out:
            json.dump({"store": _identity(db_path), "status": status}, out)
        os.chmod(partial, 0o644)  # the page's process reads it
        os.replace(partial, path)
        return True
    except OSError:
        return False


def read(db_path: str, runtime_dir: str | None = None) -> dict:
    """The live status of the store at `db_path`, or {} (no daemon running, or another store's)."""
    try:
        with open(status_path(db_path, runtime_dir), encoding="utf-8") as handle:
            live = json.load(handle)
    except (OSError, ValueError):
        return {}
    if not isinstance(live, dict) or not isinstance(live.get("status"), dict):
        return {}
    return live["status"] if live.get("store") == _identity(db_path) else {}


def stamp(db_path: str, runtime_dir: str | None = None) -> int | None:
    """When the live status last changed (ns), for what is kept until it does."""
    try:
        return os.stat(status_path(db_path, runtime_dir)).st_mtime_ns
    except OSError:
        return None


def remove(db_path: str, runtime_dir: str | None = None) -> None:
    try:
        os.unlink(status_path(db_path, runtime_dir))
    except OSError:
        pass
