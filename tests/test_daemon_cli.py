"""`harvestwatch run` and `harvestwatch status` at the edges: bad config, no store, a store from analyze."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.lab.netns import repo_root


def harvestwatch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          timeout=60, cwd=repo_root())


def test_run_refuses_a_bad_config_naming_file_and_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[probe]\nmin_gap = -5\n")
    done = harvestwatch("run", "--config", str(config))
    assert done.returncode == 2
    assert f"{config}: probe.min_gap must be positive" in done.stderr
    config.write_text("[probe]\nmin_gapp = 5\n")
    assert "unknown key probe.min_gapp" in harvestwatch("run", "--config", str(config)).stderr


def test_run_refuses_a_config_path_that_does_not_exist(tmp_path):
    done = harvestwatch("run", "--config", str(tmp_path / "nowhere.toml"))
    assert done.returncode == 2 and "no such file" in done.stderr


def test_status_without_a_store_says_so(tmp_path):
    done = harvestwatch("status", "--db", str(tmp_path / "none.sqlite"))
    assert done.returncode == 2 and "has the daemon run yet" in done.stderr


def test_status_reads_a_store_filled_by_analyze(tmp_path):
    log, db = tmp_path / "kern.log", tmp_path / "store.sqlite"
    assert harvestwatch("synthlog", "--lines", "3000", "--seed", "3", "-o", str(log)).returncode == 0
    assert harvestwatch("analyze", "--db", str(db), str(log)).returncode == 0
    text = harvestwatch("status", "--db", str(db))
    assert text.returncode == 0, text.stderr
    assert "daemon: not running" in text.stdout and "probes sent: 0" in text.stdout
    document = json.loads(harvestwatch("status", "--db", str(db), "--json").stdout)
    assert document["daemon"]["alive"] is False and document["servers"] == [] and document["probes"] == 0


def test_status_of_a_stopped_daemon_says_its_state_is_from_when_it_ran(tmp_path):
    from appliance.store.db import Store
    db = tmp_path / "store.sqlite"
    store = Store(str(db))
    store.set_status({"heartbeat": 1_700_000_000.0, "clean_stop": True,
                      "firewall": {"in_force": True, "problems": []}, "privacy": {"in_force": True, "problems": []}})
    store.close()
    text = harvestwatch("status", "--db", str(db)).stdout
    stale = text.index("(the daemon is not running: what follows is as it last wrote it")
    assert "daemon: not running" in text and stale < text.index("firewall: in force")


def test_status_says_whether_security_updates_run_and_a_reboot_waits(tmp_path):
    from tests import web_store as ws
    db = tmp_path / "store.sqlite"
    ws.fill_realistic_store(db)
    text = harvestwatch("status", "--db", str(db)).stdout
    line = next(line for line in text.splitlines() if line.startswith("security updates:"))
    assert line.startswith("security updates: on, last run 20") and line.endswith(
        "; a reboot is waiting (linux-image-6.12.48+deb13-arm64): at 04:00")
