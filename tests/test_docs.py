"""The README and docs/ stay true: the settings, ports, status lines, verdict words, links, command
lines, make targets, exit statuses, routes and reasons they show are the ones the appliance has."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest

from appliance import cli, config, settings, synthlog
from appliance.capture.files import DAMAGED_GZIP
from appliance.parse.netfilter import SKIP_REASONS
from appliance.probe import reach
from appliance.report.evidence import SCHEMA_VERSION
from appliance.words import GAP_WORDS, LABELS, Attribution

ROOT = Path(__file__).resolve().parent.parent
README_PATH = ROOT / "README.md"
DOC_PATHS = sorted((ROOT / "docs").glob("*.md"))
PAGES = {path: path.read_text() for path in [README_PATH, *DOC_PATHS]}
README = PAGES[README_PATH]
REACHABILITY = (ROOT / "docs" / "reachability.md").read_text()
ANALYZE = (ROOT / "docs" / "analyze.md").read_text()
FIREWALL = (ROOT / "docs" / "firewall.md").read_text()
PAGE = (ROOT / "docs" / "page.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()

FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCE.sub("", text)


def code_lines(text: str) -> list[str]:
    """What a page shows as code: each line of its fenced blocks (a line that starts with `[` or
    `--` continues the one before, as a wrapped usage line does), and each inline code span, its
    whitespace made single."""
    shown = []
    for _, block in FENCE.findall(text):
        for line in block.splitlines():
            if shown and re.match(r"\s+(\[|--)", line):
                shown[-1] += " " + line.strip()
            else:
                shown.append(line)
    shown += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose(text))]
    return shown


def status_of(mode: str) -> dict:
    config = SimpleNamespace(reachability=SimpleNamespace(router=mode, lease=86400, ports=list(settings.PINHOLE_PORTS)),
                             appliance=SimpleNamespace(interface="eth0"))
    return reach.Reachability(config, store=None).status


# -- settings, ports, status lines, verdicts ---------------------------------------------------
def test_every_setting_the_pages_name_exists_with_the_choices_shown():
    sections = "|".join(settings.SECTIONS)
    named = {key for text in PAGES.values()
             for key in re.findall(rf"`((?:{sections})\.\w+)(?:\s*=[^`]*)?`", text)}
    assert named and named <= set(settings.BY_KEY), named - set(settings.BY_KEY)
    shown = set(re.findall(r'^\| `"(\w+)"`', REACHABILITY, re.M))
    assert shown == set(settings.BY_KEY["reachability.router"].choices)
    assert f'`"{settings.default("reachability.router")}"` (default)' in REACHABILITY


def test_every_toml_example_is_a_configuration_the_daemon_takes():
    blocks = [(path, block) for path, text in PAGES.items() for lang, block in FENCE.findall(text)
              if lang.strip() == "toml"]
    assert blocks
    for path, block in blocks:
        config.from_dict(tomllib.loads(block), source=name(path))  # ConfigError names what is wrong


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


# -- links -------------------------------------------------------------------------------------
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", prose(text), re.M):
        base = slug(heading)
        anchor, n = base, 0
        while anchor in found:  # a repeated heading gets -1, -2, ...
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def links(text: str) -> list[str]:
    return [target for target in LINK.findall(prose(text)) if not re.match(r"[a-z]+:", target)]


def test_the_readme_links_every_reference_page_and_its_screenshot():
    linked = {(README_PATH.parent / target.split("#")[0]).resolve() for target in links(README)}
    assert set(DOC_PATHS) <= linked, [name(p) for p in set(DOC_PATHS) - linked]
    assert "![The Overview page](docs/overview.png)" in README


def test_every_relative_link_leads_to_a_file_and_heading_that_exist():
    broken = []
    for path, text in PAGES.items():
        for target in links(text):
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{name(path)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text()):
                broken.append(f"{name(path)}: {target} (no such heading in {linked.name})")
    assert not broken, broken


def test_anchors_are_made_as_github_makes_them():
    assert anchors("# The parser's C leaf\n## `harvestwatch status`\n## Floods\n## Floods\n") == {
        "the-parsers-c-leaf", "harvestwatch-status", "floods", "floods-1"}
    assert anchors("```\n# a shell comment\n```\n") == set()


# -- command lines -----------------------------------------------------------------------------
COMMAND = re.compile(r"(?:^|(?<=[\s/(]))harvestwatch\s+([a-z][\w-]*)(.*)$")
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def command_part(rest: str) -> str:
    """The arguments of one command: up to a comment, a pipe, `;`, `&&` or a closing bracket that
    is not its own (`[--db PATH | --config PATH]` and `apply|verify` are one command)."""
    depth = 0
    for i, ch in enumerate(rest):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            if depth == 0:
                return rest[:i]
            depth -= 1
        elif depth == 0 and (ch == ";" or rest.startswith("&&", i)
                             or (ch in "#|" and (i == 0 or rest[i - 1] == " "))):
            return rest[:i]
    return rest


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def accepted(command: str, parser: argparse.ArgumentParser) -> tuple[set[str], list[set[str]]]:
    """The option strings a subcommand takes, and the choices of each of its positionals."""
    if command == "synthlog":  # its own parser, built in synthlog.main: read its --help
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            synthlog.main(["--help"])
        return set(OPTION.findall(out.getvalue())), []
    options = {s for action in parser._actions for s in action.option_strings}
    return options, [set(a.choices) for a in parser._actions if not a.option_strings and a.choices]


def shown_commands() -> list[tuple[str, str, str]]:
    found = []
    for path, text in PAGES.items():
        for line in code_lines(text):
            for match in COMMAND.finditer(line):
                found.append((name(path), match.group(1), command_part(match.group(2))))
    return found


def test_the_command_parser_is_found():
    assert {"analyze", "run", "status", "firewall", "serve", "synthlog"} <= set(subcommands())
    shown = " firewall apply|verify [--db PATH | --config P] "
    assert command_part(shown + "# note") == shown
    assert command_part(" status --json | jq .") == " status --json "


def test_every_command_line_shown_is_one_the_cli_takes():
    commands = subcommands()
    shown = shown_commands()
    assert {command for _, command, _ in shown} >= {"analyze", "run", "status", "firewall", "serve"}
    wrong = []
    for page, command, rest in shown:
        if command not in commands:
            wrong.append(f"{page}: harvestwatch {command}: no such subcommand")
            continue
        options, positionals = accepted(command, commands[command])
        for option in OPTION.findall(rest):
            if option not in options:
                wrong.append(f"{page}: harvestwatch {command} {option}: no such option")
        words = [w.strip("[]") for w in rest.split() if not w.startswith(("-", "[-"))]
        for choices in positionals[:1]:
            if words and not set(words[0].split("|")) <= choices:
                wrong.append(f"{page}: harvestwatch {command} {words[0]}: not one of {sorted(choices)}")
    assert not wrong, wrong


def makefile_targets() -> set[str]:
    targets = set()
    for names in re.findall(r"^([A-Za-z][\w-]*(?:[ \t]+[A-Za-z][\w-]*)*)[ \t]*:(?!=)", MAKEFILE, re.M):
        targets.update(names.split())
    return targets


def makefile_variables() -> set[str]:
    return set(re.findall(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)\s*[?:]?=", MAKEFILE, re.M))


def test_every_make_target_and_variable_shown_is_in_the_makefile():
    targets, variables = makefile_targets(), makefile_variables()
    assert {"demo", "test", "image", "check"} <= targets and {"DEMO_BIND", "WORK"} <= variables
    shown, wrong = set(), []
    for path, text in PAGES.items():
        for line in code_lines(text):
            for rest in re.findall(r"(?:^|(?<=[\s(]))make\s+([^#;|)]*)", line):
                for word in rest.split():
                    if "=" in word:
                        ok = word.split("=", 1)[0] in variables
                    elif re.fullmatch(r"[a-z][\w-]*", word):
                        ok = word in targets
                        shown.add(word)
                    else:
                        break
                    if not ok:
                        wrong.append(f"{name(path)}: make {word}")
    assert {"demo", "test", "image"} <= shown
    assert not wrong, wrong


# -- analyze: exit statuses, report, JSON, skip reasons ------------------------------------------
def documented_exit_statuses() -> dict[int, str]:
    section = ANALYZE.split("## Exit status", 1)[1].split("\n## ", 1)[0]
    return {int(code): text for code, text in re.findall(r"^\| `(\d+)` \| (.+?) \|$", section, re.M)}


def _analyze(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main(["analyze", *argv])


def test_the_exit_statuses_documented_are_what_analyze_returns(tmp_path):
    log = tmp_path / "kern.log"
    log.write_text("Jan 13 19:33:10 pi kernel: not a firewall record\n")
    not_a_store = tmp_path / "evidence.sqlite"
    not_a_store.write_bytes(b"this is not a database" * 100)

    def broken_pipe() -> int:
        # The reader is gone before the report is written (`| head` that has read enough).
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            return subprocess.run([sys.executable, "-m", "appliance", "analyze", str(log)], stdout=write_end,
                                  stderr=subprocess.DEVNULL, cwd=ROOT, timeout=120).returncode
        finally:
            os.close(write_end)

    situations = {
        0: lambda: _analyze([str(log)]),
        1: lambda: _analyze(["--db", str(not_a_store), str(log)]),
        2: lambda: _analyze([str(tmp_path)]),  # a directory
        141: broken_pipe,
    }
    documented = documented_exit_statuses()
    assert set(documented) == set(situations), documented
    for code, situation in situations.items():
        assert situation() == code, (code, documented[code])
    assert cli.EXIT_BROKEN_PIPE == 141
    assert _analyze(["--no-such-option", str(log)]) == 2 and _analyze([str(tmp_path / "missing.log")]) == 2


@pytest.fixture(scope="module")
def synthetic_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("docs") / "synthetic.log"
    with contextlib.redirect_stdout(io.StringIO()):
        assert synthlog.main(["--lines", "3000", "--seed", "7", "-o", str(path)]) in (0, None)
    return path


def _analyze_output(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert cli.main(["analyze", *argv]) == 0
    return out.getvalue()


def test_the_json_document_documented_is_what_analyze_writes(synthetic_log):
    block = ANALYZE.split("## The JSON document (`--json`, schema ", 1)[1]
    assert int(block.split(")", 1)[0]) == SCHEMA_VERSION
    shown = FENCE.search(block).group(2)
    first, *rest = shown.splitlines()
    top = re.findall(r'"(\w+)":', first) + [key for line in rest for key in re.findall(r'^ {2}"(\w+)":', line)]
    parameters = re.findall(r'"(\w+)"', re.search(r'"parameters": \{([^}]*)\}', shown).group(1))
    written = json.loads(_analyze_output(["--json", str(synthetic_log)]))
    assert top == list(written), "docs/analyze.md lists other top-level keys than analyze --json writes"
    assert written["schema"] == SCHEMA_VERSION and f'"schema": {SCHEMA_VERSION}' in first
    assert parameters == list(written["parameters"])
    scan = next(scan for scan in written["scans"] if scan["candidates"])
    entries = {"scans": {*scan, *scan["ports"][0], *scan["candidates"][0]},
               "trigger_endpoints": set(written["trigger_endpoints"][0]),
               "scanner_families": set(written["scanner_families"][0])}
    for key, keys in entries.items():
        entry = re.search(rf'^ {{2}}"{key}":(.*?)(?=^ {{2}}"\w+":|\Z)', shown, re.M | re.S).group(1)
        documented = set(re.findall(r'"(\w+)"', entry))
        if key == "scans":  # the values shown for kind and attribution
            documented -= {"portscan", *(a.value for a in Attribution)}
        assert documented == keys, (key, documented ^ keys)


def test_the_text_report_sections_documented_are_what_analyze_writes(synthetic_log):
    report = _analyze_output([str(synthetic_log)])
    section = " ".join(ANALYZE.split("## The text report", 1)[1].split("\n## ", 1)[0].split())
    for heading in ("SCAN DETECTED", "SWEEP DETECTED", "TRIGGER ENDPOINTS", "SCANNER FAMILIES",
                    "One or more of these packets may have triggered the scan...",
                    "Unattributed: no packet was sent from"):
        assert heading in section, heading
        assert heading in report, heading
    assert "SUSPECTS" not in report and "SUSPECTS" not in ANALYZE


def test_every_skip_reason_is_explained():
    listed = set()
    for names in re.findall(r"^- ((?:`[a-z-]+`(?:, )?)+):", ANALYZE, re.M):
        listed.update(re.findall(r"`([a-z-]+)`", names))
    assert listed == {*SKIP_REASONS, DAMAGED_GZIP}


# -- the page, gaps --------------------------------------------------------------------------------
def test_every_route_of_the_page_is_documented_and_every_one_documented_exists(tmp_path):
    from appliance.web import create_app
    app = create_app(str(tmp_path / "harvestwatch.sqlite"))
    routes = {re.sub(r"<[^>]+>", "ID", rule.rule) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static"}
    assert {"/", "/api/", "/export/harvesters.csv", "/metrics"} <= routes
    missing = {route for route in routes if f"`{route}`" not in PAGE and f"`{route}` " not in PAGE}
    assert not missing, f"docs/page.md does not name {sorted(missing)}"
    shown = set()
    for line in PAGE.splitlines():
        if line.startswith("| `/"):
            for cell in line.split(" | ")[:2]:
                shown.update(re.findall(r"`(/[^`\s]*)`", cell))
    for text in PAGES.values():
        shown.update(re.findall(r"`(/(?:api|export|metrics)[^`\s]*)`", text))
    assert shown and shown <= routes, shown - routes


def test_every_gap_reason_is_explained():
    rows = set(re.findall(r"^\| `([a-z-]+)` \|", FIREWALL.split("## Capture and gaps", 1)[1], re.M))
    assert rows == set(GAP_WORDS)
