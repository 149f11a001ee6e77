#!/bin/sh
# Write a Raspberry Pi SD-card image from a root filesystem directory, without loop devices or
# mounts (so it works in containers and on hosts without a vfat module):
#   partition 1  FAT32 "RASPIFIRM"  the files of ROOTFS/boot/firmware (firmware, kernel, initrd, DTBs)
#   partition 2  ext4  "RASPIROOT"  everything else; sized to its content plus headroom, grown to
#                                   the card at first boot (harvestwatch-firstboot)
# usage: mkimage.sh ROOTFS IMAGE [BOOT_MIB [HEADROOM_MIB]]
set -eu

rootfs=${1:?usage: mkimage.sh ROOTFS IMAGE [BOOT_MIB [HEADROOM_MIB]]}
image=${2:?usage: mkimage.sh ROOTFS IMAGE [BOOT_MIB [HEADROOM_MIB]]}
boot_mib=${3:-256}
headroom_mib=${4:-384}
offset_mib=4        # partitions aligned to 4 MiB: SD cards erase in blocks of that order

[ -d "$rootfs/boot/firmware" ] || { echo "mkimage: $rootfs/boot/firmware is missing (raspi-firmware not installed?)" >&2; exit 1; }
[ -e "$rootfs/boot/firmware/config.txt" ] || { echo "mkimage: no config.txt in $rootfs/boot/firmware" >&2; exit 1; }

work=$(mktemp -d "$(dirname "$image")/.mkimage.XXXXXX")
firmware_aside="$work/firmware"
restore() {
    # Put the firmware files back into the root filesystem directory whatever happened.
    if [ -d "$firmware_aside" ]; then
        rmdir "$rootfs/boot/firmware" 2>/dev/null || true
        mv "$firmware_aside" "$rootfs/boot/firmware"
    fi
    rm -rf "$work"
}
trap restore EXIT INT TERM

# The boot partition's files go to FAT; the root filesystem keeps an empty mount point.
mv "$rootfs/boot/firmware" "$firmware_aside"
mkdir "$rootfs/boot/firmware"

used_mib=$(( $(du -s -k -x "$rootfs" | cut -f1) / 1024 ))
# ext4 metadata (inode tables, journal) takes about a tenth more than the files.
root_mib=$(( used_mib + used_mib / 10 + 64 + headroom_mib ))
total_mib=$(( offset_mib + boot_mib + root_mib ))

echo "mkimage: root files ${used_mib} MiB -> boot ${boot_mib} MiB + root ${root_mib} MiB = ${total_mib} MiB image"

mkfs.vfat -C -F 32 -n RASPIFIRM "$work/boot.fat" $(( boot_mib * 1024 )) >/dev/null
set -- "$firmware_aside"/*
mcopy -i "$work/boot.fat" -s -p -m -Q "$@" ::/

mkfs.ext4 -q -F -L RASPIROOT -d "$rootfs" "$work/root.ext4" "${root_mib}M"

rm -f "$image"
truncate -s "${total_mib}M" "$image"
sfdisk --quiet "$image" <<PARTITIONS
label: dos
unit: sectors
start=$(( offset_mib * 2048 )), size=$(( boot_mib * 2048 )), type=c
start=$(( (offset_mib + boot_mib) * 2048 )), size=$(( root_mib * 2048 )), type=83
PARTITIONS
dd if="$work/boot.fat" of="$image" bs=1M seek="$offset_mib" conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$image" bs=1M seek=$(( offset_mib + boot_mib )) conv=notrunc,sparse status=none

# Check what was written: both filesystems readable at their partitions' offsets.
fsck.vfat -n "$work/boot.fat" >/dev/null
e2fsck -f -n "$work/root.ext4" >/dev/null
echo "mkimage: wrote $image"
