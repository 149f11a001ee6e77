"""The Ansible role ansible/roles/harvestwatch converges on a Debian root filesystem, idempotently;
so does the image's stage-2 role harvestwatch_pi, and the firewall builds on the image's release.

A Debian bookworm minbase rootfs (built once with mmdebstrap, cached under
/var/tmp/harvestwatch-ansible-test keyed by its package list and mirror) is copied to a fresh
directory, the role is applied to it through the community.general.chroot connection with
harvestwatch_apply_runtime=false (as an image build does: nothing is started, no sysctl applied),
twice: the second run must change nothing. Then the files it wrote are checked, and ansible-lint
must pass on ansible/.

Needs root, mmdebstrap (apt) and ansible + ansible-lint (pip: the full `ansible` package, since
ansible-core alone lacks the community.general chroot connection). The first run downloads about
80 MB of packages plus the appliance's PyPI dependencies.
"""
from __future__ import annotations

import calendar
import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.host import firewall, privacy

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE_DIR = ROOT / "ansible"
ROLE_FILES = ANSIBLE_DIR / "roles" / "harvestwatch" / "files"
CACHE = Path(os.environ.get("HARVESTWATCH_ANSIBLE_CACHE", "/var/tmp/harvestwatch-ansible-test"))
SUITE = "bookworm"          # the role: Raspberry Pi OS and Debian 12 hosts
IMAGE_SUITE = "trixie"      # the SD-card image and the Vagrant box (ansible/image/vars.yml)
ARCH = "amd64"
# What a Raspberry Pi OS / Debian image has before the role runs: Python for Ansible's modules,
# python3-apt for its apt module, systemd for systemctl (enabling units offline).
BASE_PACKAGES = ["python3", "python3-apt", "systemd", "ca-certificates"]
# What the image's stage 0 adds that the harvestwatch_pi role configures.
PI_PACKAGES = ["openssh-server", "sudo", "ifupdown"]
DEFAULT_MIRROR = "http://deb.debian.org/debian"

BIN = Path(sys.executable).parent
TIMINGS: dict[str, float] = {}


def _tool(name: str) -> str | None:
    found = BIN / name
    return str(found) if found.exists() else shutil.which(name)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (mmdebstrap and the chroot connection)"
    if not shutil.which("mmdebstrap"):
        return "mmdebstrap not installed (apt-get install mmdebstrap)"
    if not _tool("ansible-playbook"):
        return "ansible not installed (pip install ansible ansible-lint)"
    try:
        import ansible_collections.community.general  # noqa: F401
    except ImportError:
        probe = subprocess.run([_tool("ansible-doc"), "-t", "connection", "community.general.chroot"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            return "community.general (chroot connection) not available: pip install ansible, not ansible-core"
    return None


pytestmark = [pytest.mark.root, pytest.mark.ansible, pytest.mark.image,
              pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")]


def _mirror() -> str:
    """The Debian mirror this machine's apt uses, so the rootfs comes from the same place."""
    sources = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            sources.append(path.read_text())
        except OSError:
            continue
    for text in sources:
        for url in re.findall(r"(?m)^\s*(?:URIs:|deb)\s+(?:\[[^\]]*\]\s+)?(\S+)", text):
            if url.rstrip("/").endswith("/debian"):
                return url.rstrip("/")
    return DEFAULT_MIRROR


def _base_rootfs(suite: str = SUITE, packages: list[str] | None = None) -> Path:
    mirror = _mirror()
    packages = packages or BASE_PACKAGES + PI_PACKAGES
    key = hashlib.sha256("\n".join([suite, ARCH, mirror, *packages, "policy-rc.d"]).encode()).hexdigest()[:16]
    target = CACHE / f"rootfs-{suite}-{ARCH}-{key}"
    if (target / ".complete").exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = CACHE / f"{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    started = time.monotonic()
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", f"--architectures={ARCH}",
                    f"--include={','.join(packages)}",
                    # An image build must never start daemons: the packages' postinst scripts ask
                    # invoke-rc.d, which obeys policy-rc.d.
                    "--customize-hook=printf '#!/bin/sh\\nexit 101\\n' > \"$1/usr/sbin/policy-rc.d\"; "
                    "chmod 755 \"$1/usr/sbin/policy-rc.d\"",
                    suite, str(partial), mirror], check=True)
    TIMINGS[f"{suite} rootfs build (cold)"] = time.monotonic() - started
    (partial / ".complete").touch()
    partial.rename(target)
    return target


def _recap(output: str) -> dict[str, int]:
    match = re.search(r"PLAY RECAP \*+\s*\n\S+\s*:\s*(.*)", output)
    assert match, f"no PLAY RECAP in:\n{output[-3000:]}"
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def _changed_tasks(output: str) -> list[str]:
    """The names of the tasks that reported a change."""
    changed, task = [], ""
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line[6:line.rfind("]")]
        elif line.startswith("changed:"):
            changed.append(task)
    return changed


def _playbook(rootfs: Path, wheel: Path) -> subprocess.CompletedProcess:
    inventory = rootfs.parent / "inventory.ini"
    inventory.write_text("[harvestwatch]\n"
                         f"{rootfs} ansible_connection=community.general.chroot"
                         " ansible_python_interpreter=/usr/bin/python3\n\n"
                         "[harvestwatch:vars]\n"
                         "harvestwatch_become=false\n"
                         "harvestwatch_apply_runtime=false\n"
                         f"harvestwatch_source={wheel}\n")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"),
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    command = [_tool("ansible-playbook"), "-i", str(inventory), str(ANSIBLE_DIR / "site.yml")]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ANSIBLE_DIR)


def _trust_host_cas(rootfs: Path) -> None:
    """pip in the chroot goes out through this machine's network: trust what the host trusts
    (a TLS-intercepting proxy's CA, say), also across update-ca-certificates runs in the chroot."""
    local = Path("/usr/local/share/ca-certificates")
    if local.is_dir():
        for crt in local.rglob("*.crt"):
            dest = rootfs / "usr/local/share/ca-certificates" / crt.relative_to(local)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(crt, dest)
    bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        shutil.copy2(bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path_factory.mktemp("source") / "harvestwatch"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "tests", "ansible", "node_modules"))
    # Pure Python, as `make wheel` builds it for the Pi: no compiled lane for this host's CPU.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                    "-w", str(out), str(source)], check=True, env=dict(os.environ, HARVESTWATCH_PURE="1"))
    wheels = list(out.glob("harvestwatch-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory) -> Path:
    base = _base_rootfs()
    target = tmp_path_factory.mktemp("chroot") / "rootfs"
    subprocess.run(["cp", "-a", str(base), str(target)], check=True)
    _trust_host_cas(target)
    yield target
    shutil.rmtree(target, ignore_errors=True)


@pytest.fixture(scope="module")
def converged(rootfs, wheel):
    started = time.monotonic()
    first = _playbook(rootfs, wheel)
    TIMINGS["first converge"] = time.monotonic() - started
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    assert _recap(first.stdout)["failed"] == 0
    # A Pi that has run for months: the store of an earlier release is in the state directory when
    # the playbook runs again (an upgrade in place). The playbook must leave it as it is (the
    # daemon migrates it when it starts: tests/test_upgrade.py).
    store = rootfs / "var/lib/harvestwatch/harvestwatch.sqlite"
    db = sqlite3.connect(store)
    db.executescript((ROOT / "tests/files/release-0.1.0/store.sql").read_text())
    db.close()
    state = (rootfs / "var/lib/harvestwatch").stat()
    os.chown(store, state.st_uid, state.st_gid)
    KEPT["store"] = store.read_bytes()
    started = time.monotonic()
    second = _playbook(rootfs, wheel)
    TIMINGS["second converge"] = time.monotonic() - started
    return first, second


KEPT: dict[str, bytes] = {}


def test_a_rerun_keeps_the_store_of_an_earlier_release(converged, rootfs):
    store = rootfs / "var/lib/harvestwatch/harvestwatch.sqlite"
    assert store.read_bytes() == KEPT["store"]
    assert store.stat().st_uid == (rootfs / "var/lib/harvestwatch").stat().st_uid


def test_second_run_changes_nothing(converged):
    _, second = converged
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    recap = _recap(second.stdout)
    assert recap["changed"] == 0 and recap["failed"] == 0, (recap, _changed_tasks(second.stdout), second.stdout[-4000:])


def test_config_is_valid_with_documented_defaults(converged, rootfs):
    from appliance.config import load

    config = load(str(rootfs / "etc/harvestwatch/config.toml"))
    assert config.appliance.interface == "eth0"
    assert config.appliance.lan_prefixes == []
    assert config.appliance.state_dir == "/var/lib/harvestwatch"
    assert config.firewall.tcp_services == [22, 80]
    assert config.firewall.nflog_group == 5
    assert config.probe.pools == ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org", "2.debian.pool.ntp.org",
                                  "3.debian.pool.ntp.org", "2.pool.ntp.org"]
    assert config.probe.kinds == ["ntp", "udp123", "udp321"]
    assert config.probe.server_interval == 86400
    assert config.probe.min_gap == 60 and config.probe.round_every == 3600
    assert config.probe.observation == 604800
    assert config.reachability.router == "upnp" and config.clock.source == "chrony"
    assert config.probe.max_live == 1000
    assert config.store.flush_every == 5
    mode = (rootfs / "etc/harvestwatch/config.toml").stat().st_mode & 0o777
    assert mode == 0o644, oct(mode)


def test_appliance_installed_in_venv(converged, rootfs):
    assert (rootfs / "opt/harvestwatch/venv/bin/harvestwatch").is_file()
    # The command a user types on the Pi (README, Troubleshooting) is on the PATH.
    assert os.readlink(rootfs / "usr/local/bin/harvestwatch") == "/opt/harvestwatch/venv/bin/harvestwatch"
    listing = subprocess.run(["chroot", str(rootfs), "/opt/harvestwatch/venv/bin/python", "-c",
                              "import appliance.daemon, appliance.web, pyroute2, dns.resolver, async_upnp_client, "
                              "flask, gunicorn; print('ok')"],
                             capture_output=True, text=True)
    assert listing.stdout.strip() == "ok", listing.stderr


def test_units_installed_and_enabled(converged, rootfs):
    for unit in ("harvestwatch-firewall.service", "harvestwatch.service", "harvestwatch-page.service"):
        installed = rootfs / "etc/systemd/system" / unit
        assert installed.read_bytes() == (ROLE_FILES / unit).read_bytes()
        wants = rootfs / "etc/systemd/system/multi-user.target.wants" / unit
        assert wants.is_symlink(), f"{unit} not enabled"
        assert os.readlink(wants) == f"/etc/systemd/system/{unit}"
    for service in ("chrony.service", "avahi-daemon.service"):
        assert (rootfs / "etc/systemd/system/multi-user.target.wants" / service).is_symlink(), service


def test_security_updates_are_on_with_a_reboot_at_a_quiet_hour(converged, rootfs):
    status = (rootfs / "var/lib/dpkg/status").read_text()
    for package in ("unattended-upgrades", "fake-hwclock"):
        assert re.search(rf"(?m)^Package: {re.escape(package)}\nStatus: install ok installed", status), package
    # What apt itself reads from the files the role wrote (the appliance reads it the same way).
    dump = subprocess.run(["chroot", str(rootfs), "apt-config", "dump"], capture_output=True, text=True,
                          check=True).stdout
    for line in ('APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";',
                 'Unattended-Upgrade::Automatic-Reboot "true";', 'Unattended-Upgrade::Automatic-Reboot-Time "04:00";',
                 'Acquire::GzipIndexes "true";'):
        assert line in dump, line
    # Debian's security archive is among what unattended-upgrades installs from.
    origins = re.findall(r'(?m)^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', dump)
    assert any("label=Debian-Security" in origin for origin in origins), origins
    # apt's own timers run it: enabled by the apt package, nothing of the role's to switch on.
    assert (rootfs / "etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer").is_symlink()


def test_the_clock_is_saved_for_the_next_boot(converged, rootfs):
    assert (rootfs / "etc/systemd/system/sysinit.target.wants/fake-hwclock.service").is_symlink()
    timer = rootfs / "etc/systemd/system/timers.target.wants/harvestwatch-clock-save.timer"
    assert timer.is_symlink() and "OnUnitActiveSec=1h" in (rootfs / "etc/systemd/system/harvestwatch-clock-save.timer"
                                                           ).read_text()
    service = (rootfs / "etc/systemd/system/harvestwatch-clock-save.service").read_text()
    command = re.search(r"(?m)^ExecStart=(.*)$", service).group(1).split()
    # What the timer runs, run here: it writes this machine's time (saving never sets a clock).
    subprocess.run(["chroot", str(rootfs), *command], check=True, capture_output=True)
    saved = (rootfs / "etc/fake-hwclock.data").read_text().strip()
    assert abs(calendar.timegm(time.strptime(saved, "%Y-%m-%d %H:%M:%S")) - time.time()) < 120, saved  # UTC


def test_kernel_modules_loaded_at_boot(converged, rootfs):
    # The daemon cannot load modules itself (no CAP_SYS_MODULE): found when the image first booted.
    modules = (rootfs / "etc/modules-load.d/harvestwatch.conf").read_text().split()
    for needed in ("ip6_tables", "ip6table_filter", "iptable_filter", "xt_hl", "xt_hashlimit", "xt_NFLOG",
                   "nfnetlink_log", "xt_conntrack", "xt_multiport", "xt_comment"):
        assert needed in modules, needed


def test_sysctl_and_journald(converged, rootfs):
    dropin = rootfs / "etc/sysctl.d/60-harvestwatch-privacy.conf"
    assert dropin.read_text() == privacy.dropin(1200, 2400, ("eth0",))  # harvestwatch_interface's default
    journald = (rootfs / "etc/systemd/journald.conf.d/harvestwatch.conf").read_text()
    assert "[Journal]" in journald
    assert re.search(r"(?m)^Storage=volatile$", journald)
    assert re.search(r"(?m)^RuntimeMaxUse=32M$", journald)


def test_packages_and_iptables_legacy(converged, rootfs):
    status = (rootfs / "var/lib/dpkg/status").read_text()
    for package in ("python3", "python3-venv", "iptables", "chrony", "avahi-daemon"):
        assert re.search(rf"(?m)^Package: {re.escape(package)}\nStatus: install ok installed", status), package
    for name in ("iptables", "ip6tables"):
        assert os.readlink(rootfs / "etc/alternatives" / name) == f"/usr/sbin/{name}-legacy"


def test_user(converged, rootfs):
    passwd = {line.split(":")[0]: line.split(":") for line in (rootfs / "etc/passwd").read_text().splitlines()}
    assert "harvestwatch" in passwd
    entry = passwd["harvestwatch"]
    assert entry[5] == "/var/lib/harvestwatch"
    assert entry[6] in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
    assert int(entry[2]) < 1000, "a system user"
    groups = [line.split(":")[0] for line in (rootfs / "etc/group").read_text().splitlines()]
    assert "harvestwatch" in groups


# -- the image's stage 2: harvestwatch_pi on the same root filesystem ---------------------------
PI_ROLE_FILES = ANSIBLE_DIR / "roles" / "harvestwatch_pi" / "files"


def _pi_playbook(rootfs: Path, pubkey: Path) -> subprocess.CompletedProcess:
    play = rootfs.parent / "pi.yml"
    play.write_text("- hosts: all\n  gather_facts: false\n  roles:\n    - role: harvestwatch_pi\n"
                    f"      harvestwatch_pi_ssh_pubkey_file: {pubkey}\n"
                    f"      harvestwatch_pi_kernel_origin_codename: {IMAGE_SUITE}-backports\n"
                    "      harvestwatch_pi_build_leftovers: [/var/tmp/build-ca-bundle.pem, /usr/sbin/policy-rc.d]\n")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(ANSIBLE_DIR / "roles"),
               PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    inventory = f"{rootfs},"
    return subprocess.run([_tool("ansible-playbook"), "-i", inventory, "-c", "community.general.chroot",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", str(play)],
                          capture_output=True, text=True, env=env, cwd=ANSIBLE_DIR)


@pytest.fixture(scope="module")
def pi_converged(converged, rootfs, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "builder@test", "-f", str(keys / "id")],
                   check=True)
    (rootfs / "var/tmp/build-ca-bundle.pem").write_text("lent by the build\n")
    first = _pi_playbook(rootfs, keys / "id.pub")
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    second = _pi_playbook(rootfs, keys / "id.pub")
    return first, second, (keys / "id.pub").read_text().strip()


def test_pi_system_second_run_changes_nothing(pi_converged):
    _, second, _ = pi_converged
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    assert _changed_tasks(second.stdout) == []


def test_pi_system_boots_by_label_with_a_network(pi_converged, rootfs):
    fstab = (rootfs / "etc/fstab").read_text()
    assert re.search(r"(?m)^LABEL=RASPIROOT\s+/\s+ext4\s", fstab)
    assert re.search(r"(?m)^LABEL=RASPIFIRM\s+/boot/firmware\s+vfat\s", fstab)
    interface = (rootfs / "etc/network/interfaces.d/eth0").read_text()
    assert "iface eth0 inet dhcp" in interface and "iface eth0 inet6 auto" in interface
    assert (rootfs / "etc/hostname").read_text() == "harvestwatch\n"


def test_pi_system_ssh_is_key_only_for_the_admin(pi_converged, rootfs):
    _, _, pubkey = pi_converged
    sshd = (rootfs / "etc/ssh/sshd_config.d/harvestwatch.conf").read_text()
    for line in ("PasswordAuthentication no", "PermitRootLogin no", "AllowUsers hwadmin"):
        assert line in sshd
    # sshd itself accepts the configuration (a typo would keep SSH from starting on the Pi).
    check = subprocess.run(["chroot", str(rootfs), "sh", "-c", "mkdir -p /run/sshd && ssh-keygen -q -A && sshd -t; "
                            "rc=$?; rm -f /etc/ssh/ssh_host_*; exit $rc"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    authorized = (rootfs / "home/hwadmin/.ssh/authorized_keys").read_text()
    assert pubkey in authorized
    shadow = {line.split(":")[0]: line.split(":")[1] for line in (rootfs / "etc/shadow").read_text().splitlines()}
    assert shadow["hwadmin"] in ("*", "!", "!*"), "the admin must have no usable password"
    dropin = (rootfs / "etc/systemd/system/ssh.service.d/harvestwatch.conf").read_text()
    assert "ConditionFileNotEmpty=/home/hwadmin/.ssh/authorized_keys" in dropin
    visudo = subprocess.run(["chroot", str(rootfs), "visudo", "-c"], capture_output=True, text=True)
    assert visudo.returncode == 0, visudo.stdout + visudo.stderr


def test_pi_system_every_card_makes_its_own_identity(pi_converged, rootfs):
    assert not list((rootfs / "etc/ssh").glob("ssh_host_*")), "SSH host keys would be shared by every card"
    assert (rootfs / "etc/machine-id").read_text() == ""
    unit = rootfs / "etc/systemd/system/harvestwatch-firstboot.service"
    assert "ExecStart=/usr/local/sbin/harvestwatch-firstboot" in unit.read_text()
    assert (rootfs / "etc/systemd/system/multi-user.target.wants/harvestwatch-firstboot.service").is_symlink()
    script = rootfs / "usr/local/sbin/harvestwatch-firstboot"
    assert script.read_bytes() == (PI_ROLE_FILES / "harvestwatch-firstboot").read_bytes()
    syntax = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_pi_system_card_starts_with_the_builds_clock(pi_converged, rootfs):
    saved = (rootfs / "etc/fake-hwclock.data").read_text().strip()
    assert abs(calendar.timegm(time.strptime(saved, "%Y-%m-%d %H:%M:%S")) - time.time()) < 3600, saved


def test_pi_system_updates_the_kernel_from_backports(pi_converged, rootfs):
    """The image's kernel comes from backports (the first Debian kernel for the Pi 5): unattended-upgrades
    must be allowed to install its updates, or the kernel never gets a security fix."""
    dump = subprocess.run(["chroot", str(rootfs), "apt-config", "dump"], capture_output=True, text=True,
                          check=True).stdout
    origins = re.findall(r'(?m)^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', dump)
    assert f"origin=Debian Backports,codename={IMAGE_SUITE}-backports,label=Debian Backports" in origins, origins
    assert any("label=Debian-Security" in origin for origin in origins), origins


def test_pi_system_build_leftovers_removed(pi_converged, rootfs):
    assert not (rootfs / "var/tmp/build-ca-bundle.pem").exists()
    assert not (rootfs / "usr/sbin/policy-rc.d").exists()
    assert not [p for p in (rootfs / "var/lib/apt/lists").iterdir() if p.is_file()]


# -- a Raspberry Pi OS-shaped system: trixie, NetworkManager, iptables-nft, an nftables firewall ------
# Raspberry Pi OS's archive cannot be reached from here; the closest this machine builds is Debian
# trixie (what Raspberry Pi OS is built on) with what RPi OS has and the image has not:
# NetworkManager, the nft variant of iptables as the default, and a firewall in nftables. amd64: the
# role does nothing by CPU (the image build applies the same role to an arm64 trixie root).
RPIOS_PACKAGES = BASE_PACKAGES + ["network-manager", "iptables", "nftables"]
USERS_NFTABLES_CONF = """#!/usr/sbin/nft -f
flush ruleset
table inet users_firewall {
    chain input {
        type filter hook input priority filter; policy accept;
        tcp dport 22 counter accept
    }
}
"""


@pytest.fixture(scope="module")
def rpios(wheel, tmp_path_factory):
    base = _base_rootfs(IMAGE_SUITE, RPIOS_PACKAGES)
    root = tmp_path_factory.mktemp("rpios") / "rootfs"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    _trust_host_cas(root)
    (root / "etc/nftables.conf").write_text(USERS_NFTABLES_CONF)
    subprocess.run(["chroot", str(root), "systemctl", "enable", "nftables.service"], check=True, capture_output=True)
    before = {name: os.readlink(root / "etc/alternatives" / name) for name in ("iptables", "ip6tables")}
    first = _playbook(root, wheel)
    second = _playbook(root, wheel)
    yield root, first, second, before
    shutil.rmtree(root, ignore_errors=True)


def test_rpios_shaped_system_converges_idempotently(rpios):
    root, first, second, _ = rpios
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    assert _changed_tasks(second.stdout) == []
    for unit in ("harvestwatch-firewall.service", "harvestwatch.service", "harvestwatch-page.service"):
        assert (root / "etc/systemd/system/multi-user.target.wants" / unit).is_symlink(), unit
    # trixie's fake-hwclock (0.14) splits its unit in two and brings an hourly timer of its own
    # (the role saves on its own timer instead); the image is trixie too.
    units = root / "etc/systemd/system"
    assert (units / "sysinit.target.wants/fake-hwclock-load.service").is_symlink()
    assert (units / "shutdown.target.wants/fake-hwclock-save.service").is_symlink()
    assert not (units / "timers.target.wants/fake-hwclock-save.timer").exists()
    assert (units / "timers.target.wants/harvestwatch-clock-save.timer").is_symlink()


def test_rpios_shaped_system_keeps_its_nftables_firewall_and_iptables_nft(rpios):
    root, first, _, before = rpios
    assert before == {"iptables": "/usr/sbin/iptables-nft", "ip6tables": "/usr/sbin/ip6tables-nft"}
    after = {name: os.readlink(root / "etc/alternatives" / name) for name in ("iptables", "ip6tables")}
    assert after == before, "the role switched a system whose firewall is in nftables to iptables-legacy"
    assert "iptables stays /usr/sbin/ip6tables-nft: nftables is in use (nftables.service)" in first.stdout
    assert (root / "etc/nftables.conf").read_text() == USERS_NFTABLES_CONF
    wants = root / "etc/systemd/system"
    assert (wants / "sysinit.target.wants/nftables.service").is_symlink()
    # NetworkManager stays the network's manager (the role leaves networking alone).
    assert (wants / "multi-user.target.wants/NetworkManager.service").is_symlink()
    assert not (root / "etc/network/interfaces.d/eth0").exists()


def test_image_release_applies_and_verifies_the_whole_ruleset(tmp_path):
    """The image and the Vagrant box are Debian trixie (iptables 1.8.11): its ip6tables-legacy-restore
    must take every rule, and its `-S` print them back as the ruleset writes them (verify compares
    the text), in a network namespace of its own, natively (amd64)."""
    base = _base_rootfs(IMAGE_SUITE, ["python3", "python3-pyroute2", "iptables"])
    root = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    shutil.copytree(ROOT / "appliance", root / "opt/appliance-src/appliance",
                    ignore=shutil.ignore_patterns("__pycache__"))
    probe = (
        "import subprocess\n"
        "from appliance.host import firewall\n"
        "print(subprocess.run(['ip6tables-legacy', '--version'], capture_output=True, text=True).stdout.split()[1])\n"
        "ruleset = firewall.Ruleset(lan_prefixes=('2001:db8:1:1::/64',))\n"
        "firewall.apply(ruleset)\n"
        "print(sum(len(firewall.saved_rules(firewall.HOOKS[c][0], c)) - 1 for c in firewall.HOOKS), 'rules')\n"
        "print(firewall.verify(ruleset))\n")
    run = subprocess.run(["unshare", "--net", "chroot", str(root), "/usr/bin/env", "PYTHONPATH=/opt/appliance-src",
                          "/usr/bin/python3", "-c", probe], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    version, built, problems = run.stdout.splitlines()
    assert tuple(map(int, version.lstrip("v").split("."))) >= (1, 8, 11), version
    expected = sum(len(specs) for specs in firewall.Ruleset(lan_prefixes=("2001:db8:1:1::/64",)).chains().values())
    assert built == f"{expected} rules"
    assert problems == "[]"


def teardown_module(module):
    for name, seconds in TIMINGS.items():
        print(f"\n[timing] {name}: {seconds:.1f} s", end="")
    print()
