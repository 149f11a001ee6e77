"""psad's real kernel scan logs (read from ../shared, never copied): every record parses and each
file's scan comes out with the port count psad's own tests give."""
import pytest

from appliance.capture.files import read_blocks
from appliance.parse.clock import LineClock
from appliance.parse.netfilter import NetfilterParser

# Every test here runs under both twins of the parser (conftest.twin).
pytestmark = pytest.mark.usefixtures("twin")

ALL = ["ack_scan_1000_1150", "fin_scan_1000_1150", "fwknop_spa_pkt", "invalid_icmp_type_code", "ipv4_igmp",
       "ipv4_valid_ping", "ipv6_invalid_icmp6_type_code", "ipv6_ms_sql_server_sig_match", "ipv6_ping_scan",
       "ipv6_tcp_connect_nmap_default_scan", "mirai_default_credentials_scan", "ms_sql_server_sig_match",
       "null_scan_1000_1150", "proto_scan", "reputation_scan", "syn_scan_1000_1500", "syn_scan_1000_1500_localhost",
       "syn_scan_1000_1500_multi_dst", "syn_scan_1000_1500_zeroip", "syn_sweep", "syslog_time_fmt1.log",
       "topera_ipv6_syn_scan_no_ip_opts", "topera_ipv6_syn_scan_with_ip_opts", "udp_scan_1000_1150",
       "xmas_scan_1000_1150"]


@pytest.mark.parametrize("name", ALL)
def test_every_record_parses(psad_fixture, name):
    parser = NetfilterParser(LineClock(year=2016))
    with open(psad_fixture(name), "rb") as stream:
        for block in read_blocks(stream):
            parser.parse(block)
    records_in_file = sum(1 for line in open(psad_fixture(name), errors="replace") if "SRC=" in line)
    assert not parser.skipped, parser.skipped
    assert parser.records == records_in_file > 0


@pytest.mark.parametrize("name, scanner, target, ports", [
    ("ipv6_tcp_connect_nmap_default_scan", "2001:db8:0:f101::2", "2001:db8:0:f101::1", 1000),
    ("topera_ipv6_syn_scan_no_ip_opts", "2012:1234:1234::1", "2012:1234:1234::2", 1025),
    ("topera_ipv6_syn_scan_with_ip_opts", "2012:1234:1234::1", "2012:1234:1234::2", 1026),
    ("syn_scan_1000_1500", "192.168.10.55", "192.168.10.1", 501),
    ("syn_scan_1000_1500_zeroip", "0.0.0.0", "192.168.10.1", 501),
    ("udp_scan_1000_1150", "192.168.10.55", "192.168.10.1", 151),
    ("ack_scan_1000_1150", "192.168.10.55", "192.168.10.1", 151),
    ("fin_scan_1000_1150", "192.168.10.55", "192.168.10.1", 151),
    ("null_scan_1000_1150", "192.168.10.55", "192.168.10.1", 151),
    ("xmas_scan_1000_1150", "192.168.10.55", "192.168.10.1", 151),
    ("proto_scan", "192.168.10.55", "192.168.10.1", 255),
])
def test_scan_found_with_its_port_count(psad_fixture, analyze_json, name, scanner, target, ports):
    doc, _ = analyze_json("--year", "2016", psad_fixture(name))
    (scan,) = doc["scans"]
    assert (scan["scanner"], scan["target"]) == (scanner, target)
    assert scan["port_count"] == ports
    if name.startswith("topera"):
        # "~1024 ports" (psad's words): 1024 or 1025 TCP ports, plus the ICMPv6 neighbour
        # advertisement the same host sent, which counts as one more (protocol, type) pair.
        assert scan["protocols"]["TCP"] in (1024, 1025) and scan["protocols"]["ICMPv6"] == 1
    assert scan["attribution"] == "unattributed"  # psad's logs hold no outbound packets
    assert doc["sweeps"] == []


def test_multi_destination_scan_is_four_scans_of_one_family(psad_fixture, analyze_json):
    doc, _ = analyze_json("--year", "2016", psad_fixture("syn_scan_1000_1500_multi_dst"))
    assert sorted(s["target"] for s in doc["scans"]) == ["192.168.10.1", "192.168.10.2", "192.168.10.232",
                                                         "192.168.10.45"]
    assert {s["port_count"] for s in doc["scans"]} == {501}
    (family,) = doc["scanner_families"]
    assert (family["net"], family["scans"]) == ("192.168.10.0/24", 4)


def test_sweep_is_reported_as_a_sweep(psad_fixture, analyze_json):
    doc, _ = analyze_json("--year", "2016", psad_fixture("syn_sweep"))
    assert doc["scans"] == []
    (sweep,) = doc["sweeps"]
    assert sweep["scanner"] == "192.168.10.55"
    assert len(sweep["targets"]) == 11
    assert sweep["ports"] == [{"proto": "TCP", "port": 1083}]


@pytest.mark.parametrize("name", ["ipv4_valid_ping", "fwknop_spa_pkt", "mirai_default_credentials_scan",
                                  "reputation_scan", "syslog_time_fmt1.log", "ipv6_ping_scan"])
def test_no_scan_where_there_is_none(psad_fixture, analyze_json, name):
    doc, _ = analyze_json("--year", "2016", psad_fixture(name))
    assert doc["scans"] == [] and doc["sweeps"] == []
