"""The role refuses settings that would otherwise do nothing, silently, or write a broken file:
its check tasks (ansible/roles/harvestwatch/tasks/check.yml) run here on their own, on localhost,
changing nothing (no root needed)."""
from __future__ import annotations

import json
import subprocess

import pytest

from tests.test_ansible_role import ANSIBLE_DIR, _tool

pytestmark = [pytest.mark.ansible,
              pytest.mark.skipif(_tool("ansible-playbook") is None, reason="ansible not installed")]

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: harvestwatch
        tasks_from: check.yml
"""


def run_checks(tmp_path, **variables) -> subprocess.CompletedProcess:
    playbook = tmp_path / "check.yml"
    playbook.write_text(PLAYBOOK)
    return subprocess.run([_tool("ansible-playbook"), "-i", "localhost,", str(playbook),
                           "-e", json.dumps({"harvestwatch_source": "dist/harvestwatch.whl", **variables})],
                          capture_output=True, text=True, timeout=120,
                          env={"ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles"), "ANSIBLE_NOCOLOR": "1",
                               "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def failed_because(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stdout[-2000:]
    return result.stdout + result.stderr


@pytest.mark.parametrize("value", ["auto", True, False, "true", "False", "yes", "no"])
def test_every_documented_iptables_choice_passes(tmp_path, value):
    result = run_checks(tmp_path, harvestwatch_iptables_legacy=value)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("value", ["maybe", "legacy", "", 1])
def test_an_unknown_iptables_choice_is_refused_with_the_choices(tmp_path, value):
    why = failed_because(run_checks(tmp_path, harvestwatch_iptables_legacy=value))
    assert "harvestwatch_iptables_legacy" in why and "auto" in why and "true" in why and "false" in why


@pytest.mark.parametrize("name", ["eth0", "end0", "enxb827eb000b07", "eth0.10", "wlan-0"])
def test_interface_names_the_kernel_allows_pass(tmp_path, name):
    result = run_checks(tmp_path, harvestwatch_interface=name)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("name", ["", "eth0\nnet.ipv4.ip_forward = 1", "eth0\n", "../all", "eth 0", "a" * 16, ".."])
def test_a_name_no_interface_can_have_is_refused_before_anything_is_written(tmp_path, name):
    # It goes into the sysctl drop-in: a newline would add a line of the caller's choosing.
    why = failed_because(run_checks(tmp_path, harvestwatch_interface=name))
    assert "harvestwatch_interface" in why and "network interface" in why
