"""Arbitrary text and bytes never crash the parser or the pipeline; every line is accounted for."""
import gzip

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parse import V6_BODY

from appliance.parse.clock import LineClock
from appliance.parse.netfilter import NetfilterParser

# Every test here runs under both twins of the parser (conftest.twin).
pytestmark = pytest.mark.usefixtures("twin")

GOOD = f"Jan 13 19:33:10 pi kernel: [ 1.0] HW-IN {V6_BODY}"
fragments = st.sampled_from(["IN=", "OUT=", "SRC=", "DST=", "PROTO=", "SPT=", "DPT=", "TYPE=", " ", "\n", ":",
                             "2001:0db8:", "Jan 13 19:33:10 ", "[ 1.5] ", "kernel: ", "6,1,2,-;", GOOD, "\x00",
                             "\r", "ÿ", "2016-01-13T19:33:10+00:00 ", "FRAG:", "INCOMPLETE"])
line_soup = st.lists(st.one_of(fragments, st.text(max_size=30)), max_size=40).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line_soup)
def test_parser_never_raises_on_text(text):
    parser = NetfilterParser(LineClock(year=2016))
    packets = parser.parse_text(text + "\n")
    assert parser.records == len(packets)
    # Every line is read, empty ones too, as `wc -l` counts them; a \r splits one into records.
    assert parser.lines == text.count("\n") + 1
    assert parser.records + sum(parser.skipped.values()) <= parser.lines + text.count("\r")
    for packet in packets:
        assert isinstance(packet.ts, float) and packet.src and packet.dst and packet.proto


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_pipeline_never_raises_on_bytes(tmp_path_factory, data):
    from appliance.cli import main
    folder = tmp_path_factory.mktemp("bytes")
    path = folder / "garbage.log"
    path.write_bytes(data + GOOD.encode() + b"\n")
    assert main(["analyze", "--json", "--db", str(folder / "s.sqlite"), str(path)]) == 0


def test_gzip_and_overlong_lines(tmp_path, analyze_json):
    path = tmp_path / "kern.log.gz"
    with gzip.open(path, "wt") as out:
        out.write("x" * 3_000_000 + "\n" + GOOD + "\n")
    doc, err = analyze_json("--year", "2016", path)
    assert doc["input"]["records"] == 1 and doc["input"]["skipped"] == {"not-netfilter": 1}


def test_damaged_gzip_keeps_what_it_held(tmp_path, analyze_json):
    whole = gzip.compress(("".join(GOOD.replace("DPT=22", f"DPT={p}") + "\n" for p in range(1, 2001))).encode())
    path = tmp_path / "kern.log.2.gz"
    path.write_bytes(whole[: len(whole) * 2 // 3])  # cut short, as a copy interrupted
    doc, err = analyze_json("--year", "2016", path)
    assert 0 < doc["input"]["records"] < 2000
    assert doc["input"]["skipped"]["damaged-gzip"] == 1
    assert "damaged gzip stream" in err
    assert doc["scans"][0]["port_count"] == doc["input"]["records"]
