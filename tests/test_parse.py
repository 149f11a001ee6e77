"""The netfilter LOG parser's clock and address spelling (the layouts, protocols, prefixes and skip
reasons are samples: tests/files/logs/, tests/test_samples.py)."""
from datetime import datetime, timezone

import pytest

from appliance.parse.clock import LineClock, resolve_zone
from appliance.parse.netfilter import NetfilterParser, normalize_address

# Every test here runs under both twins of the parser (conftest.twin).
pytestmark = pytest.mark.usefixtures("twin")

V6_BODY = ("IN=eth0 OUT= MAC=b8:27:eb:00:00:01:f8:1a:67:00:00:02:86:dd "
           "SRC=2001:0db8:0800:0010:0000:0000:0970:a001 DST=2001:0db8:0001:0001:7c0d:e6cb:8719:7d94 "
           "LEN=60 TC=0 HOPLIMIT=51 FLOWLBL=0 PROTO=TCP SPT=41234 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0")
T_2016 = datetime(2016, 1, 13, 19, 33, 10, tzinfo=timezone.utc).timestamp()


def parse(text, **clock):
    parser = NetfilterParser(LineClock(**({"year": 2016} | clock)))
    return parser.parse_text(text if text.endswith("\n") else text + "\n"), parser


def test_uptime_gives_sub_second_order_within_one_syslog_second():
    lines = "".join(f"Jan 13 19:33:10 pi kernel: [ 100.{i:06d}] {V6_BODY}\n" for i in (0, 250000, 500000))
    packets, _ = parse(lines)
    assert [p.ts - packets[0].ts for p in packets] == pytest.approx([0.0, 0.25, 0.5])


def test_syslog_year_defaults_to_file_time_and_rolls_over():
    december = datetime(2025, 12, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    january = datetime(2026, 1, 1, 0, 0, 1, tzinfo=timezone.utc).timestamp()
    text = f"Dec 31 23:59:59 pi kernel: {V6_BODY}\nJan  1 00:00:01 pi kernel: {V6_BODY}\n"
    written_in_january = datetime(2026, 1, 2, tzinfo=timezone.utc).timestamp()
    by_mtime, _ = parse(text, year=None, reference=written_in_january)
    by_flag, _ = parse(text, year=2025)
    assert [p.ts for p in by_mtime] == [december, january]
    assert [p.ts for p in by_flag] == [december, january]


def test_tz_applies_to_stamps_without_zone():
    (packet,), _ = parse(f"Jan 13 20:33:10 pi kernel: {V6_BODY}", zone=resolve_zone("Europe/Berlin"))
    assert packet.ts == T_2016
    with pytest.raises(ValueError, match="unknown time zone"):
        resolve_zone("Mars/Olympus")


def test_addresses_are_compressed_like_rfc5952():
    assert normalize_address("2001:0db8:0000:0000:0001:0000:0000:0001") == "2001:db8::1:0:0:1"
    assert normalize_address("2001:0db8:0000:0001:0000:0000:0000:0000") == "2001:db8:0:1::"
    assert normalize_address("0000:0000:0000:0000:0000:ffff:c000:0201") == "::ffff:c000:201"
    assert normalize_address("192.0.2.1") == "192.0.2.1"
    with pytest.raises(ValueError):
        normalize_address("2001:0db8:0000:0000:0001:0000:0000:00g1")
