"""`harvestwatch backup` and `restore`: the evidence and the settings, moved to a new card intact.

A backup is one gzip'd tar: `harvestwatch/harvestwatch.sqlite` (SQLite's online backup of the store:
a consistent copy even while the daemon writes), `harvestwatch/config.toml` (when there is one) and
`harvestwatch/manifest.json` (the version and schema that wrote them, and each file's SHA-256).

Restoring checks everything before it changes anything: the checksums, that the store is one this
release can read (its schema no newer; an older one is migrated the first time the daemon opens
it), that the configuration is valid for this release, and that no daemon is writing to the store
it replaces. What it replaces is kept beside it (`*.before-restore`), never deleted.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time

from . import __version__
from .report.status import daemon_state
from .store.db import MIGRATIONS, Store, StoreError

FORMAT = 1
FOLDER = "harvestwatch"
STORE_NAME, CONFIG_NAME, MANIFEST_NAME = "harvestwatch.sqlite", "config.toml", "manifest.json"
KEPT_SUFFIX = ".before-restore"


class BackupError(Exception):
    """A backup that cannot be made or restored, and why: nothing was changed."""


def _sha256(data_or_path) -> str:
    digest = hashlib.sha256()
    if isinstance(data_or_path, bytes):
        digest.update(data_or_path)
    else:
        with open(data_or_path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def write_backup(out, db_path: str, config_path: str | None, now: float | None = None) -> dict:
    """Write the backup of the store at `db_path` (and the configuration at `config_path`, if it
    exists) to the binary file `out`; returns its manifest."""
    now = time.time() if now is None else now
    if not os.path.exists(db_path):
        raise BackupError(f"no store at {db_path}: nothing to back up")
    with tempfile.TemporaryDirectory(prefix="harvestwatch-backup-") as scratch:
        copy = os.path.join(scratch, STORE_NAME)
        try:
            source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
            try:
                target = sqlite3.connect(copy)
                try:
                    source.backup(target)  # page by page, consistent with the last commit
                    schema = target.execute("PRAGMA user_version").fetchone()[0]
                    check = target.execute("PRAGMA quick_check").fetchone()[0]
                finally:
                    target.close()
            finally:
                source.close()
        except sqlite3.Error as exc:
            raise BackupError(f"cannot copy the store {db_path}: {exc}") from None
        if check != "ok":
            raise BackupError(f"the store {db_path} is damaged ({check}): copy the file itself instead")
        config = None
        if config_path and os.path.exists(config_path):
            with open(config_path, "rb") as handle:
                config = handle.read()
        manifest = {"format": FORMAT, "harvestwatch": __version__, "schema": schema, "created": now,
                    "files": {STORE_NAME: _sha256(copy), **({CONFIG_NAME: _sha256(config)} if config else {})}}
        with tarfile.open(fileobj=out, mode="w|gz") as tar:
            _add_bytes(tar, MANIFEST_NAME, json.dumps(manifest, indent=1).encode(), now)
            tar.add(copy, arcname=f"{FOLDER}/{STORE_NAME}", recursive=False)
            if config is not None:
                _add_bytes(tar, CONFIG_NAME, config, now)
    return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, now: float) -> None:
    info = tarfile.TarInfo(f"{FOLDER}/{name}")
    info.size, info.mtime, info.mode = len(data), int(now), 0o600
    tar.addfile(info, io.BytesIO(data))


def read_backup(source, scratch: str) -> tuple[dict, str, bytes | None]:
    """Unpack a backup from the binary file `source` into the directory `scratch` and check it:
    (manifest, path of the store, the configuration's bytes or None)."""
    found: dict[str, bytes | str] = {}
    try:
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            for member in tar:
                name = member.name.removeprefix(f"{FOLDER}/")
                if not member.isfile() or name not in (STORE_NAME, CONFIG_NAME, MANIFEST_NAME) or name in found:
                    raise BackupError(f"not a HarvestWatch backup: it holds {member.name!r}")
                handle = tar.extractfile(member)
                if name == STORE_NAME:
                    path = os.path.join(scratch, STORE_NAME)
                    with open(path, "wb") as out:
                        shutil.copyfileobj(handle, out)
                    found[name] = path
                else:
                    found[name] = handle.read(1 << 20)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BackupError(f"not a HarvestWatch backup (a gzip'd tar): {exc}") from None
    if MANIFEST_NAME not in found or STORE_NAME not in found:
        raise BackupError("not a HarvestWatch backup: its manifest or its store is missing")
    try:
        manifest = json.loads(found[MANIFEST_NAME])
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise BackupError("the backup's manifest is not readable") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not one this HarvestWatch reads ({FORMAT})")
    config = found.get(CONFIG_NAME)
    for name, data in ((STORE_NAME, found[STORE_NAME]), (CONFIG_NAME, config)):
        if (data is None) != (name not in files) or (data is not None and _sha256(data) != files[name]):
            raise BackupError(f"the backup's {name} does not match its manifest: damaged in transit?")
    schema = _schema(found[STORE_NAME])
    if schema > len(MIGRATIONS):
        raise BackupError(f"the backup's store has schema {schema}, newer than this HarvestWatch "
                          f"({__version__}, schema {len(MIGRATIONS)}): restore it with a release at least as new")
    return manifest, found[STORE_NAME], config


def _schema(path: str) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            schema = db.execute("PRAGMA user_version").fetchone()[0]
            check = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the backup's store cannot be read: {exc}") from None
    if schema == 0 or check != "ok":
        raise BackupError(f"the backup's store is not a sound HarvestWatch store ({check}, schema {schema})")
    return schema


def restore(source, config_path: str, store_path_of, db_path: str | None = None,
            now: float | None = None) -> dict:
    """Put the backup read from `source` in place of the configuration at `config_path` and of the
    store, keeping what they replace. `store_path_of(text or None, source name)` checks a
    configuration's text (None: the one at `config_path` stays) and returns where its store lives
    (ValueError for one this release refuses); `db_path` overrides it. Returns what was done."""
    now = time.time() if now is None else now
    with tempfile.TemporaryDirectory(prefix="harvestwatch-restore-") as unpacked:
        manifest, store_file, config = read_backup(source, unpacked)
        try:
            text = None if config is None else config.decode("utf-8")
            target = store_path_of(text, f"the backup's {CONFIG_NAME}" if text is not None else config_path)
        except UnicodeDecodeError:
            raise BackupError(f"the backup's {CONFIG_NAME} is not UTF-8 text: nothing was changed") from None
        except ValueError as exc:
            raise BackupError(f"{exc}: nothing was changed") from None
        db_path = db_path or target
        _refuse_if_running(db_path, now)
        folder = os.path.dirname(os.path.abspath(db_path))
        os.makedirs(folder, exist_ok=True)
        placed = os.path.join(folder, f".{STORE_NAME}.restoring")
        shutil.copyfile(store_file, placed)  # onto the store's own disk first: the rename below is atomic
        _fsync(placed)
        owner = os.stat(folder)
        os.chown(placed, owner.st_uid, owner.st_gid)  # the daemon's user owns its state directory
        kept = []
        for suffix in ("", "-wal", "-shm"):  # an old store's journal belongs to it: kept along
            if os.path.exists(db_path + suffix):
                os.replace(db_path + suffix, db_path + KEPT_SUFFIX + suffix)
                kept.append(db_path + KEPT_SUFFIX + suffix)
        os.replace(placed, db_path)
        _fsync_dir(folder)
        if config is not None:
            if os.path.exists(config_path):
                os.replace(config_path, config_path + KEPT_SUFFIX)
                kept.append(config_path + KEPT_SUFFIX)
            os.makedirs(os.path.dirname(os.path.abspath(config_path)), exist_ok=True)
            written = config_path + ".restoring"
            with open(written, "wb") as out:
                out.write(config)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(written, 0o644)
            os.replace(written, config_path)
    # Opened once writable: an older schema is migrated now, and a failure is seen here, not at boot.
    try:
        store = Store(db_path)
        schema = store.schema_version()
        store.close()
        os.chown(db_path, owner.st_uid, owner.st_gid)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db_path + suffix):
                os.chown(db_path + suffix, owner.st_uid, owner.st_gid)
    except (sqlite3.Error, StoreError) as exc:
        raise BackupError(f"the restored store at {db_path} cannot be opened: {exc}"
                          + (f" (the one it replaced is kept as {db_path + KEPT_SUFFIX})" if kept else "")) from None
    return {"manifest": manifest, "schema": schema, "db_path": db_path, "kept": kept, "config": config is not None}


def _refuse_if_running(db_path: str, now: float) -> None:
    if not os.path.exists(db_path):
        return
    try:
        store = Store(db_path, readonly=True)
        try:
            alive = daemon_state(store.status(), now)["alive"]
        finally:
            store.close()
    except (sqlite3.Error, StoreError):
        return  # a store that cannot be read is replaced (and kept aside) all the same
    if alive:
        raise BackupError("the daemon is running on this store: stop it first (sudo systemctl stop "
                          "harvestwatch), restore, then start it")


def _fsync(path: str) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
