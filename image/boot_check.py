#!/usr/bin/env python3
"""`make image-boot`: boot the built SD-card image under qemu-system-aarch64 and check the appliance.

The image itself (both partitions, grown to a 4 GiB "card") boots on QEMU's `virt` board under
software emulation (TCG), with the image's own kernel and initramfs (kept beside the image by the
build) and root=LABEL=RASPIROOT as on a Pi. A fresh SSH key is put on the boot partition as
harvestwatch/authorized_keys, the way a user adds one after flashing, so the check also proves the
first-boot key import, host-key generation and the root filesystem growing to the card.

Network safety: QEMU's user-mode network runs with restrict=on, so the guest reaches nothing (no
NTP pool, no DNS); only the forwarded SSH and page ports on 127.0.0.1 reach it.

The clock, as on a Pi: the board's real-time clock starts CLOCK_BEHIND_DAYS in the past (a Pi has
none and boots at its image's date), so the appliance must wait. With no NTP server in reach, the
check plays chrony's part once the waiting is seen: it steps the guest's clock to this machine's
time and turns on chronyd's local reference, so that chronyd reports itself synchronised. The
daemon only ever hears chronyd's report. While the daemon waits, the guest sends one NTP query to a
documentation address on its link, which the daemon must hold and store with its true time; the
check then requires that the store holds it, that nothing there carries a time from before the step
(every stamp at or after the true time of boot) and that no gap ends before it starts. The boot
firewall must have been in force before ifupdown brought any interface up.

Prints the time to multi-user, what was checked and a log excerpt; exits 1 if a check failed.
"""
from __future__ import annotations

import argparse
import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "image"))
from boot_partition import boot_offset, config_for, extract_boot_partition  # noqa: E402 (a sibling script)

DEFAULT_IMAGE = ROOT / "build/image/harvestwatch-trixie-arm64.img"
ADMIN = "hwadmin"
CLOCK_BEHIND_DAYS = 200
STORE = "/var/lib/harvestwatch/harvestwatch.sqlite"
VENV_PYTHON = "/opt/harvestwatch/venv/bin/python"
# Every wall-clock time the store keeps, and the gaps that must not end before they start.
WAIT_ADDRESS, WAIT_SERVER = "2001:db8:b007::2", "2001:db8:b007::123"
SEND_NTP = r"""
import socket, sys
with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
    s.sendto(b"\x23" + bytes(47), (sys.argv[1], 123))
"""
STORE_TIMES = r"""
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
stamps = {}
for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
    for column in [row[1] for row in db.execute(f"PRAGMA table_info({table})")]:
        if column in ("start", "end", "first_seen", "last_seen", "planned", "sent_at", "expires", "first_ts",
                      "last_ts", "ts", "opened", "held_until", "imported_at"):
            low = db.execute(f'SELECT min("{column}"), count("{column}") FROM "{table}"').fetchone()
            if low[1]:
                stamps[f"{table}.{column}"] = low
backwards = db.execute("SELECT count(*) FROM gaps WHERE end < start").fetchone()[0]
print(json.dumps({"stamps": stamps, "backwards_gaps": backwards}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_disk(image: Path, work: Path, size: str) -> Path:
    disk = work / "card.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "boot-check", "-f", str(work / "key")],
                   check=True)
    subprocess.run(["mcopy", "-o", "-i", f"{disk}@@{boot_offset(disk)}", str(work / "key.pub"),
                    "::harvestwatch/authorized_keys"], check=True)
    subprocess.run(["qemu-img", "resize", "-q", "-f", "raw", str(disk), size], check=True)
    return disk


def boot_files(disk: Path, work: Path) -> dict[str, Path | str]:
    """What a Raspberry Pi's firmware hands the kernel, read from the card's boot partition: the kernel
    and initramfs config.txt names, the Pi 3 B's device tree and cmdline.txt."""
    boot = work / "boot"
    boot.mkdir(exist_ok=True)
    extract_boot_partition(disk, boot)
    settings = config_for((boot / "config.txt").read_text(), frozenset({"all", "pi3"}))
    return {"kernel": boot / settings["kernel"], "initrd": boot / settings["initramfs"],
            "dtb": boot / "bcm2837-rpi-3-b.dtb", "cmdline": (boot / "cmdline.txt").read_text().strip()}


def start_vm(board: str, disk: Path, virt: Path, work: Path, ssh_port: int, page_port: int, cpus: int,
             memory: int, rtc_base: str) -> subprocess.Popen:
    forwards = f"hostfwd=tcp:127.0.0.1:{ssh_port}-:22,hostfwd=tcp:127.0.0.1:{page_port}-:80"
    if board == "raspi3b":
        # The Pi's own boot path: the files its firmware would load, its board (4 cores, 1 GiB), the card
        # on the SD controller, and the LAN through USB as on a real Pi 3 (its Ethernet is a USB device).
        # A Raspberry Pi address (b8:27:eb, universally administered) so the kernel calls it eth0.
        files = boot_files(disk, work)
        print(f"raspi3b boots {files['kernel'].name}, {files['initrd'].name}, {files['dtb'].name}; "
              f"cmdline.txt: {files['cmdline']}")
        command = [
            "qemu-system-aarch64", "-M", "raspi3b", "-nographic", "-no-reboot",
            "-kernel", str(files["kernel"]), "-initrd", str(files["initrd"]), "-dtb", str(files["dtb"]),
            "-append", files["cmdline"], "-drive", f"file={disk},format=raw,if=sd",
            "-netdev", f"user,id=lan,restrict=on,{forwards}", "-device", "usb-net,netdev=lan,mac=b8:27:eb:00:0b:07",
            # the PL011 unused (it drives nothing on a Pi 3 with this tree); the mini UART, ttyS1, is the console
            "-serial", "null", "-serial", "stdio", "-monitor", "none",
        ]
    else:
        cmdline = "root=LABEL=RASPIROOT rw rootwait console=ttyAMA0 net.ifnames=0"
        command = [
            "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", str(cpus), "-m", str(memory),
            "-nographic", "-no-reboot", "-rtc", f"base={rtc_base},clock=host",
            "-kernel", str(virt / "vmlinuz"), "-initrd", str(virt / "initrd.img"), "-append", cmdline,
            "-drive", f"file={disk},format=raw,if=virtio",
            "-netdev", f"user,id=lan,restrict=on,{forwards}", "-device", "virtio-net-pci,netdev=lan",
        ]
    console = open(work / "console.log", "wb")
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)


def ssh(work: Path, port: int, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
    argv = ["ssh", "-q", "-i", str(work / "key"), "-p", str(port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            f"{ADMIN}@127.0.0.1", command]
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        # An emulated CPU can be very slow; report it as this command's failure, not the check's.
        return subprocess.CompletedProcess(argv, 124, "", f"(no answer within {timeout:.0f} s)")


def monotonic_of(work: Path, port: int, unit: str, what: str) -> int:
    """A unit's timestamp in microseconds since boot (0: never, or no such unit)."""
    out = ssh(work, port, f"systemctl show -p {what}TimestampMonotonic --value {unit}").stdout.strip()
    return int(out) if out.isdigit() else 0


def check_boot_firewall(work: Path, port: int) -> list[str]:
    """The boot firewall in force before ifupdown started on any interface."""
    ready = monotonic_of(work, port, "harvestwatch-firewall.service", "ActiveEnter")
    starts = {unit: monotonic_of(work, port, unit, "InactiveExit")
              for unit in ("networking.service", "ifup@eth0.service")}
    starts = {unit: at for unit, at in starts.items() if at}
    print(f"--- boot firewall in force at {ready / 1e6:.2f} s after boot; network units started at "
          + (", ".join(f"{unit} {at / 1e6:.2f} s" for unit, at in starts.items()) or "(none found)"))
    if not ready:
        return ["the boot firewall unit never became active"]
    if not starts:
        return ["no network unit found to compare the boot firewall with"]
    late = [unit for unit, at in starts.items() if at < ready]
    return [f"the boot firewall came after {', '.join(late)}"] if late else []


def check_saved_clock(work: Path, port: int) -> list[str]:
    """fake-hwclock restored the time saved when the image was made, early in the boot: the board's
    clock starts far behind (virt: CLOCK_BEHIND_DAYS; a Pi 3 has no clock and starts in 1970), and
    without the restore it would still be behind the saved time. Before check_clock, which steps it."""
    # fake-hwclock-load is a oneshot that does not stay active: its result and when it finished tell.
    result = ssh(work, port, "systemctl show -p Result --value fake-hwclock-load.service; "
                             "saved=$(sudo cat /etc/fake-hwclock.data); "
                             "echo \"saved $saved UTC\"; echo \"now   $(date -u '+%F %T') UTC\"; "
                             "[ \"$(date -u +%s)\" -ge \"$(date -u -d \"$saved\" +%s)\" ] "
                             "&& echo 'not behind the saved clock' || echo 'BEHIND the saved clock'; "
                             "echo \"restored $(systemctl show -p ExecMainExitTimestampMonotonic --value "
                             "fake-hwclock-load.service) us after boot\"; "
                             "systemctl is-enabled harvestwatch-clock-save.timer")
    print(f"--- the saved clock (fake-hwclock)\n{(result.stdout + result.stderr).rstrip()}")
    lines = result.stdout.splitlines()
    restored_at = next((int(line.split()[1]) for line in lines if line.startswith("restored ")
                        and line.split()[1].isdigit()), 0)
    if lines and lines[0].strip() == "success" and "not behind the saved clock" in result.stdout \
            and 0 < restored_at < 300_000_000 and result.stdout.rstrip().endswith("enabled"):
        return []
    return [f"the saved clock was not restored early: {result.stdout.strip()[:300]}"]


def check_clock(work: Path, port: int) -> list[str]:
    """Waiting while chronyd is unsynchronised, nothing stamped with the wrong clock after."""
    failures = []
    status = "sudo harvestwatch status | grep -m1 '^clock:'"
    waiting = ""
    for _ in range(40):
        waiting = ssh(work, port, status).stdout.strip()
        if waiting:
            break
        time.sleep(3)
    guest = ssh(work, port, "date -u +%s; cut -d' ' -f1 /proc/uptime").stdout.split()
    print(f"--- clock before synchronisation: guest {time.strftime('%F %T', time.gmtime(int(guest[0])))} UTC, "
          f"this machine {time.strftime('%F %T', time.gmtime())} UTC\n{waiting}")
    if "WAITING" not in waiting:
        failures.append(f"the daemon did not say it waits for the clock: {waiting!r}")
    # Something to record while the clock is wrong: an NTP query to a documentation address (on-link,
    # so it goes no further than the guest's own link; QEMU's restricted network drops it anyway).
    sent = ssh(work, port, f"sudo ip -6 addr add {WAIT_ADDRESS}/64 dev eth0 nodad && sudo "
                           f"{VENV_PYTHON} -c {shlex.quote(SEND_NTP)} {WAIT_SERVER}")
    if sent.returncode != 0:
        failures.append(f"could not send the query made while the clock waits: {sent.stderr.strip()[:200]}")
    # chronyd's part: the true time, then synchronised (its local reference; no NTP server in reach).
    stepped = time.time()
    uptime = float(ssh(work, port, f"sudo date -u -s @{stepped:.3f} >/dev/null; cut -d' ' -f1 /proc/uptime"
                       ).stdout.strip() or 0)
    ssh(work, port, "sudo chronyc local stratum 10")
    said = ""
    for _ in range(40):
        said = ssh(work, port, status).stdout.strip()
        if said and "WAITING" not in said:
            break
        time.sleep(3)
    print(f"after the step and chronyd's report: {said}")
    if not said.startswith("clock: ") or "WAITING" in said:
        failures.append(f"the daemon did not see the clock synchronised: {said!r}")
    time.sleep(15)  # a flush or two with the right clock
    booted = stepped - uptime  # the true time of boot
    found = ssh(work, port, f"sudo {VENV_PYTHON} -c {shlex.quote(STORE_TIMES)} {STORE}")
    try:
        store = json.loads(found.stdout)
    except ValueError:
        return failures + [f"cannot read the store's times: {found.stderr.strip()[:200]}"]
    early = {name: low for name, (low, _) in store["stamps"].items() if low < booted - 5}
    if store["stamps"]:
        print(f"store: {sum(n for _, n in store['stamps'].values())} times in {', '.join(store['stamps'])}, "
              f"the earliest {min(low for low, _ in store['stamps'].values()) - booted:+.1f} s from the true "
              f"boot; gaps ending before they start: {store['backwards_gaps']}")
    else:
        failures.append("nothing was stored: the query sent while the clock waited should have been")
    if early:
        failures.append("stamped with the wrong clock: " + ", ".join(
            f"{name} {time.strftime('%F %T', time.gmtime(low))}" for name, low in early.items()))
    if store["backwards_gaps"]:
        failures.append(f"{store['backwards_gaps']} gap(s) end before they start")
    print(ssh(work, port, "sudo journalctl -b -u harvestwatch --no-pager -o short-monotonic | "
                          "grep -i -m5 -e clock -e synchronis").stdout.rstrip())
    return failures


def measure_card_writes(work: Path, port: int, minutes: float) -> float:
    """Everything the booted image writes to its card (the block device's own count of sectors
    written: the appliance, apt, chrony, logins, the saved clock, the file system's journal) over
    `minutes` of a quiet appliance (no scans reach it: QEMU's network is restricted), in MB a day."""
    disk = ssh(work, port, "lsblk -no pkname \"$(findmnt -no source /)\"").stdout.strip()

    def sectors() -> int:
        ssh(work, port, "sync")
        fields = ssh(work, port, f"cat /sys/block/{disk}/stat").stdout.split()
        return int(fields[6]) if len(fields) > 6 else 0

    first, started = sectors(), time.monotonic()
    time.sleep(minutes * 60)
    written, elapsed = (sectors() - first) * 512, time.monotonic() - started
    per_day = written / elapsed * 86400 / 1e6
    print(f"--- card writes: {written / 1e6:.2f} MB to /dev/{disk} in {elapsed / 60:.1f} quiet minutes: "
          f"{per_day:.1f} MB a day at that pace")
    return per_day


def boot_and_check(board: str, args: argparse.Namespace, virt: Path) -> tuple[list[str], dict[str, float]]:
    """Boot a fresh copy of the image on one QEMU board and run every check; (failures, times)."""
    work = args.work / board
    print(f"===== {board} =====")
    work.mkdir(parents=True)
    disk = prepare_disk(args.image, work, args.card_size)
    ssh_port, page_port = free_port(), free_port()

    started = time.monotonic()
    rtc_base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - CLOCK_BEHIND_DAYS * 86400))
    vm = start_vm(board, disk, virt, work, ssh_port, page_port, args.cpus, args.memory, rtc_base)
    if board == "virt":
        print(f"the board's clock starts at {rtc_base} UTC, {CLOCK_BEHIND_DAYS} days behind")
    failures: list[str] = []
    times: dict[str, float] = {}
    try:
        reached = None
        deadline = started + args.timeout
        while time.monotonic() < deadline and vm.poll() is None:
            try:
                if ssh(work, ssh_port, "true", timeout=20).returncode == 0:
                    reached = time.monotonic() - started
                    times["ssh"] = reached
                    break
            except OSError:
                pass
            time.sleep(3)
        if reached is None:
            print(f"boot-check: no SSH within {args.timeout:.0f} s; console: {work / 'console.log'}",
                  file=sys.stderr)
            print((work / "console.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            return [f"no SSH within {args.timeout:.0f} s"], times
        print(f"SSH answered (first-boot key import worked) {reached:.1f} s after QEMU started")

        state = ssh(work, ssh_port, "systemctl is-system-running --wait", timeout=600).stdout.strip()
        booted = time.monotonic() - started
        times["multi-user"] = booted
        print(f"system state: {state} ({booted:.1f} s after QEMU started)")
        if state not in ("running", "degraded"):
            failures.append(f"system state {state}")
        if state == "degraded":
            print(ssh(work, ssh_port, "systemctl --failed --no-legend").stdout)
        print(ssh(work, ssh_port, "systemd-analyze time").stdout.strip())

        units = ["harvestwatch-firewall.service", "harvestwatch.service", "harvestwatch-page.service",
                 "harvestwatch-firstboot.service", "ssh.service", "chrony.service", "avahi-daemon.service"]
        for unit in units:
            active = ssh(work, ssh_port, f"systemctl is-active {unit}").stdout.strip()
            print(f"  {unit:34s} {active}")
            if active != "active":
                failures.append(f"{unit} {active}")

        failures += check_boot_firewall(work, ssh_port)
        failures += check_saved_clock(work, ssh_port)
        failures += check_clock(work, ssh_port)

        # The page, from "the LAN" (QEMU's user network; 10.0.2.2 is in the LAN ranges).
        # The daemon may take a moment after its unit is active to create the store.
        page = ""
        for _ in range(20):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{page_port}/", timeout=10) as response:
                    page = response.read().decode("utf-8", "replace")
                    break
            except OSError as exc:
                page = f"error: {exc}"
                time.sleep(3)
        ok_page = "HarvestWatch" in page
        print(f"status page from the LAN side: {'HarvestWatch page served' if ok_page else page[:200]}")
        if not ok_page:
            failures.append("status page")

        # Each check: (command, judge). A judge takes the command's result and names what failed, if anything.
        def grown(result):
            size = result.stdout.split()[0] if result.stdout.split() else ""
            return None if size.isdigit() and int(size) >= 3000 else f"root filesystem not grown ({size} MiB)"

        def verified(result):
            return None if result.returncode == 0 else "firewall not in force (harvestwatch firewall verify)"

        def updates_on(result):
            wanted = ('APT::Periodic::Unattended-Upgrade "1";', 'Unattended-Upgrade::Automatic-Reboot "true";',
                      "apt-daily-upgrade.timer enabled", "codename=trixie-backports,label=Debian Backports")
            missing = [line for line in wanted if line not in result.stdout]
            return f"security updates not set up: {missing}" if missing else None

        def privacy_from_boot(result):
            # eth0 exists before the sysctls are applied at boot: only its own lines in the drop-in reach it.
            wanted = ("net.ipv6.conf.eth0.use_tempaddr = 2", "net.ipv6.conf.eth0.temp_prefered_lft = 1200",
                      "net.ipv6.conf.eth0.temp_valid_lft = 2400", "restored by the daemon: 0")
            missing = [line for line in wanted if line not in result.stdout]
            return f"privacy sysctls not in force on eth0 from boot: {missing}" if missing else None

        def journal_shows(result):
            wanted = ("fake-hwclock", "harvestwatch-firewall", "harvestwatch.service", "apt-daily-upgrade.timer")
            missing = [unit for unit in wanted if unit not in result.stdout]
            return f"the journal does not show {missing}" if missing else None

        checks = {
            "board and kernel": ("tr -d '\\0' < /proc/device-tree/model; echo; uname -r", None),
            "root filesystem grown to the card (MiB)": ("df -B1M --output=size,used,target / | tail -n1", grown),
            "this card's own SSH host key": ("ssh-keygen -l -f /etc/ssh/ssh_host_ed25519_key.pub", None),
            "machine id made at first boot": ("cat /etc/machine-id", None),
            "hostname": ("hostname", None),
            "privacy sysctls on eth0 from boot (none restored by the daemon)": (
                "/usr/sbin/sysctl net.ipv6.conf.eth0.use_tempaddr net.ipv6.conf.eth0.temp_prefered_lft "
                "net.ipv6.conf.eth0.temp_valid_lft; echo \"restored by the daemon: "
                "$(sudo journalctl -b -u harvestwatch --no-pager | grep -c 'privacy addresses: .*restored')\"",
                privacy_from_boot),
            "firewall chains (legacy ip6tables)": ("sudo ip6tables-legacy -S | grep -c '^-A HW-' ", None),
            "iptables default": ("readlink -f /etc/alternatives/ip6tables", None),
            "firewall verified by the appliance": ("sudo harvestwatch firewall verify", verified),
            "daemon": ("sudo harvestwatch status | head -n 14", None),
            "security updates (unattended-upgrades, apt's timers)": (
                "apt-config dump | grep -E '^(APT::Periodic::Unattended-Upgrade|Unattended-Upgrade::Automatic-Reboot)"
                " |Backports'; echo \"apt-daily-upgrade.timer $(systemctl is-enabled apt-daily-upgrade.timer)\"; "
                "sudo harvestwatch status | grep '^security updates'", updates_on),
            "journal: saved clock, firewall, daemon, update timer": (
                "sudo journalctl -b --no-pager -o short-monotonic -u fake-hwclock-load -u harvestwatch-firewall "
                "-u harvestwatch -u apt-daily-upgrade.timer | grep -E 'Start|Finish|fake-hwclock' | head -n 12; "
                "sudo journalctl -b --no-pager -o short-monotonic | grep -m3 -E 'fake-hwclock|apt-daily-upgrade.timer'",
                journal_shows),
            "journal (harvestwatch)": ("sudo journalctl -b -u harvestwatch -u harvestwatch-firstboot --no-pager "
                                       "-o short-monotonic | tail -n 15", None),
        }
        for title, (command, judge) in checks.items():
            result = ssh(work, ssh_port, command)
            print(f"--- {title}\n{(result.stdout + result.stderr).rstrip()}")
            failure = judge(result) if judge else None
            if failure:
                failures.append(failure)

        if args.writes_minutes:
            times["card MB/day"] = measure_card_writes(work, ssh_port, args.writes_minutes)

        ssh(work, ssh_port, "sudo systemctl poweroff", timeout=30)
        try:
            vm.wait(timeout=120)
        except subprocess.TimeoutExpired:
            failures.append("no clean power-off within 120 s")
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()
    print(f"{board}: {'FAILED: ' + '; '.join(failures) if failures else 'all checks passed'}"
          f" (console log: {work / 'console.log'})")
    return failures, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--work", type=Path, default=Path("/tmp/harvestwatch-boot-check"))
    parser.add_argument("--card-size", default="4G")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for SSH")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--memory", type=int, default=1024, help="MiB (virt; the raspi3b board has 1 GiB)")
    parser.add_argument("--writes-minutes", type=float, default=0,
                        help="after the checks, measure what the image writes to its card for this long")
    parser.add_argument("--boards", nargs="+", choices=("virt", "raspi3b"), default=["virt", "raspi3b"],
                        help="QEMU boards to boot the image on, one after the other")
    args = parser.parse_args()

    virt = args.image.parent / "virt"
    for needed in (args.image, virt / "vmlinuz", virt / "initrd.img"):
        if not needed.exists():
            print(f"boot-check: {needed} is missing: run `make image` first", file=sys.stderr)
            return 2
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    results = {board: boot_and_check(board, args, virt) for board in args.boards}
    print("\nboard     SSH after   multi-user after   card writes   result")
    for board, (failures, times) in results.items():
        writes = f"{times['card MB/day']:6.1f} MB/day" if "card MB/day" in times else " " * 13
        print(f"{board:9s} {times.get('ssh', float('nan')):7.0f} s   {times.get('multi-user', float('nan')):12.0f} s"
              f"   {writes}   {'FAILED: ' + '; '.join(failures) if failures else 'all checks passed'}")
    failed = [board for board, (failures, _) in results.items() if failures]
    print(f"boot-check: {'FAILED on ' + ', '.join(failed) if failed else 'all checks passed on ' + ', '.join(results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
