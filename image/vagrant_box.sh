#!/bin/sh
# Build a vagrant-libvirt box for QEMU's aarch64 `virt` board from the image build's stage-0 root
# filesystem (the same Debian arm64 system, with Debian's generic arm64 kernel): the Vagrant user
# with Vagrant's well-known insecure key (replaced by vagrant up), DHCP on eth0, an ext4 disk.
# The box carries the kernel and initramfs; its Vagrantfile boots them directly under UEFI.
# usage: vagrant_box.sh ROOTFS_TARBALL BOX_FILE
set -eu
tarball=${1:?usage: vagrant_box.sh ROOTFS_TARBALL BOX_FILE}
box=${2:?usage: vagrant_box.sh ROOTFS_TARBALL BOX_FILE}
here=$(cd "$(dirname "$0")" && pwd)
insecure_key=$(dpkg -L vagrant 2>/dev/null | grep '/keys/vagrant.pub$' | head -n1)
[ -n "$insecure_key" ] || { echo "vagrant_box: Vagrant's insecure public key not found (apt-get install vagrant)" >&2; exit 1; }

work=$(mktemp -d "$(dirname "$box")/.vagrant-box.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/rootfs
mkdir -p "$root" "$work/box"
tar --numeric-owner --xattrs --xattrs-include='*' -xpf "$tarball" -C "$root"

in_root() { chroot "$root" "$@"; }
in_root useradd --create-home --shell /bin/bash --user-group vagrant
install -d -m 0700 "$root/home/vagrant/.ssh"
install -m 0600 "$insecure_key" "$root/home/vagrant/.ssh/authorized_keys"
in_root chown -R vagrant:vagrant /home/vagrant/.ssh
printf 'vagrant ALL=(ALL) NOPASSWD: ALL\n' > "$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
printf 'LABEL=VAGRANTROOT  /  ext4  rw,errors=remount-ro  0  1\n' > "$root/etc/fstab"
printf 'harvestwatch-vagrant\n' > "$root/etc/hostname"
printf 'auto eth0\niface eth0 inet dhcp\niface eth0 inet6 auto\n' > "$root/etc/network/interfaces.d/eth0"
: > "$root/etc/machine-id"
rm -f "$root/etc/resolv.conf"

cp -L "$root/vmlinuz" "$work/box/vmlinuz"
cp -L "$root/initrd.img" "$work/box/initrd.img"
mkfs.ext4 -q -F -L VAGRANTROOT -d "$root" "$work/root.ext4" 8G
qemu-img convert -f raw -O qcow2 "$work/root.ext4" "$work/box/box.img"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}\n' > "$work/box/metadata.json"
cp "$here/box.Vagrantfile" "$work/box/Vagrantfile"
tar -C "$work/box" -czf "$box" metadata.json Vagrantfile box.img vmlinuz initrd.img
echo "vagrant_box: wrote $box ($(du -h "$box" | cut -f1))"
