"""Every setting is defined once (appliance/settings.py); everything else that states one is held to it.

The places: the configuration loader, `harvestwatch analyze`'s options, the Ansible role's defaults
and its config template, the systemd units, and docs/configuration.md. Changing a default in one of
them alone fails here."""
import argparse
import configparser
import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from appliance import settings
from appliance.analyze import Settings
from appliance.cli import build_parser
from appliance.config import Config, ConfigError, from_dict, load

ROOT = Path(__file__).resolve().parent.parent
ROLE = ROOT / "ansible" / "roles" / "harvestwatch"


def test_the_configuration_has_exactly_the_settings_with_their_defaults(tmp_path):
    empty = tmp_path / "config.toml"
    empty.write_text("")
    config = load(str(empty))
    found = {f"{section.name}.{field.name}": getattr(getattr(config, section.name), field.name)
             for section in dataclasses.fields(Config) for field in dataclasses.fields(getattr(config, section.name))}
    assert found == {setting.key: setting.default for setting in settings.SETTINGS}


def rendered_role_config(**overrides) -> str:
    """config.toml.j2 rendered with the role's defaults (and `overrides`), by Ansible's own templating."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    loader = DataLoader()
    defaults = loader.load_from_file(str(ROLE / "defaults" / "main.yml"), trusted_as_template=True)
    templar = Templar(loader=loader, variables={**defaults, "ansible_managed": "Ansible managed", **overrides})
    return templar.template(trust_as_template((ROLE / "templates" / "config.toml.j2").read_text()))


def test_the_roles_defaults_write_every_setting_at_its_default():
    text = rendered_role_config()
    written = tomllib.loads(text)
    keys = {f"{section}.{name}" for section, values in written.items() for name in values}
    assert keys == set(settings.BY_KEY), "the template must state every setting, and no other"
    assert from_dict(written) == Config(), "a role default differs from appliance/settings.py"


def test_a_default_changed_in_the_role_alone_is_caught():
    # The check above is only worth something if it can fail: move one default and it must.
    moved = tomllib.loads(rendered_role_config(harvestwatch_detect_min_ports=11))
    assert from_dict(moved) != Config()


def test_analyze_options_have_the_settings_defaults_and_limits(run_cli, tmp_path):
    args = build_parser().parse_args(["analyze", "kern.log"])
    for option in ("min_ports", "window", "min_hosts", "lookback"):
        assert getattr(args, option) == settings.default(f"detect.{option}") == getattr(Settings(), option)
    log = tmp_path / "kern.log"
    log.write_text("")
    for option, value, words in (("--min-ports", "1", "must be at least 2"), ("--window", "0", "must be positive"),
                                 ("--lookback", "nan", "must be a finite number"),
                                 ("--window", "inf", "must be a finite number"),
                                 ("--min-ports", "1e20", "must be a whole number"),
                                 ("--min-hosts", "x", "must be a whole number")):
        code, _, err = run_cli("analyze", option, value, log)
        assert code == 2 and f"argument {option}: {words}" in err


@pytest.mark.parametrize("key, value, words", [
    ("detect.min_ports", 1, "detect.min_ports must be at least 2, got 1"),
    ("probe.observation", 0xFFFFFFFF, "probe.observation must be positive and at most 4294967294"),
    ("firewall.nflog_group", 70000, "firewall.nflog_group must be 0..65535, got 70000"),
    ("detect.window", float("nan"), "detect.window must be a finite number, got nan"),
    ("probe.min_gap", float("inf"), "probe.min_gap must be a finite number, got inf"),
    ("privacy.temp_valid_lft", -1, "privacy.temp_valid_lft must be 60..4294967294, got -1"),
])
def test_limits_come_from_the_setting(key, value, words):
    section, name = key.split(".")
    with pytest.raises(ConfigError, match=re.escape(words)):
        from_dict({section: {name: value}})


def test_the_units_use_the_same_paths():
    for unit in ("harvestwatch-firewall.service", "harvestwatch.service", "harvestwatch-page.service"):
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        parsed.read(ROLE / "files" / unit)
        words = parsed["Service"]["ExecStart"].split()
        assert words[words.index("--config") + 1] == settings.CONFIG_PATH, unit
        assert "--db" not in words, f"{unit}: the store's place comes from the configuration"
    page = configparser.ConfigParser(strict=False, interpolation=None)
    page.read(ROLE / "files" / "harvestwatch-page.service")
    assert page["Service"]["ReadWritePaths"] == settings.default("appliance.state_dir")


def test_the_docs_list_every_setting_as_defined():
    docs = (ROOT / "docs" / "configuration.md").read_text()
    assert settings.markdown_table() in docs, ("docs/configuration.md is out of date: "
                                               "put `python -m appliance.settings` output in its table")


def test_the_docs_example_refusal_is_what_the_daemon_says(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[detect]\nmin_ports = 1\n")
    done = subprocess.run([sys.executable, "-m", "appliance", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    shown = re.search(r"^ERROR harvestwatch: .*$", (ROOT / "docs" / "configuration.md").read_text(), re.M).group()
    assert done.returncode == 2
    assert done.stderr.strip() == shown.replace(settings.CONFIG_PATH, str(config))


def test_an_option_parser_refuses_what_the_config_refuses():
    setting = settings.BY_KEY["detect.min_hosts"]
    with pytest.raises(argparse.ArgumentTypeError, match="at least 2"):
        setting.parse_option("1")
    with pytest.raises(settings.SettingError):
        setting.check(1)
