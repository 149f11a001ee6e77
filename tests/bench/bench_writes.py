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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/harvestwatch-bench")
    parser.add_argument("--quiet-minutes", type=float, default=35.0,
                        help="at least the longest of the daemon's write cadences (contacts: 30 min)")
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

    per_hour = quiet_dev / quiet_s * 3600
    day = per_hour * 23 + busy_dev + per_hour * (1 - min(busy_s, 3600) / 3600)
    print(f"[quiet] {quiet_s / 60:.1f} min, {probes} probes sent in all: card {quiet_dev / 1e6:.2f} MB "
          f"({per_hour / 1e6:.2f} MB/h, {per_hour * 24 / 1e6:.1f} MB a quiet day; budget {BUDGET_MB:.0f} MB: "
          f"{'met' if per_hour * 24 / 1e6 <= BUDGET_MB else 'MISSED'}); the daemon's own write_bytes "
          f"{quiet_proc / 1e6:.2f} MB")
    print(f"[busy hour] {args.scans} scans ({sent} packets), {stored} stored in {busy_s:.0f} s: card "
          f"{busy_dev / 1e6:.2f} MB; the daemon's own write_bytes {busy_proc / 1e6:.2f} MB")
    print(f"[day] 23 quiet hours and the busy one: {day / 1e6:.1f} MB written to the card; store now "
          f"{size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
