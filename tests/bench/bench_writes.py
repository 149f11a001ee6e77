"""`make bench-writes`: what the daemon writes to the SD card in a day. Prints figures; asserts nothing.

The daemon runs in the lab (its namespaces, 2001:db8::/32) with its store on a file system of its
own: an ext4 image on a loop device, mounted as the image mounts its root (noatime, lazytime, commit=60).
The loop device's own count of sectors written is then everything the card would get from it:
SQLite's pages, its WAL and checkpoints, the file system's journal and metadata.

Phase "quiet": --quiet-minutes of a normal day (the daemon's own flush cadence, each server of the
lab's pool probed once a day as by default, the pools resolved every 15 minutes, no scans): bytes
per hour, times 24. Phase "busy hour": an hour's scans at once (--scans scanners in as many /64s,
100 ports each, as tests/lab/flood.py sends them), then until the daemon has stored them. A day is
23 quiet hours and the busy one. Also reported: the daemon's own write_bytes (/proc/PID/io), and
the store's size. Budget: BUDGET_MB a day, quiet.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.lab.appliance import ApplianceDaemon, write_config  # noqa: E402
from tests.lab.lab import Lab  # noqa: E402
from tests.lab.netns import repo_root  # noqa: E402

BUDGET_MB = 5.0          # a quiet day's writes to the card, at most
CARD_MB = 512            # the loop file system's size
MOUNT_OPTIONS = "noatime,lazytime,commit=60"  # as the image mounts its root (harvestwatch_pi's fstab)


class LoopDisk:
    """An ext4 file system in a file, on a loop device, mounted at `mountpoint` (noatime)."""

    def __init__(self, image: Path, mountpoint: Path):
        self.image, self.mountpoint, self.device = image, mountpoint, None

    def __enter__(self) -> "LoopDisk":
        subprocess.run(["truncate", "-s", f"{CARD_MB}M", str(self.image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(self.image)], check=True)
        self.device = subprocess.run(["losetup", "--find", "--show", str(self.image)], check=True,
                                     capture_output=True, text=True).stdout.strip()
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-o", MOUNT_OPTIONS, self.device, str(self.mountpoint)], check=True)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["umount", str(self.mountpoint)], check=False)
        if self.device:
            subprocess.run(["losetup", "-d", self.device], check=False)

    def written(self) -> int:
        """Bytes written to the device since it was set up (the block layer's count, 512-byte sectors)."""
        fields = Path(f"/sys/block/{os.path.basename(self.device)}/stat").read_text().split()
        return int(fields[6]) * 512


def process_written(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def settle(seconds: float) -> None:
    """Let the kernel write back what is dirty, so that the count belongs to the phase that made it."""
    time.sleep(seconds)
    os.sync()


def hourly_flush_cost(work: Path, stored: Path, cycles: int = 3) -> float:
    """Bytes one hourly flush of a quiet daemon writes to the card: the status (its changed parts),
    the hour's outbound contacts and pool members' sightings in one transaction, then the WAL copied
    into the store, with the daemon's own code (Daemon._status, Daemon._copy_the_wal) on a copy of
    the store the lab's daemon made, on a file system of its own, each cycle let through the file
    system's one-minute journal commit. Measured apart because a quiet run shorter than an hour
    holds none."""
    from appliance import config as configuration
    from appliance.daemon import WAL_COPY_QUIET, Daemon
    from appliance.store import runtime
    from appliance.store.db import Store

    with LoopDisk(work / "hourly.img", work / "hourly") as disk:
        shutil.copy(stored, work / "hourly" / "harvestwatch.sqlite")
        runtime.RUNTIME_DIR = str(work / "run")  # the status's RAM copy, off the measured disk
        conf = configuration.from_dict({"appliance": {"state_dir": str(work / "hourly")}})
        daemon = Daemon(conf)
        daemon.store = Store(conf.db_path)
        status = daemon.store.status()
        members = daemon.store.db.execute("SELECT pool, address FROM pool_members").fetchall()
        now = time.time()
        daemon._status(status, now, data_written=True)   # what the store holds, as the daemon knows it
        daemon._copy_the_wal(now)
        daemon._copy_the_wal(now + WAL_COPY_QUIET)
        settle(65)
        costs = []
        for cycle in range(cycles):
            now += 3600
            start = disk.written()
            changed = {**status, "heartbeat": now, "synced_heartbeat": now,
                       "counters": {**(status.get("counters") or {}), "flushes": cycle}}
            contacts = {("2001:db8:1::1", "UDP", f"2001:db8:123::{n:x}", 123): (now - 60 * n, now - 60 * n + 1)
                        for n in range(12)}  # an hour of the appliance's own NTP and DNS
            daemon.unstored["contacts"] = contacts
            daemon.unstored["pool_seen"] = {tuple(row): now - 300 for row in members}  # the hour's pool answers
            daemon._status(changed, now, data_written=False)
            daemon._copy_the_wal(now)
            daemon._copy_the_wal(now + WAL_COPY_QUIET)  # once it has been quiet long enough
            settle(65)
            costs.append(disk.written() - start)
        daemon.store.close()
    return sum(costs) / len(costs)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/harvestwatch-bench")
    parser.add_argument("--quiet-minutes", type=float, default=65.0,
                        help="at least the longest of the daemon's write cadences (status and contacts: an hour)")
    parser.add_argument("--scans", type=int, default=200, help="scans in the busy hour")
    args = parser.parse_args()
    work = Path(args.work) / "writes"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    state = work / "card"
    with LoopDisk(work / "card.img", state) as disk, \
            Lab(workdir=work / "lab", delay1=3, delay2=3600, router="open", harvesters={}) as lab:
        # Each server probed once a day (the default), as on a real day: the first round at start.
        config = write_config(lab, work / "config.toml", state_dir=state, router="open", server_interval=86400,
                              observation=86400, resolve_every=900)
        # The daemon's own flush cadence, not the lab's faster one.
        config.write_text(config.read_text().replace("flush_every = 2", "flush_every = 5"))
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        daemon.wait_for(lambda s: s.watched_probes(time.time())[:1], timeout=120)
        settle(10)
        pid = daemon.process.pid

        start_dev, start_proc, started = disk.written(), process_written(pid), time.monotonic()
        time.sleep(args.quiet_minutes * 60)
        os.sync()
        quiet_s = time.monotonic() - started
        quiet_dev, quiet_proc = disk.written() - start_dev, process_written(pid) - start_proc
        store = daemon.store()
        probes = store.db.execute("SELECT count(*) FROM probes WHERE sent_at IS NOT NULL").fetchone()[0]
        store.close()

        before_dev, before_proc, started = disk.written(), process_written(pid), time.monotonic()
        scanners = ipaddress.ip_network(lab.scanner_nets[0]).supernet(new_prefix=48)
        spread = list(scanners.subnets(new_prefix=64))[0x1000]
        done = lab.ns.exec(lab.ns.name("scan1"),
                           [sys.executable, "-m", "tests.lab.flood", lab.lan_address(),
                            str(spread.supernet(new_prefix=56)), "--sources", str(args.scans), "--step-bits", "64",
                            "--ports", "100"], cwd=repo_root(), timeout=600)
        sent = json.loads(done.stdout)["sent"]
        stored = daemon.wait_for(lambda s: (n := s.db.execute("SELECT count(*) FROM scans").fetchone()[0])
                                 >= args.scans and n, timeout=180)
        settle(15)
        busy_s = time.monotonic() - started
        busy_dev, busy_proc = disk.written() - before_dev, process_written(pid) - before_proc
        size = sum(os.path.getsize(daemon.db_path + s) for s in ("", "-wal") if os.path.exists(daemon.db_path + s))
        daemon.stop()
        shutil.copy(daemon.db_path, work / "stored.sqlite")
    hourly = hourly_flush_cost(work, work / "stored.sqlite")

    per_hour = quiet_dev / quiet_s * 3600
    # A quiet run shorter than an hour holds none of the hourly flushes: add them.
    hourly_missing = hourly if quiet_s < 3600 else 0.0
    quiet_day = (per_hour + hourly_missing) * 24
    day = (per_hour + hourly_missing) * 23 + busy_dev + per_hour * (1 - min(busy_s, 3600) / 3600)
    print(f"[hourly flush] the status, an hour's contacts and pool sightings, then the WAL copied: "
          f"{hourly / 1e3:.0f} KB each (3 cycles)")
    print(f"[quiet] {quiet_s / 60:.1f} min, {probes} probes sent in all: card {quiet_dev / 1e6:.2f} MB "
          f"({per_hour / 1e6:.2f} MB/h{' + the hourly flush' if hourly_missing else ''}: "
          f"{quiet_day / 1e6:.1f} MB a quiet day; budget {BUDGET_MB:.0f} MB: "
          f"{'met' if quiet_day / 1e6 <= BUDGET_MB else 'MISSED'}); the daemon's own write_bytes "
          f"{quiet_proc / 1e6:.2f} MB")
    print(f"[busy hour] {args.scans} scans ({sent} packets), {stored} stored in {busy_s:.0f} s: card "
          f"{busy_dev / 1e6:.2f} MB; the daemon's own write_bytes {busy_proc / 1e6:.2f} MB")
    print(f"[day] 23 quiet hours and the busy one: {day / 1e6:.1f} MB written to the card; store now "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
