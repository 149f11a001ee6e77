import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures" / "psad-scans"


# A test that uses one of these fixtures is in these tiers (pyproject.toml, "markers"):
# `make check` leaves it out.
FIXTURE_TIERS = {
    "net": ("root", "netns"),          # tests/probe_net.py: router, app, DNS and NTP namespaces
    "lan": ("root", "netns"),          # test_prober.py
    "pair": ("root", "netns"),         # test_firewall.py: an appliance and a peer namespace
    "dns_ns": ("root", "netns"),       # test_names.py: dnsmasq in a namespace
    "lab": ("root", "netns"),          # the lab, or a test's own namespaces (test_nflog, test_kernel_lines)
    "lab_daemon": ("root", "netns"),   # the real daemon in the lab
    "start_lab": ("root", "netns"),    # what the lab fixtures start their lab with
}


def pytest_collection_modifyitems(items):
    for item in items:
        for fixture in item.fixturenames:
            for tier in FIXTURE_TIERS.get(fixture, ()):
                item.add_marker(tier)


@pytest.fixture(scope="session")
def start_lab():
    """`with start_lab(workdir, **options) as lab:` a started lab (tests/lab/lab.py), closed at the
    end; the test is skipped where network namespaces cannot be made."""
    from contextlib import contextmanager

    from tests.lab.lab import Lab
    from tests.lab.netns import NetnsUnavailable

    @contextmanager
    def start(workdir, **options):
        try:
            lab = Lab(workdir=workdir, **options).start()
        except NetnsUnavailable as exc:
            pytest.skip(str(exc))
        with lab:
            yield lab
    return start


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


@pytest.fixture(params=["python", "c"])
def twin(request, monkeypatch):
    """Runs a parse test under each twin of the parser's `line_fields`: the Python one, and the C
    leaf (skipped where it is not built)."""
    from appliance.parse import netfilter
    if request.param == "c" and netfilter.c_line_fields is None:
        pytest.skip("the parser's C leaf is not built (no C compiler at install time, or HARVESTWATCH_PURE)")
    monkeypatch.setattr(netfilter, "line_fields",
                        netfilter.c_line_fields if request.param == "c" else netfilter.py_line_fields)
    return request.param
