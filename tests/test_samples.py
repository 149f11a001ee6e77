"""Every log layout the parser reads, as sample files with the expected record of each line beside it.

tests/files/logs/*.log: a header (`# format:` one of FORMATS, `# clock:` the LineClock's settings as
JSON), then for each log line a `# expect:` line before it: the packet as JSON, or `{"skip": reason}`.
Run under both twins of the parser. A layout or a skip reason without a sample fails the suite."""
import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from appliance.packet import FORWARDED, INBOUND, OUTBOUND
from appliance.parse.clock import LineClock, resolve_zone
from appliance.parse.netfilter import FORMATS, SKIP_REASONS, NetfilterParser, summarize_skips

pytestmark = pytest.mark.usefixtures("twin")

DIRECTIONS = {INBOUND: INBOUND, OUTBOUND: OUTBOUND, FORWARDED: FORWARDED}
SAMPLES = sorted((Path(__file__).parent / "files" / "logs").glob("*.log"))


def read_sample(path: Path):
    """(format, clock settings, [(expected, line bytes)])"""
    header, cases, expected = {}, [], None
    for raw in path.read_bytes().split(b"\n"):
        if not raw:
            continue
        if raw.startswith(b"# "):
            key, _, value = raw[2:].decode().partition(": ")
            if key == "expect":
                expected = json.loads(value)
            elif key in ("format", "clock"):
                header[key] = value
            continue
        assert expected is not None, f"{path.name}: a log line without an '# expect:' line before it: {raw[:80]!r}"
        cases.append((expected, raw))
        expected = None
    return header["format"], json.loads(header.get("clock", "{}")), cases


def clock_of(settings: dict) -> LineClock:
    settings = dict(settings)
    if "tz" in settings:
        settings["zone"] = resolve_zone(settings.pop("tz"))
    return LineClock(**settings)


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_each_line_gives_its_expected_record(path):
    _, clock, cases = read_sample(path)
    parser = NetfilterParser(clock_of(clock), Counter())  # one parser: the clock's state goes on
    for number, (expected, line) in enumerate(cases, start=1):
        before = Counter(parser.skipped)
        packets = parser.parse(line + b"\n")
        if "skip" in expected:
            assert packets == [] and parser.skipped - before == Counter({expected["skip"]: 1}), (number, line)
            continue
        assert len(packets) == 1, (number, line, parser.skipped - before)
        packet = packets[0]._asdict()
        want = {**expected, "time": datetime.fromisoformat(expected["time"]).timestamp()}
        got = {key: packet[key] for key in ("src", "dst", "proto", "sport", "dport", "direction", "prefix")}
        assert got == {key: want[key] for key in got}, (number, line)
        assert packets[0].ts == pytest.approx(want["time"], abs=1e-6), (number, line)
        assert packets[0].direction is DIRECTIONS[want["direction"]]  # the detector compares by identity


def test_every_layout_and_skip_reason_has_a_sample():
    read = [read_sample(path) for path in SAMPLES]
    formats = {fmt for fmt, _, _ in read}
    assert set(FORMATS) <= formats, f"no sample for {sorted(set(FORMATS) - formats)}"
    assert formats <= set(FORMATS) | {"skipped"}, f"samples of unknown layouts: {sorted(formats - set(FORMATS))}"
    reasons = {expected["skip"] for _, _, cases in read for expected, _ in cases if "skip" in expected}
    assert set(SKIP_REASONS) <= reasons, f"no sample line for {sorted(set(SKIP_REASONS) - reasons)}"


def test_skipped_lines_are_counted_by_reason_and_summed_up():
    _, clock, cases = read_sample(Path(__file__).parent / "files" / "logs" / "skipped.log")
    parser = NetfilterParser(clock_of(clock), Counter())
    assert parser.parse(b"\n".join(line for _, line in cases) + b"\n\n") == []
    assert parser.skipped == Counter(expected["skip"] for expected, _ in cases)
    assert summarize_skips(parser.lines, parser.records, parser.skipped, parser.empty) == (
        "read 13 lines (1 empty): 0 packet records, skipped 12 (bad-address 3, bad-port 1, bad-protocol 2, "
        "bad-timestamp 1, no-timestamp 1, not-kernel 1, not-netfilter 1, truncated 2)")
