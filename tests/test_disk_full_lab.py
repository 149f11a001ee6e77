"""The live appliance on a full disk: its state directory is a 40 MB tmpfs that something else fills.

Before, the daemon died with `database or disk is full` and died again at every restart, with the
firewall dropping and nothing captured. Now: the store gives up its space reserve, makes room
inside itself, says so in its status and as a gap, keeps storing evidence (a touch of a probe
address during the full disk is kept), and ends the episode by itself when room returns; a restart
on a full disk comes up.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from appliance.store.space import RESERVE_NAME
from tests.lab.appliance import ApplianceDaemon, write_config
from tests.lab.netns import repo_root

pytestmark = pytest.mark.root


def fill(directory, name="filler") -> str:
    """Write until the file system says no more, down to its last page."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 4096):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory, start_lab):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    with start_lab(tmp_path_factory.mktemp("lab"), harvesters={}, router="open") as lab:
        work = tmp_path_factory.mktemp("appliance")
        state = work / "state"
        state.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(state)], check=True)
        try:
            config = write_config(lab, work / "config.toml", state_dir=state, router="open", observation=3600)
            daemon = ApplianceDaemon(lab, config, state, work / "daemon.log").start()
            yield lab, daemon, state
            daemon.stop()
        finally:
            subprocess.run(["umount", "-l", str(state)], check=False)


def scans_from(lab, target: str, network: str, sources: int) -> None:
    """`sources` scanners (one per /52 of `network`), ten ports each, under every flood limit."""
    lab.ns.exec(lab.ns.name("scan1"), [sys.executable, "-m", "tests.lab.flood", target, network, "--sources",
                                       str(sources), "--step-bits", "52", "--ports", "10", "--pps", "800"],
                cwd=repo_root(), timeout=120)


def test_a_full_disk_stops_the_writing_not_the_appliance(small_disk):
    lab, daemon, state = small_disk
    status = daemon.wait_for(lambda s: (s.status().get("store") or {}).get("reserve_held") and s.status(),
                             timeout=90)
    assert os.path.getsize(state / RESERVE_NAME) > 0 and status["store"]["disk_full_since"] is None
    probe_id, probe = daemon.wait_for(lambda s: s.watched_probes(time.time())[:1] and
                                      tuple(s.watched_probes(time.time())[0])[:2], timeout=60)
    filler = fill(str(state))
    # 1,500 scans (about a megabyte of store) arrive: the store must grow, and cannot.
    scans_from(lab, lab.lan_address(), "2001:db8:f000::/36", 1500)
    full = daemon.wait_for(lambda s: (s.status().get("store") or {}).get("disk_full_since"), timeout=90)
    assert daemon.alive()
    assert not os.path.exists(state / RESERVE_NAME), "the reserve was given up for the store"
    assert "store: DISK FULL since" in daemon.status_text()
    # Evidence still goes in: a SYN to the probe address during the full disk is a touch stored.
    lab.ns.exec(lab.ns.name("scan2"), [sys.executable, "-c", SYN, probe], timeout=30)
    daemon.wait_for(lambda s: s.db.execute("SELECT count(*) FROM touches WHERE probe_id=? AND dport=4433",
                                           (probe_id,)).fetchone()[0], timeout=60)
    assert daemon.store().db.execute("SELECT count(*) FROM gaps WHERE reason='disk-full'").fetchone()[0] >= 1

    os.unlink(filler)  # room again: the episode ends by itself
    status = daemon.wait_for(lambda s: (s.status().get("store") or {}).get("reserve_held") and
                             s.status()["store"]["disk_full_since"] is None and s.status(), timeout=60)
    store = daemon.store()
    gap = store.db.execute("SELECT start, end, lost FROM gaps WHERE reason='disk-full'").fetchone()
    scans = store.db.execute("SELECT count(*) FROM scans WHERE scanner LIKE '2001:db8:f%'").fetchone()[0]
    store.close()
    assert gap[0] == pytest.approx(full, abs=1) and gap[1] > gap[0] and gap[2] == 0
    assert scans > 0
    assert status["store"]["used_bytes"] > 0 and status["store"]["oldest"] is not None
    assert "DISK FULL" not in daemon.status_text()


def test_a_restart_on_a_full_disk_comes_up(small_disk):
    lab, daemon, state = small_disk
    assert daemon.stop() == 0
    fill(str(state), "filler2")
    os.unlink(state / RESERVE_NAME) if os.path.exists(state / RESERVE_NAME) else None
    fill(str(state), "filler3")  # not a byte left, not even the reserve
    started = time.time()
    daemon.start()
    time.sleep(15)
    assert daemon.alive(), daemon.log_tail()
    for name in ("filler2", "filler3"):
        os.unlink(state / name)
    daemon.wait_for(lambda s: s.status().get("heartbeat", 0) > started, timeout=90)
    assert daemon.alive()


SYN = """
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(1)
try:
    s.connect((sys.argv[1], 4433))
except OSError:
    pass
"""
