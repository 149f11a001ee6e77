#!/usr/bin/env python3
"""Check the built image's boot partition for every Raspberry Pi model the image claims.

For each board: the firmware files it starts from, the `config.txt` lines that apply to it (read
with the firmware's own section filters: [all], [pi3], [pi4], [pi5], [pi400], [pi500], [cm4], ...),
the kernel and initramfs those lines name, the device tree it loads (its `device_tree=` if set,
else the board's own name) and, in the initramfs, the drivers it needs before the root filesystem
(its SD controller; for the Pi 5 also the RP1 south bridge and its Ethernet, force-loaded through
`/conf/modules` because nothing would load them in time otherwise).

Reads the image file directly (mtools; no loop device, no mount). Run by `make image` after the
image is written and by `make image-boot`; `python3 image/boot_partition.py IMAGE` prints one line
per board and exits 1 if any board lacks something.
"""
from __future__ import annotations

import argparse
import gzip
import json
import lzma
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_IMAGE = ROOT / "build/image/harvestwatch-trixie-arm64.img"

# The Pi 5's boot-time drivers (image/stage0/root/etc/initramfs-tools/modules): module name -> why.
PI5_EARLY = {
    "sdhci_brcmstb": "SD controller", "pinctrl_brcmstb_bcm2712": "SD pins", "gpio_brcmstb": "card-detect GPIO",
    "gpio_regulator": "SD supply", "fixed": "SD supply", "irq_bcm2712_mip": "PCIe MSI before RP1",
    "rp1_pci": "RP1 south bridge", "clk_rp1": "RP1 clocks", "pinctrl_rp1": "RP1 pins", "macb": "Ethernet",
    "broadcom": "Ethernet PHY",
}
PI3_FIRMWARE = ("bootcode.bin", "start.elf", "fixup.dat")
PI4_FIRMWARE = ("start4.elf", "fixup4.dat")


@dataclass(frozen=True)
class Board:
    name: str
    sections: frozenset[str]        # config.txt filters that apply to it
    firmware: tuple[str, ...]       # read from the partition before the kernel (none: in EEPROM)
    device_trees: tuple[str, ...]   # the board's own tree, under any name its firmware looks for
    sd_modules: tuple[str, ...]     # in the initramfs (found by udev, or force-loaded)
    forced: dict[str, str] = field(default_factory=dict)  # must also be listed in /conf/modules


BOARDS = (
    Board("Pi 3 B", frozenset({"all", "pi3"}), PI3_FIRMWARE, ("bcm2837-rpi-3-b.dtb",), ("bcm2835",)),
    Board("Pi 3 B+", frozenset({"all", "pi3", "pi3+"}), PI3_FIRMWARE, ("bcm2837-rpi-3-b-plus.dtb",), ("bcm2835",)),
    Board("Compute Module 3", frozenset({"all", "pi3", "cm3"}), PI3_FIRMWARE, ("bcm2837-rpi-cm3-io3.dtb",),
          ("bcm2835", "sdhci_iproc")),
    Board("Pi 4 B", frozenset({"all", "pi4"}), PI4_FIRMWARE, ("bcm2711-rpi-4-b.dtb",), ("sdhci_iproc",)),
    Board("Pi 400", frozenset({"all", "pi4", "pi400"}), PI4_FIRMWARE, ("bcm2711-rpi-400.dtb",), ("sdhci_iproc",)),
    Board("Compute Module 4", frozenset({"all", "pi4", "cm4"}), PI4_FIRMWARE, ("bcm2711-rpi-cm4-io.dtb",),
          ("sdhci_iproc",)),
    Board("Pi 5 B (C0 stepping)", frozenset({"all", "pi5"}), (), ("bcm2712-rpi-5-b.dtb",),
          ("sdhci_brcmstb",), PI5_EARLY),
    # Raspberry Pi's firmware looks for its own name of the D0 tree; Debian's kernel ships the other.
    Board("Pi 5 B (D0 stepping)", frozenset({"all", "pi5"}), (), ("bcm2712d0-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb"),
          ("sdhci_brcmstb",), PI5_EARLY),
    Board("Pi 500", frozenset({"all", "pi5", "pi500"}), (), ("bcm2712-rpi-500.dtb",), ("sdhci_brcmstb",), PI5_EARLY),
)


def config_for(text: str, sections: frozenset[str]) -> dict[str, str]:
    """The settings of config.txt that a board with these filters reads (the last one wins).
    `initramfs FILE [ADDRESS]` is kept under the key "initramfs" as FILE."""
    settings: dict[str, str] = {}
    applies = True
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            applies = line[1:-1].strip().lower() in sections
            continue
        if not applies:
            continue
        if line.startswith("initramfs "):
            settings["initramfs"] = line.split()[1]
        elif "=" in line:
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def cpio_members(data: bytes) -> dict[str, bytes]:
    """The files of an initramfs: one or more newc cpio archives, each plain or compressed
    (initramfs-tools may put an uncompressed early archive before the compressed main one)."""
    members: dict[str, bytes] = {}
    at = 0
    while at < len(data):
        if data[at:at + 1] == b"\0":
            at += 1
            continue
        if data[at:at + 6] == b"070701":
            while True:
                header = data[at:at + 110]
                if len(header) < 110 or header[:6] != b"070701":
                    raise ValueError(f"not a newc cpio header at byte {at}")
                fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
                size, name_size = fields[6], fields[11]
                name_end = at + 110 + name_size
                name = data[at + 110:name_end - 1].decode("utf-8", "replace")
                start = (name_end + 3) & ~3
                at = (start + size + 3) & ~3
                if name == "TRAILER!!!":
                    break
                members[name.removeprefix("./")] = data[start:start + size]
            continue
        members.update(cpio_members(decompress(data[at:])))
        break
    return members


def decompress(data: bytes) -> bytes:
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"\xfd7zXZ"):
        return lzma.decompress(data)
    raise ValueError(f"unknown initramfs compression (starts {data[:4].hex()})")


def module_names(members: dict[str, bytes]) -> set[str]:
    """Kernel modules in the initramfs, by the name modprobe uses (dashes as underscores)."""
    found = set()
    for path in members:
        match = re.search(r"/([^/]+)\.ko(\.xz|\.zst|\.gz)?$", path)
        if match and "/modules/" in path:
            found.add(match.group(1).replace("-", "_"))
    return found


def forced_modules(members: dict[str, bytes]) -> set[str]:
    listed = members.get("conf/modules", b"").decode("utf-8", "replace").splitlines()
    return {line.split()[0].replace("-", "_") for line in listed if line.strip() and not line.startswith("#")}


def check_board(board: Board, files: set[str], config_text: str, cmdline: str,
                initramfs_of: "callable[[str], dict[str, bytes] | None]") -> list[str]:
    """What this board would miss (empty: everything it needs is there and named)."""
    missing = [f"firmware {name}" for name in board.firmware if name not in files]
    if "config.txt" not in files:
        return missing + ["config.txt (the firmware boots nothing without it)"]
    settings = config_for(config_text, board.sections)
    if board.firmware and settings.get("arm_64bit") != "1":
        missing.append("arm_64bit=1 (the firmware would start the 64-bit kernel in 32-bit mode)")
    kernel, initramfs = settings.get("kernel"), settings.get("initramfs")
    if not kernel or kernel not in files:
        missing.append(f"the kernel config.txt names ({kernel or 'no kernel= line'})")
    if not initramfs or initramfs not in files:
        missing.append(f"the initramfs config.txt names ({initramfs or 'no initramfs line'})")
    tree = settings.get("device_tree")
    if tree:
        if tree not in files:
            missing.append(f"device_tree={tree}")
        elif settings.get("os_check") != "0" and tree not in board.device_trees:
            missing.append(f"os_check=0 (the firmware refuses a tree not named for the board: {tree})")
    elif not any(name in files for name in board.device_trees):
        missing.append(f"device tree {' or '.join(board.device_trees)}")
    if "root=LABEL=RASPIROOT" not in cmdline.split():
        missing.append("root=LABEL=RASPIROOT in cmdline.txt")
    members = initramfs_of(initramfs) if initramfs in files else None
    if members is not None:
        modules = module_names(members)
        forced = forced_modules(members)
        for name in board.sd_modules + ("ext4",):
            if name not in modules:
                missing.append(f"initramfs module {name}")
        for name, why in board.forced.items():
            if name not in modules:
                missing.append(f"initramfs module {name} ({why})")
            elif name not in forced:
                missing.append(f"{name} in the initramfs's /conf/modules ({why}: nothing else loads it in time)")
    return missing


def check_partition(directory: Path) -> dict[str, list[str]]:
    files = {path.name for path in directory.iterdir() if path.is_file()}
    config_text = (directory / "config.txt").read_text(errors="replace") if "config.txt" in files else ""
    cmdline = (directory / "cmdline.txt").read_text(errors="replace") if "cmdline.txt" in files else ""
    read: dict[str, dict[str, bytes]] = {}

    def initramfs_of(name: str) -> dict[str, bytes]:
        if name not in read:
            read[name] = cpio_members((directory / name).read_bytes())
        return read[name]

    return {board.name: check_board(board, files, config_text, cmdline, initramfs_of) for board in BOARDS}


def boot_offset(image: Path) -> int:
    """Where the boot (first) partition starts in the image, in bytes (mtools' `IMAGE@@OFFSET`)."""
    table = json.loads(subprocess.run(["sfdisk", "--json", str(image)], check=True, capture_output=True,
                                      text=True).stdout)
    return int(table["partitiontable"]["partitions"][0]["start"]) * 512


def extract_boot_partition(image: Path, into: Path) -> None:
    subprocess.run(["mcopy", "-s", "-n", "-p", "-m", "-i", f"{image}@@{boot_offset(image)}", "::/*", str(into)],
                   check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, nargs="?", default=DEFAULT_IMAGE)
    args = parser.parse_args()
    if not args.image.exists():
        print(f"boot-partition: {args.image} is missing: run `make image` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as work:
        extract_boot_partition(args.image, Path(work))
        results = check_partition(Path(work))
        config = (Path(work) / "config.txt").read_text(errors="replace")
    print("boot partition of", args.image)
    for name, missing in results.items():
        print(f"  {name:22s} {'ok' if not missing else 'MISSING: ' + '; '.join(missing)}")
    if any(results.values()):
        print("config.txt:\n" + config, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
