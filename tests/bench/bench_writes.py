"""`make bench-writes`: what the appliance writes to the SD card in a day. Prints figures.

The daemon runs in the lab (its namespaces, 2001:db8::/32) with its store on a file system of its
own: an ext4 image on a loop device, mounted as the image mounts its root (noatime, lazytime, commit=60).
The loop device's own count of sectors written is then everything the card would get from it:
SQLite's pages, its WAL and checkpoints, the file system's journal and metadata.

Phases: "start-up" (the store made, each server of the lab's pool probed, once a boot); "quiet":
--quiet-minutes of a normal day after it (the daemon's own flush cadence, the pools resolved every
15 minutes, no scans): bytes per hour, times 24, plus the WAL's copies into the store and the day's
probes (each server once a day, as by default) at their measured costs; "busy hour": an hour's scans
at once (--scans scanners in as many /64s, 100 ports each, as tests/lab/flood.py sends them), until
the daemon has stored them; the hourly flush and the copy measured apart; "probing at the cap": a
day of probing at the most the defaults allow, behind a UPnP router (probing_day_cost). Also
reported: the daemon's own write_bytes (/proc/PID/io), the store's size. Budget: BUDGET_MB a quiet
day.
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from appliance.daemon import WAL_COPY_EVERY, WAL_COPY_QUIET  # noqa: E402
from appliance.probe.schedule import round_size  # noqa: E402
from appliance.settings import default  # noqa: E402
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


def settle(seconds: float, store: Path | None = None) -> None:
    """Let the kernel write back what is dirty, so that the count belongs to the phase that made it."""
    time.sleep(seconds)
    if store is None:
        os.sync()
    else:
        push(store)


def push(store: Path) -> None:
    """Write the store's files (the database, its WAL and shared-memory index) to the card now, as
    the kernel's write-back would within half a minute: their data, and the file system's record of
    any blocks they grew by. Not os.sync(): that also writes the times a file was last changed,
    which the image's `lazytime` keeps in memory (a day, or until the inode is written anyway), and
    would count a journal commit the card does not get at every write."""
    for suffix in ("", "-wal", "-shm"):
        try:
            fd = os.open(f"{store}{suffix}", os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)


def flush_and_copy_cost(work: Path, stored: Path) -> tuple[float, float]:
    """Bytes a quiet daemon's hourly status flush writes to the card (the status's changed parts, the
    hour's outbound contacts and pool members' sightings, in one transaction), and then the WAL's copy
    into the store once WAL_COPY_EVERY has passed (the hours' flushes copied at once): the daemon's
    own code (Daemon._status, Daemon._copy_the_wal) on a copy of the store the lab's daemon made, on a
    file system of its own, each step let through the file system's one-minute journal commit.
    Measured apart because a quiet run of an hour holds one flush and no copy."""
    from appliance import config as configuration
    from appliance.daemon import WAL_COPY_EVERY, WAL_COPY_QUIET, Daemon
    from appliance.store import runtime
    from appliance.store.db import Store

    with LoopDisk(work / "hourly.img", work / "hourly") as disk:
        store_path = work / "hourly" / "harvestwatch.sqlite"
        shutil.copy(stored, store_path)
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
        flushes = []
        for hour in range(round(WAL_COPY_EVERY / 3600)):
            now += 3600
            start = disk.written()
            changed = {**status, "heartbeat": now, "synced_heartbeat": now,
                       "counters": {**(status.get("counters") or {}), "flushes": hour}}
            contacts = {("2001:db8:1::1", "UDP", f"2001:db8:123::{n:x}", 123): (now - 60 * n, now - 60 * n + 1)
                        for n in range(12)}  # an hour of the appliance's own NTP and DNS
            daemon.unstored["contacts"] = contacts
            daemon.unstored["pool_seen"] = {tuple(row): now - 300 for row in members}  # the hour's pool answers
            daemon._status(changed, now, data_written=False)
            daemon._copy_the_wal(now)  # the daemon sees the write; no copy yet (WAL_COPY_EVERY)
            settle(65, store_path)
            flushes.append(disk.written() - start)
        copied = daemon.wal_copy_time
        start = disk.written()
        daemon._copy_the_wal(now + WAL_COPY_QUIET)  # quiet for two minutes, the last copy six hours ago
        settle(65, store_path)
        copy = disk.written() - start
        assert daemon.wal_copy_time != copied, "the WAL was not copied after WAL_COPY_EVERY"
        daemon.store.close()
    return sum(flushes) / len(flushes), copy


def wal_salt(store: Path) -> bytes:
    """The WAL header's salt: SQLite changes it each time the log starts over after a copy."""
    try:
        with open(f"{store}-wal", "rb") as wal:
            return wal.read(32)[16:24]
    except FileNotFoundError:
        return b""


class StandInRouter:
    """A router that grants every pinhole at once: the probing-day phase counts what the store writes,
    which the router's answers only decide; the real UPnP exchange (Debian's miniupnpd) is tested in
    tests/test_reachability_lab.py. Counts its renewals."""

    def __init__(self):
        self.location, self.next_uid, self.renewals = "stand-in", 1, 0

    def find(self) -> str:
        return self.location

    def status(self, source):
        from appliance.probe.pinholes import FirewallStatus
        return FirewallStatus(enabled=True, pinholes_allowed=True)

    def open(self, source, proto, port, lease) -> int:
        self.next_uid += 1
        return self.next_uid

    def renew(self, source, uid, lease) -> None:
        self.renewals += 1

    def close(self, source, uid) -> None:
        pass


def probing_day_cost(work: Path, stored: Path | None, hours: float, *, first_day: bool = False,
                     round_every: float | None = None) -> dict:
    """Bytes a day of probing at the appliance's cap writes to the card, behind a UPnP router: the
    steady state of `probe.max_live` (1,000) probe addresses watched for a week (so 143 probes a day,
    as on a real network whose pools name hundreds of servers), three pinholes each renewed at half
    their one-day lease, given back at the window's end. The windows end evenly spread over the day
    (the seed), so each hourly round holds the fewest probes it can at the cap (about six); on a real
    network they end as their probes left, in rounds. The prober's own code (ProbeScheduler,
    Prober._round, Reachability) and the daemon's (its reads every few seconds, the hourly status
    flush, the WAL copy rule) on a copy of the lab daemon's store, on a file system of its own, in
    simulated time: each simulated minute's writes are pushed to the card before the next (push),
    as the kernel would write them back a minute apart. The NTP packet and the probe address are
    not sent or made (stand-ins): only what is written is measured. `first_day`: a new appliance
    instead, no probe yet: full rounds (`probe.round_every` / `probe.min_gap`) until the cap is
    reached, the heaviest day of its week. `round_every`: instead of the default (0: one probe at a
    time, as before rounds)."""
    import random

    from appliance import config as configuration
    from appliance.daemon import Daemon
    from appliance.probe import prober as prober_module
    from appliance.probe.ntp import NtpReply
    from appliance.probe.prober import Prober
    from appliance.probe.reach import Reachability
    from appliance.probe.schedule import ProbeScheduler
    from appliance.probe.send import ProbeResult
    from appliance.store import runtime
    from appliance.store.db import Store

    rng = random.Random(17)
    with LoopDisk(work / "probing.img", work / "probing") as disk:
        db_path = work / "probing" / "harvestwatch.sqlite"
        if stored is not None:
            shutil.copy(stored, db_path)
        runtime.RUNTIME_DIR = str(work / "run")
        schedule = {} if round_every is None else {"probe": {"round_every": round_every}}
        conf = configuration.from_dict({"appliance": {"state_dir": str(work / "probing")}, **schedule})
        window, lease, live = conf.probe.observation, conf.reachability.lease, conf.probe.max_live
        per_day = live * 86400 / window
        clock = [time.time()]
        now = clock[0]
        # A week of probes already watched (and a week's before them, given back), as the cap keeps it.
        seed = Store(str(db_path))
        ports = Reachability(conf, seed, router=StandInRouter()).ports
        with seed.db:
            for n in range(0 if first_day else 2 * live):
                sent = now - (2 * live - n) * 86400 / per_day
                cursor = seed.db.execute(
                    "INSERT INTO probes(address, server, kind, port, planned, sent_at, sport, expires, reach) "
                    "VALUES (?,?,?,?,?,?,?,?,?)",
                    (f"2001:db8:1:1:{n >> 16:x}:{n & 0xffff:x}:a:1", f"2001:db8:123::{n % 400:x}", "ntp", 123,
                     sent - 0.1, sent, 40000 + n % 20000, sent + window, "pinholes"))
                expires = sent + window
                for proto, port in ports:
                    closed = expires if expires <= now else None
                    held = expires if closed else min(expires, now + lease / 2 + rng.random() * lease / 2)
                    seed.db.execute(
                        "INSERT INTO pinholes(probe_id, proto, port, uid, opened, held_until, closed) "
                        "VALUES (?,?,?,?,?,?,?)", (cursor.lastrowid, proto, port, None if closed else n,
                                                   sent - 0.1, held, closed))
        seed.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seed.close()

        daemon = Daemon(conf)
        daemon.store = Store(str(db_path))
        daemon._status(daemon.store.status(), now, data_written=True)
        router = StandInRouter()
        prober = Prober(conf, str(db_path), clock=lambda: clock[0], router=router)
        store = Store(str(db_path))
        prober.reach = Reachability(conf, store, router=router, clock=lambda: clock[0])
        minted = [0]

        def mint(interface, prefix, valid):
            minted[0] += 1
            return f"2001:db8:1:2:{minted[0] >> 16:x}:{minted[0] & 0xffff:x}:b:1"

        def sent(address, server, kind, timeout):
            answer = NtpReply(stratum=2, offset=0.001, delay=0.02, refid="GPS", leap=0) if kind == "ntp" else None
            return ProbeResult(kind=kind, source=address, server=server, port=123, sent_at=clock[0] + 0.01,
                               sport=40000, reply=answer, error=None)

        prober_module.addresses.mint_probe_address = mint
        prober_module.send.send_probe = sent
        daemon._copy_the_wal(now)
        os.sync()
        # The prober's own schedule: probes wait for a round, and for room under the cap (windows ending).
        scheduler = ProbeScheduler(conf.probe.kinds, server_interval=conf.probe.server_interval,
                                   min_gap=conf.probe.min_gap, round_every=conf.probe.round_every, first_delay=0,
                                   start=now, max_live=live)
        servers, history = [f"2001:db8:124::{n:x}" for n in range(live)], {}
        start, minutes, probes, rounds = disk.written(), int(hours * 60), 0, 0
        next_status = now + 3600
        by_kind: dict[str, list[int]] = {}  # what a simulated minute held -> [minutes, bytes]
        for minute in range(minutes):
            now = clock[0] = now + 60
            before, kinds = disk.written(), []
            mark = daemon.store.write_mark()
            prober.reach.maintain()  # as the prober's loop: pinholes kept, then what it gathered, if due
            prober._write_gathered(store, now)
            if daemon.store.write_mark() != mark:
                kinds.append("gathered")
            chosen = scheduler.choose(servers, history, now, len(store.watched_probes(now)))
            if chosen:
                prober._round(store, "lan0", "2001:db8:1:2::/64", chosen)
                scheduler.sent(now)
                for server, kind in chosen:
                    history[server] = (now, {kind: 1})
                probes += len(chosen)
                rounds += 1
                kinds.append("round")
            daemon.store.status()  # the daemon's reads (every 5 s; one a minute writes the same)
            if now >= next_status:
                daemon._status({"heartbeat": now, "synced_heartbeat": now}, now, data_written=False)
                next_status += 3600
                kinds.append("status")
            copied = daemon.wal_copy_time
            for step in range(0, 60, 5):  # the daemon's flushes: the WAL copied when its rule says
                daemon._copy_the_wal(now + step)
            if daemon.wal_copy_time != copied:
                kinds.append("WAL copy")
            push(db_path)
            seen = by_kind.setdefault(" + ".join(kinds) or "nothing", [0, 0])
            seen[0] += 1
            seen[1] += disk.written() - before
        written = disk.written() - start
        store.close()
        daemon.store.close()
    return {"first_day": first_day, "max_live": live, "hours": minutes / 60, "probes": probes, "rounds": rounds,
            "renewals": router.renewals,
            "per_day": written / (minutes / 60) * 24, "probes_per_day": per_day, "by_kind": by_kind}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/harvestwatch-bench")
    parser.add_argument("--quiet-minutes", type=float, default=65.0,
                        help="at least the longest of the daemon's write cadences (status and contacts: an hour)")
    parser.add_argument("--scans", type=int, default=200, help="scans in the busy hour")
    parser.add_argument("--probing-hours", type=float, default=24.0,
                        help="simulated hours of probing at the cap behind a UPnP router")
    parser.add_argument("--only-probing", action="store_true", help="only that phase (on a new store)")
    parser.add_argument("--round-every", type=float, help="probe.round_every for that phase (0: one probe at a "
                        "time); default: the setting's default")
    args = parser.parse_args()
    work = Path(args.work) / "writes"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if args.only_probing:
        for first_day in (False, True):
            print_probing(probing_day_cost(work, None, args.probing_hours, first_day=first_day,
                                           round_every=args.round_every))
        return 0
    state = work / "card"
    with LoopDisk(work / "card.img", state) as disk, \
            Lab(workdir=work / "lab", delay1=3, delay2=3600, router="open", harvesters={}) as lab:
        # Each server probed once a day (the default), as on a real day: the first round at start.
        config = write_config(lab, work / "config.toml", state_dir=state, router="open", server_interval=86400,
                              observation=86400, resolve_every=900)
        # The daemon's own flush cadence, not the lab's faster one.
        config.write_text(config.read_text().replace("flush_every = 2", "flush_every = 5"))
        daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
        # The start-up (the store made, the pools' members written, the first probe of each server)
        # happens once a boot: measured apart. The quiet hours start when it is over and its writes
        # are copied into the store (two quiet minutes, WAL_COPY_QUIET).
        started = time.monotonic()
        start_dev = disk.written()
        servers = len(lab.honest) + len(lab.harvesters)
        daemon.wait_for(lambda s: len(s.watched_probes(time.time())) >= servers, timeout=300)
        time.sleep(WAL_COPY_QUIET + 60)
        push(Path(daemon.db_path))
        startup_s, startup_dev = time.monotonic() - started, disk.written() - start_dev
        pid = daemon.process.pid

        start_dev, start_proc, started = disk.written(), process_written(pid), time.monotonic()
        salt = wal_salt(Path(daemon.db_path))
        time.sleep(args.quiet_minutes * 60)
        push(Path(daemon.db_path))
        copied_in_window = wal_salt(Path(daemon.db_path)) != salt
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
    flush, copy = flush_and_copy_cost(work, work / "stored.sqlite")
    probing = probing_day_cost(work, work / "stored.sqlite", args.probing_hours, round_every=args.round_every)
    first_day = probing_day_cost(work, work / "stored.sqlite", args.probing_hours, first_day=True,
                                 round_every=args.round_every)

    per_hour = quiet_dev / quiet_s * 3600
    # A quiet run shorter than an hour holds none of the hourly flushes: add them. The WAL's copies
    # (one every WAL_COPY_EVERY) are added at their measured cost, unless the run held one.
    flush_missing = flush if quiet_s < 3600 else 0.0
    copies = 0.0 if copied_in_window else 86400 / WAL_COPY_EVERY * copy
    # The quiet hours hold no probe (each server is probed once a day, at start-up here): add the day's
    # round (the lab's few servers fit in one), at what a round at the cap costs the card (the probing
    # phase's minutes with a round and nothing else: about six probes and older pinholes' news).
    count, written = probing["by_kind"].get("round", (1, 0))
    per_round = written / count
    day_rounds = math.ceil(servers / round_size(default("probe.round_every"), default("probe.min_gap")))
    quiet_day = (per_hour + flush_missing) * 24 + copies + day_rounds * per_round
    day = quiet_day + busy_dev - per_hour * min(busy_s, 3600) / 3600
    print(f"[hourly flush] the status, an hour's contacts and pool sightings: {flush / 1e3:.0f} KB each; "
          f"the WAL copied every {WAL_COPY_EVERY / 3600:.0f} h: {copy / 1e3:.0f} KB each")
    print(f"[start-up] the store made, {servers} servers probed, the WAL copied: card {startup_dev / 1e6:.2f} MB "
          f"in {startup_s / 60:.1f} min (once a boot)")
    print(f"[quiet] {quiet_s / 60:.1f} min, {probes} probes sent in all: card {quiet_dev / 1e6:.2f} MB "
          f"({per_hour / 1e6:.2f} MB/h{' + the hourly flush' if flush_missing else ''}, "
          f"{'a copy of the WAL in the run' if copied_in_window else f'{copies / 1e6:.2f} MB of WAL copies a day'}, "
          f"and the day's {servers} probes in {day_rounds} round{'s' if day_rounds > 1 else ''} at "
          f"{per_round / 1e3:.0f} KB each: {quiet_day / 1e6:.1f} MB a quiet day; "
          f"budget {BUDGET_MB:.0f} MB: "
          f"{'met' if quiet_day / 1e6 <= BUDGET_MB else 'MISSED'}); the daemon's own write_bytes "
          f"{quiet_proc / 1e6:.2f} MB")
    print(f"[busy hour] {args.scans} scans ({sent} packets), {stored} stored in {busy_s:.0f} s: card "
          f"{busy_dev / 1e6:.2f} MB; the daemon's own write_bytes {busy_proc / 1e6:.2f} MB")
    print_probing(probing)
    print_probing(first_day)
    print(f"[day] a quiet day with the busy hour in it: {day / 1e6:.1f} MB written to the card; store now "
          f"{size / 1e6:.1f} MB")
    return 0


def print_probing(figures: dict) -> None:
    what = (f"[probing, first day] a new appliance, no probe yet, up to {figures['max_live']} probe addresses"
            if figures["first_day"] else
            f"[probing at the cap] {figures['probes_per_day']:.0f} probes a day")
    print(f"{what} behind a UPnP router, "
          f"{figures['hours']:.0f} simulated hours ({figures['probes']} probes in {figures['rounds']} rounds, "
          f"{figures['renewals']} pinhole "
          f"renewals): {figures['per_day'] / 1e6:.1f} MB a day written to the card, status flush and WAL copies "
          f"included (budget {BUDGET_MB:.0f} MB a quiet day)")
    for kind, (count, written) in sorted(figures["by_kind"].items()):
        print(f"    minutes with {kind}: {count}, {written / count / 1e3:.1f} KB each, {written / 1e6:.2f} MB in all")


if __name__ == "__main__":
    raise SystemExit(main())
