"""Room on the disk for the store: free space, a full disk recognised, and a reserve to fall back on.

The reserve is a file of RESERVE_BYTES in the state directory, made while there is room. When the
disk fills (whatever filled it) the daemon deletes it: that gives SQLite the room to write what a
full disk must not stop (the gap saying so, the status, deletes that free pages inside the store).
It is made again once the disk has room for it twice over.
"""
from __future__ import annotations

import errno
import os
import sqlite3

RESERVE_NAME = "space-reserve"
RESERVE_BYTES = 8 << 20
NEARLY_FULL = 1 << 20


def free_bytes(directory: str) -> int:
    """Bytes an unprivileged writer may still use on the file system of `directory`."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def is_disk_full(exc: BaseException, directory: str | None = None) -> bool:
    """Whether `exc` is SQLite or the OS saying there is no room (SQLITE_FULL, ENOSPC, EDQUOT), or
    an I/O error of SQLite's (a WAL or shared-memory file that could not grow) while `directory`
    has (almost) no room left."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None) or 0
        if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            return True
        if code & 0xFF == sqlite3.SQLITE_IOERR and directory is not None:
            try:
                return free_bytes(directory) < NEARLY_FULL
            except OSError:
                return False
    return False


class Reserve:
    def __init__(self, directory: str, size: int = RESERVE_BYTES):
        self.path, self.size = os.path.join(directory, RESERVE_NAME), size

    def held(self) -> bool:
        try:
            return os.path.getsize(self.path) >= self.size
        except OSError:
            return False

    def ensure(self) -> bool:
        """Make the reserve if it is missing and the disk has room for it twice over."""
        if self.held():
            return True
        directory = os.path.dirname(self.path)
        if free_bytes(directory) < 2 * self.size:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
            finally:
                os.close(fd)
            return True
        except OSError:
            self.release()
            return False

    def release(self) -> bool:
        """Delete the reserve; True if there was one to give."""
        try:
            os.unlink(self.path)
            return True
        except FileNotFoundError:
            return False
