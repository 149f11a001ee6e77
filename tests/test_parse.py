"""The netfilter LOG parser: wrappers, protocols, prefixes, address form, skip reasons."""
from collections import Counter
from datetime import datetime, timezone

import pytest

from appliance.parse.clock import LineClock, resolve_zone
from appliance.parse.netfilter import (FORWARDED, INBOUND, OUTBOUND, NetfilterParser, normalize_address,
                                       summarize_skips)

# Every test here runs under both twins of the parser (conftest.twin).
pytestmark = pytest.mark.usefixtures("twin")

V6_BODY = ("IN=eth0 OUT= MAC=b8:27:eb:00:00:01:f8:1a:67:00:00:02:86:dd "
           "SRC=2001:0db8:0800:0010:0000:0000:0970:a001 DST=2001:0db8:0001:0001:7c0d:e6cb:8719:7d94 "
           "LEN=60 TC=0 HOPLIMIT=51 FLOWLBL=0 PROTO=TCP SPT=41234 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0")
T_2016 = datetime(2016, 1, 13, 19, 33, 10, tzinfo=timezone.utc).timestamp()


def parse(text, **clock):
    parser = NetfilterParser(LineClock(**({"year": 2016} | clock)))
    return parser.parse_text(text if text.endswith("\n") else text + "\n"), parser


@pytest.mark.parametrize("line, expected_ts", [
    (f"Jan 13 19:33:10 pi kernel: [ 1234.567890] HW-IN {V6_BODY}", T_2016),             # kern.log
    (f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}", T_2016),                             # journalctl -k
    (f"2016-01-13T19:33:10.250000+00:00 pi kernel: [ 12.5] HW-IN {V6_BODY}", T_2016 + 0.25),  # rsyslog
    (f"2016-01-13T20:33:10+0100 pi kernel: HW-IN {V6_BODY}", T_2016),                    # short-iso
    (f"2016-01-13T19:33:10.123456+00:00 pi kernel: HW-IN {V6_BODY}", T_2016 + 0.123456),  # short-iso-precise
    (f"Jan 13 19:33:10 pi HW-IN {V6_BODY}", T_2016),                                     # ulogd LOGEMU
    (f"kern.log:Jan 13 19:33:10 pi kernel: [ 5.0] HW-IN {V6_BODY}", T_2016),            # grep -H
])
def test_wrappers_give_the_same_packet(line, expected_ts):
    (packet,), parser = parse(line)
    assert packet.ts == pytest.approx(expected_ts)
    assert (packet.src, packet.dst) == ("2001:db8:800:10::970:a001", "2001:db8:1:1:7c0d:e6cb:8719:7d94")
    assert (packet.proto, packet.sport, packet.dport, packet.direction) == ("TCP", 41234, 22, INBOUND)
    assert packet.direction is INBOUND  # the detector compares directions by identity
    assert packet.prefix == "HW-IN"
    assert not parser.skipped


def test_kmsg_and_dmesg_use_boot_time():
    boot = 1_700_000_000.0
    (kmsg,), _ = parse(f"4,1234,5000000,-;HW-IN {V6_BODY}", boot_time=boot)
    (dmesg,), _ = parse(f"[    7.500000] HW-IN {V6_BODY}", boot_time=boot)
    assert kmsg.ts == pytest.approx(boot + 5.0)
    assert dmesg.ts == pytest.approx(boot + 7.5)


def test_uptime_gives_sub_second_order_within_one_syslog_second():
    lines = "".join(f"Jan 13 19:33:10 pi kernel: [ 100.{i:06d}] {V6_BODY}\n" for i in (0, 250000, 500000))
    packets, _ = parse(lines)
    assert [p.ts - packets[0].ts for p in packets] == pytest.approx([0.0, 0.25, 0.5])


@pytest.mark.parametrize("prefix, expected", [("[UFW BLOCK] ", "[UFW BLOCK]"), ("DROP ", "DROP"), ("", ""),
                                              ("Shorewall:net:DROP:", "Shorewall:net:DROP:")])
def test_any_log_prefix(prefix, expected):
    (packet,), _ = parse(f"Jan 13 19:33:10 pi kernel: [ 1.0] {prefix}{V6_BODY}")
    assert packet.prefix == expected


def test_protocols_and_directions():
    text = "\n".join([
        "Jan 13 19:33:10 pi kernel: HW-OUT IN= OUT=eth0 SRC=2001:0db8:0001:0001:0000:0000:0000:0005 "
        "DST=2001:0db8:00f0:0000:0000:0000:0000:0123 LEN=76 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=UDP SPT=40000 DPT=123 LEN=56",
        "Jan 13 19:33:10 pi kernel: IN=eth0 OUT= SRC=2001:0db8:0000:0000:0000:0000:0000:0001 "
        "DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=64 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=1 SEQ=1",
        "Jan 13 19:33:10 pi kernel: IN=eth0 OUT= SRC=192.0.2.7 DST=198.51.100.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 "
        "ID=1 PROTO=ICMP TYPE=8 CODE=0 ID=2158 SEQ=512",
        "Jan 13 19:33:10 pi kernel: IN=eth0 OUT=eth1 SRC=192.0.2.7 DST=198.51.100.1 LEN=28 TOS=0x00 PREC=0x00 "
        "TTL=64 ID=1 PROTO=UDPLITE SPT=5 DPT=6 LEN=8",
        "Jan 13 19:33:10 pi kernel: IN=eth0 OUT= SRC=192.0.2.7 DST=198.51.100.1 LEN=20 TOS=0x00 PREC=0x00 TTL=56 "
        "ID=50515 PROTO=162",
        "Jan 13 19:33:10 pi kernel: IN=eth0 OUT= SRC=192.0.2.7 DST=198.51.100.1 LEN=20 TOS=0x00 PREC=0x00 TTL=56 "
        "ID=5 MF FRAG:185 PROTO=UDP ",
    ])
    packets, parser = parse(text)
    assert not parser.skipped
    summary = [(p.proto, p.sport, p.dport, p.direction) for p in packets]
    assert summary == [("UDP", 40000, 123, OUTBOUND), ("ICMPv6", None, 128, INBOUND), ("ICMP", None, 8, INBOUND),
                       ("UDPLITE", 5, 6, FORWARDED), ("162", None, None, INBOUND), ("UDP", None, None, INBOUND)]
    assert packets[0].dst == "2001:db8:f0::123"


def test_bridge_and_nft_layouts_take_the_general_path():
    line = ("Jan 13 19:33:10 pi kernel: fw IN=br0 OUT=br0 PHYSIN=eth1 PHYSOUT=eth0 MACSRC=aa:bb:cc:dd:ee:ff "
            "MACDST=11:22:33:44:55:66 MACPROTO=86dd SRC=2001:0db8:0000:0000:0000:0000:0000:0001 "
            "DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=60 TC=0 HOPLIMIT=64 FLOWLBL=0 PROTO=TCP SPT=1 DPT=2 SYN")
    (packet,), parser = parse(line)
    assert (packet.src, packet.dport, packet.prefix) == ("2001:db8::1", 2, "fw")


def test_skips_are_counted_by_reason_never_raised():
    text = "\n".join([
        "Jan 13 19:33:10 pi kernel: usb 1-1: new high-speed USB device",                  # not netfilter
        f"Jan 13 19:33:10 pi kernel: [ 1.0] HW-IN {V6_BODY[:150]}",                       # cut before PROTO
        "Jan 13 19:33:10 pi kernel: IN=eth0 OUT= SRC=2001:0db8:0000:0000:0000:0000:0000:0001 "
        "DST=2001:0db8:0000:0000:0000:0000:0000:0002 LEN=60 TC=0 HOPLIMIT=51 FLOWLBL=0 PROTO=TCP SPT=4",  # cut in ports
        f"Feb 30 19:33:10 pi kernel: HW-IN {V6_BODY}",                                    # no such day
        f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}".replace("SRC=2001:0db8", "SRC=2001:0zb8"),  # bad address
        f"HW-IN {V6_BODY}",                                                              # no time at all
        "",
        f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}".replace("PROTO=TCP", "PROTO=TC"),   # no such protocol
        f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}".replace("PROTO=TCP", "PROTO=256"),  # nor protocol number
        f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}".replace("DPT=22", "DPT=65536"),     # no such port
        f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}".replace("PROTO=TCP", "PROTO=47"),   # GRE: by number
        f"Jan 13 19:33:10 pi kernel: HW-IN {V6_BODY}",                                    # the one good line
    ])
    packets, parser = parse(text)
    assert [p.proto for p in packets] == ["47", "TCP"]
    assert parser.skipped == Counter({"not-netfilter": 1, "truncated": 2, "bad-timestamp": 1,
                                      "bad-address": 1, "no-timestamp": 1, "bad-protocol": 2, "bad-port": 1})
    assert summarize_skips(parser.lines, parser.records, parser.skipped) == (
        "read 11 lines: 2 packet records, skipped 9 (bad-address 1, bad-port 1, bad-protocol 2, "
        "bad-timestamp 1, no-timestamp 1, not-netfilter 1, truncated 2)")


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
