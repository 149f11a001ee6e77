import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "psad-scans"


@pytest.fixture
def psad_fixture():
    if not FIXTURES.is_dir():
        pytest.skip(f"psad fixtures not found at {FIXTURES} (../shared beside the clone)")
    return lambda name: str(FIXTURES / name)


@pytest.fixture
def run_cli(capsys):
    """Run `harvestwatch ...` in-process; returns (exit code, stdout, stderr)."""
    from appliance.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.fixture
def analyze_json(run_cli):
    def run(*args):
        code, out, err = run_cli("analyze", "--json", *args)
        assert code == 0, err
        return json.loads(out), err
    return run
