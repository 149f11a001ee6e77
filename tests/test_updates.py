"""What the appliance reads of its security updates: apt's configuration, as `apt-config dump`
prints it, and the marks apt and the kernel packages leave (the run stamp, /run/reboot-required)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from appliance.host import updates

DUMP = '''APT "";
APT::Architecture "amd64";
APT::Periodic "";
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
Unattended-Upgrade "";
Unattended-Upgrade::Origins-Pattern "";
Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename},label=Debian-Security";
Unattended-Upgrade::Automatic-Reboot "true";
Unattended-Upgrade::Automatic-Reboot-Time "04:00";
'''


def paths(tmp_path, *, installed=True):
    program = tmp_path / "unattended-upgrade"
    if installed:
        program.write_text("#!/bin/sh\n")
    return updates.Paths(program=str(program), stamp=str(tmp_path / "stamp"), reboot=str(tmp_path / "reboot-required"),
                         reboot_packages=str(tmp_path / "reboot-required.pkgs"))


def test_on_with_its_last_run_and_a_waiting_reboot(tmp_path):
    where = paths(tmp_path)
    (tmp_path / "stamp").write_text("")
    os.utime(tmp_path / "stamp", (1796126400, 1796126400))
    (tmp_path / "reboot-required").write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.12.48+deb13-arm64\nlibc6\nlibc6\n")
    state = updates.check(where, DUMP)
    assert state == {"installed": True, "enabled": True, "last_run": 1796126400.0, "reboot_required": True,
                     "reboot_packages": ["libc6", "linux-image-6.12.48+deb13-arm64"], "auto_reboot": True,
                     "reboot_time": "04:00"}


def test_off_not_run_and_not_installed_are_told_apart(tmp_path):
    off = updates.check(paths(tmp_path), DUMP.replace('Unattended-Upgrade "1"', 'Unattended-Upgrade "0"'))
    assert off["installed"] and not off["enabled"] and off["last_run"] is None and not off["reboot_required"]
    (tmp_path / "bare").mkdir()
    absent = updates.check(paths(tmp_path / "bare", installed=False), DUMP)
    assert not absent["installed"] and not absent["enabled"]
    nothing = updates.check(paths(tmp_path), "")  # apt-config missing or silent: defaults, never "on"
    assert not nothing["enabled"] and not nothing["auto_reboot"] and nothing["reboot_time"] == "now"


@pytest.mark.skipif(shutil.which("apt-config") is None, reason="no apt-config on this machine")
def test_this_machines_apt_config_is_read_as_apt_reads_it(tmp_path):
    """The real `apt-config dump`, with an apt.conf.d file of our own through APT_CONFIG."""
    conf = tmp_path / "apt.conf"
    conf.write_text('APT::Periodic::Unattended-Upgrade "1";\nUnattended-Upgrade::Automatic-Reboot-Time "03:30";\n'
                    'Unattended-Upgrade::Automatic-Reboot "true";\n')
    dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=True,
                          env={**os.environ, "APT_CONFIG": str(conf)}).stdout
    state = updates.check(paths(tmp_path), dump)
    assert state["enabled"] and state["auto_reboot"] and state["reboot_time"] == "03:30"
