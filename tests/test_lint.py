"""The linters `make lint` runs, as tests: `make test` (and CI) fails on what they find."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    if shutil.which(name):
        return shutil.which(name)
    pytest.skip(f"{name} is not installed (pip install -e '.[test]')")


def run(argv: list[str], cwd: Path = ROOT) -> None:
    env = dict(os.environ, NO_COLOR="1", ANSIBLE_NOCOLOR="1", PATH=f"{BIN}:{os.environ.get('PATH', '')}")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]


def test_python_passes_ruff():
    run([tool("ruff"), "check", "appliance", "tests", "image"])


def test_yaml_passes_yamllint():
    run([tool("yamllint"), "--strict", "ansible", ".yamllint"])


@pytest.mark.ansible
def test_playbooks_and_roles_pass_ansible_lint():
    run([tool("ansible-lint"), "--offline", "site.yml", "build-image.yml", "roles/harvestwatch",
         "roles/harvestwatch_pi"], cwd=ROOT / "ansible")
