#!/bin/sh
# Make libvirt usable for vagrant-libvirt on this host: its daemons running (started by hand where
# systemd is not PID 1, as in containers) and a `default` storage pool for box volumes.
set -eu
if [ "$(ps -p 1 -o comm=)" = systemd ]; then
    systemctl start virtlogd.service libvirtd.service
else
    pgrep -x virtlogd >/dev/null || virtlogd -d
    pgrep -x libvirtd >/dev/null || libvirtd -d
    for _ in $(seq 1 30); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 1; done
fi
if ! virsh -c qemu:///system pool-info default >/dev/null 2>&1; then
    virsh -c qemu:///system pool-define-as default dir --target /var/lib/libvirt/images
    virsh -c qemu:///system pool-build default
    virsh -c qemu:///system pool-start default
    virsh -c qemu:///system pool-autostart default
fi
virsh -c qemu:///system pool-info default | grep -q running || virsh -c qemu:///system pool-start default
echo "libvirt: $(virsh -c qemu:///system version | grep -i 'running hypervisor' || true)"
