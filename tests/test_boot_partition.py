"""The boot partition serves every Raspberry Pi the image claims (image/boot_partition.py).

The checker runs for real on the built image (`make image` runs it; the last test here reads the
image when one is built: a build takes 16-35 minutes, so `make test` does not make one). The other
tests give the checker a boot partition laid out the way raspi-firmware and initramfs-tools lay it
out, with this project's own stage-0 files (image/stage0/root: the per-model config.txt sections,
the initramfs module list), and take one thing away at a time: each board must notice what it
would miss on a real card.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from image import boot_partition as bp

ROOT = Path(__file__).resolve().parent.parent
STAGE0 = ROOT / "image/stage0/root/etc"
IMAGE = ROOT / "build/image/harvestwatch-trixie-arm64.img"
KERNEL = "7.3.4+deb13-arm64"
DTBS = ("bcm2837-rpi-3-b.dtb", "bcm2837-rpi-3-b-plus.dtb", "bcm2837-rpi-cm3-io3.dtb", "bcm2711-rpi-4-b.dtb",
        "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb", "bcm2712-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb")
MODULE_PATHS = {
    "sdhci-brcmstb": "drivers/mmc/host", "sdhci-iproc": "drivers/mmc/host", "bcm2835": "drivers/mmc/host",
    "pinctrl-brcmstb-bcm2712": "drivers/pinctrl/bcm", "gpio-brcmstb": "drivers/gpio",
    "gpio-regulator": "drivers/regulator", "fixed": "drivers/regulator", "irq-bcm2712-mip": "drivers/irqchip",
    "rp1_pci": "drivers/misc/rp1", "clk-rp1": "drivers/clk", "pinctrl-rp1": "drivers/pinctrl",
    "macb": "drivers/net/ethernet/cadence", "broadcom": "drivers/net/phy", "ext4": "fs/ext4",
}


def newc(members: dict[str, bytes]) -> bytes:
    out = bytearray()
    for number, (name, data) in enumerate(list(members.items()) + [("TRAILER!!!", b"")]):
        encoded = name.encode() + b"\0"
        fields = [number, 0o100644, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out += b"070701" + b"".join(b"%08X" % value for value in fields) + encoded
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def initramfs(modules: list[str], forced: list[str]) -> bytes:
    """An initramfs as mkinitramfs writes it: an uncompressed early archive, then the main one zstd'd."""
    members = {f"usr/lib/modules/{KERNEL}/kernel/{MODULE_PATHS[m]}/{m}.ko.xz": b"\x7fELF" for m in modules}
    members["conf/modules"] = "".join(f"{m}\n" for m in forced).encode()
    main = subprocess.run(["zstd", "-q", "-c"], input=newc(members), capture_output=True, check=True).stdout
    return newc({"kernel": b""}) + main


def stage0_modules() -> list[str]:
    lines = (STAGE0 / "initramfs-tools/modules").read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("#")]


def lay_out(path: Path, *, leave_out: tuple[str, ...] = (), modules: list[str] | None = None,
            forced: list[str] | None = None, custom: str | None = None) -> Path:
    """A boot partition as raspi-firmware's hook writes it, then this image's D0 hook."""
    path.mkdir()
    files = {name: b"firmware" for name in ("bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat")}
    files.update({name: b"\xd0\x0d\xfe\xed" for name in DTBS})
    files[f"vmlinuz-{KERNEL}"] = b"MZ"
    forced = stage0_modules() if forced is None else forced
    modules = sorted(set(forced) | {"sdhci-iproc", "bcm2835", "ext4"}) if modules is None else modules
    files[f"initrd.img-{KERNEL}"] = initramfs(modules, forced)
    custom = (STAGE0 / "default/raspi-firmware-custom").read_text() if custom is None else custom
    files["config.txt"] = (f"arm_64bit=1\n\nenable_uart=1\nupstream_kernel=1\n\nkernel=vmlinuz-{KERNEL}\n"
                           f"initramfs initrd.img-{KERNEL}\n# Inserted by /etc/default/raspi-firmware-custom\n"
                           + custom).encode()
    files["cmdline.txt"] = (b"console=ttyS1,115200 console=ttyAMA10,115200 console=tty0 root=LABEL=RASPIROOT rw "
                            b"fsck.repair=yes net.ifnames=0 cma=64M rootwait net.ifnames=0\n")
    for name, data in files.items():
        if name not in leave_out:
            (path / name).write_bytes(data)
    hook = STAGE0 / "kernel/postinst.d/z51-harvestwatch-pi5-d0"
    # The hook as the kernel's postinst runs it, pointed at this directory instead of /boot/firmware.
    script = hook.read_text().replace("firmware=/boot/firmware", f"firmware={path}")
    subprocess.run(["sh", "-c", script], check=True)
    return path


def failing(results: dict[str, list[str]]) -> dict[str, list[str]]:
    return {board: missing for board, missing in results.items() if missing}


def test_a_complete_partition_serves_every_board(tmp_path):
    results = bp.check_partition(lay_out(tmp_path / "boot"))
    assert failing(results) == {}
    assert {"Pi 3 B", "Pi 4 B", "Pi 5 B (C0 stepping)", "Pi 5 B (D0 stepping)", "Pi 500"} <= set(results)
    boot = tmp_path / "boot"
    assert (boot / "bcm2712d0-rpi-5-b.dtb").read_bytes() == (boot / "bcm2712-d-rpi-5-b.dtb").read_bytes()


def test_the_pi_3_needs_its_own_firmware_and_the_pi_4_its_own(tmp_path):
    results = failing(bp.check_partition(lay_out(tmp_path / "boot", leave_out=("bootcode.bin", "start4.elf"))))
    assert set(results) == {"Pi 3 B", "Pi 3 B+", "Compute Module 3", "Pi 4 B", "Pi 400", "Compute Module 4"}
    assert results["Pi 3 B"] == ["firmware bootcode.bin"]
    assert results["Pi 400"] == ["firmware start4.elf"]


def test_each_board_needs_its_device_tree(tmp_path):
    results = failing(bp.check_partition(lay_out(tmp_path / "boot", leave_out=("bcm2711-rpi-4-b.dtb",
                                                                                 "bcm2712-rpi-5-b.dtb"))))
    assert set(results) == {"Pi 4 B", "Pi 5 B (C0 stepping)"}
    assert results["Pi 5 B (C0 stepping)"] == ["device tree bcm2712-rpi-5-b.dtb"]


def test_without_the_d0_tree_the_newer_pi_5_and_the_pi_500_miss_it(tmp_path):
    results = failing(bp.check_partition(lay_out(tmp_path / "boot", leave_out=("bcm2712-d-rpi-5-b.dtb",))))
    assert set(results) == {"Pi 5 B (D0 stepping)", "Pi 500"}
    assert results["Pi 500"] == ["device_tree=bcm2712-d-rpi-5-b.dtb"]


def test_a_pi_500_given_another_boards_tree_needs_the_os_check_off(tmp_path):
    custom = (STAGE0 / "default/raspi-firmware-custom").read_text().replace("os_check=0\n", "")
    results = failing(bp.check_partition(lay_out(tmp_path / "boot", custom=custom)))
    assert list(results) == ["Pi 500"]
    assert "os_check=0" in results["Pi 500"][0]


def test_a_pi_5_driver_left_to_udev_is_too_late(tmp_path):
    forced = [m for m in stage0_modules() if m != "irq-bcm2712-mip"]
    modules = sorted(set(stage0_modules()) | {"sdhci-iproc", "bcm2835", "ext4"})
    results = failing(bp.check_partition(lay_out(tmp_path / "boot", forced=forced, modules=modules)))
    assert set(results) == {"Pi 5 B (C0 stepping)", "Pi 5 B (D0 stepping)", "Pi 500"}
    assert results["Pi 500"] == ["irq_bcm2712_mip in the initramfs's /conf/modules "
                                 "(PCIe MSI before RP1: nothing else loads it in time)"]


def test_a_missing_sd_driver_is_named_for_the_boards_that_need_it(tmp_path):
    modules = sorted(set(stage0_modules()) | {"bcm2835", "ext4"})  # no sdhci-iproc
    results = failing(bp.check_partition(lay_out(tmp_path / "boot", modules=modules)))
    assert set(results) == {"Compute Module 3", "Pi 4 B", "Pi 400", "Compute Module 4"}
    assert results["Pi 4 B"] == ["initramfs module sdhci_iproc"]


def test_config_sections_apply_only_to_their_boards():
    text = "kernel=a\n[pi4]\nkernel=b\n[pi5]\nkernel=c\n[pi500]\nkernel=d\n[all]\narm_64bit=1\n"
    assert bp.config_for(text, frozenset({"all", "pi3"})) == {"kernel": "a", "arm_64bit": "1"}
    assert bp.config_for(text, frozenset({"all", "pi4", "pi400"}))["kernel"] == "b"
    assert bp.config_for(text, frozenset({"all", "pi5"}))["kernel"] == "c"
    assert bp.config_for(text, frozenset({"all", "pi5", "pi500"}))["kernel"] == "d"


@pytest.mark.skipif(not IMAGE.exists(), reason="no built image (make image: 16-35 min, not part of make test)")
def test_the_built_image_serves_every_board():
    result = subprocess.run(["python3", str(ROOT / "image/boot_partition.py"), str(IMAGE)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
