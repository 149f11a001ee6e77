"""docs/reachability.md and the README's verdicts stay true: the settings, ports, status lines and
advice they show are the ones the appliance uses."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from appliance import settings
from appliance.probe import reach
from appliance.words import LABELS

ROOT = Path(__file__).resolve().parent.parent
REACHABILITY = (ROOT / "docs" / "reachability.md").read_text()
README = (ROOT / "README.md").read_text()


def status_of(mode: str) -> dict:
    config = SimpleNamespace(reachability=SimpleNamespace(router=mode, lease=86400, ports=list(settings.PINHOLE_PORTS)),
                             appliance=SimpleNamespace(interface="eth0"))
    return reach.Reachability(config, store=None).status


def test_every_setting_the_page_names_exists_with_the_choices_it_shows():
    named = set(re.findall(r"`(reachability\.\w+|probe\.\w+|clock\.\w+|detect\.\w+)`", REACHABILITY + README))
    assert named and named <= set(settings.BY_KEY), named - set(settings.BY_KEY)
    shown = set(re.findall(r'^\| `"(\w+)"`', REACHABILITY, re.M))
    assert shown == set(settings.BY_KEY["reachability.router"].choices)
    assert f'`"{settings.default("reachability.router")}"` (default)' in REACHABILITY


def test_the_default_ports_are_the_ones_explained():
    for port in settings.PINHOLE_PORTS:
        assert f"`{port}`" in REACHABILITY and f"`{port}`" in README
    assert f"({', '.join(settings.PINHOLE_PORTS)})" in REACHABILITY  # the granted status line


def test_the_status_lines_shown_are_what_status_says():
    for mode in ("open", "closed"):
        status = status_of(mode)
        state = status["state"].upper() if status["state"] == "closed" else status["state"]
        assert f"reachability: {state}: {status['detail']}" in REACHABILITY, mode
    assert status_of("closed")["advice"] == reach.ADVICE
    for advice in reach.ADVICE:
        assert f"  - {advice[:40]}" in REACHABILITY


def test_the_readme_explains_every_verdict_word():
    for label in LABELS.values():
        assert f"- **{label}**:" in README, label
